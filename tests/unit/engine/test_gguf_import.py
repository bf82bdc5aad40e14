"""GGUF import: bad input is refused clearly; a finished conversion is reused, not redone."""

from __future__ import annotations

import json

import pytest

from medalign_desktop.engine.errors import EngineError
from medalign_desktop.engine.gguf_import import PROVENANCE_FILE, convert_gguf


def test_missing_file(tmp_path):
    with pytest.raises(EngineError, match="does not exist"):
        convert_gguf(tmp_path / "model.gguf", tmp_path / "out")


def test_not_a_gguf_file(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not gguf")
    with pytest.raises(EngineError, match="not a GGUF file") as err:
        convert_gguf(fake, tmp_path / "out")
    assert str(fake) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_converted_demo_folder_is_complete(smollm2_dir):
    from medalign_desktop.engine import check_model_folder

    info = check_model_folder(smollm2_dir)
    assert info.architecture == "LlamaForCausalLM" and info.has_chat_template
    assert 130e6 < info.n_parameters < 140e6
    provenance = json.loads((smollm2_dir / PROVENANCE_FILE).read_text())
    assert len(provenance["source_sha256"]) == 64


def test_conversion_of_the_same_file_is_reused(smollm2_dir):
    from medalign_desktop.engine.gguf_import import locate_demo_gguf

    messages: list[str] = []
    result = convert_gguf(locate_demo_gguf(), smollm2_dir, progress=messages.append)
    assert result.reused and messages == [f"Already converted: {smollm2_dir}"]
