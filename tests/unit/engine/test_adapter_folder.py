"""The one adapter-folder check (training/model_check.check_adapter_folder): the rules the engine and the
training programs used to apply separately, each with a test, through both faces (ModelFolderError in the app,
ModelError in the training programs, the message starting with the adapter's role). Pure: no torch."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from medalign_desktop.engine import ModelFolderError, check_adapter_folder
from training.lora import ModelError
from training.lora import check_adapter_folder as training_check
from training.model_check import ModelCheckError
from training.model_check import check_adapter_folder as the_check


def write_safetensors(path: Path, data: bytes = b"\0\0\0\0") -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


@pytest.fixture
def adapter(tmp_path) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}), encoding="utf-8")
    write_safetensors(folder / "adapter_model.safetensors")
    return folder


def test_a_whole_adapter_passes_both_faces(adapter):
    assert the_check(adapter) == check_adapter_folder(adapter) == training_check(adapter) == adapter


def test_a_missing_folder(tmp_path):
    with pytest.raises(ModelFolderError, match=f"Adapter folder {tmp_path / 'nope'} does not exist"):
        check_adapter_folder(tmp_path / "nope")
    with pytest.raises(ModelError, match=f"Reward adapter folder {tmp_path / 'nope'} does not exist"):
        training_check(tmp_path / "nope", "Reward adapter")


def test_a_file_is_not_an_adapter_folder(adapter):
    with pytest.raises(ModelFolderError, match="is a file, not an adapter folder"):
        check_adapter_folder(adapter / "adapter_config.json")


@pytest.mark.parametrize(
    "remove, named",
    [
        (("adapter_config.json",), "adapter_config.json"),
        (("adapter_model.safetensors",), "adapter_model.safetensors"),
        (
            ("adapter_config.json", "adapter_model.safetensors"),
            "adapter_config.json, adapter_model.safetensors",
        ),
    ],
)
def test_missing_files_are_all_named(adapter, remove, named):
    for name in remove:
        (adapter / name).unlink()
    with pytest.raises(ModelError, match=f"^Parent adapter folder {adapter} is missing {named}.$"):
        training_check(adapter)
    with pytest.raises(ModelFolderError, match=f"^Adapter folder {adapter} is missing {named}.$"):
        check_adapter_folder(adapter)


@pytest.mark.parametrize(
    "text, problem", [("{not json", "cannot be read"), ("[1, 2]", "does not hold a JSON object")]
)
def test_an_unreadable_config(adapter, text, problem):
    (adapter / "adapter_config.json").write_text(text, encoding="utf-8")
    with pytest.raises(ModelCheckError, match=f"^Adapter: {adapter / 'adapter_config.json'}: .*{problem}"):
        the_check(adapter)
    with pytest.raises(ModelError, match=f"^Parent adapter: .*adapter_config.json: .*{problem}"):
        training_check(adapter)


def test_damaged_weights(adapter):
    write_safetensors(adapter / "adapter_model.safetensors", data=b"\0\0")
    with pytest.raises(ModelFolderError, match="adapter_model.safetensors: the file is truncated"):
        check_adapter_folder(adapter)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        training_check(adapter, "Adapter of version 'v1'")
