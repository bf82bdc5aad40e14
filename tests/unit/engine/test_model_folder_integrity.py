"""Model folders checked to the last tensor (issue 19): a copy missing tensors, weights that do not fit config.json,
malformed safetensors headers and shard indexes, shards outside the folder and a damaged tokenizer are refused with
a message naming the file, never a traceback and never a model answering with random weights."""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path

import pytest

from medalign_desktop.engine import Engine, ModelFolderError, check_model_folder
from medalign_desktop.engine.model_folder import read_safetensors_header
from training import model_check


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def _tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def _save(folder: Path, tensors: dict, name: str = "model.safetensors") -> None:
    from safetensors.torch import save_file

    save_file(tensors, folder / name, metadata={"format": "pt"})


def _write_raw(path: Path, header: object, data: bytes = b"", header_len: int | None = None) -> None:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(raw) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", length) + raw + data)


def test_the_intact_folder_is_accepted(tiny_model_dir):
    info = check_model_folder(tiny_model_dir)
    assert info.architecture == "LlamaForCausalLM" and info.n_parameters > 3_000_000


def test_the_demo_model_is_accepted_within_a_second(smollm2_dir):
    check_model_folder(smollm2_dir)  # imports the architecture once
    model_check._passed.clear()
    started = time.perf_counter()
    info = check_model_folder(smollm2_dir)
    assert time.perf_counter() - started < 1.0
    assert 130e6 < info.n_parameters < 140e6


def test_ten_missing_tensors_are_named(model_copy):
    tensors = _tensors(model_copy)
    removed = [name for name in tensors if name.startswith("model.layers.")][:10]
    _save(model_copy, {k: v for k, v in tensors.items() if k not in removed})
    with pytest.raises(ModelFolderError) as err:
        check_model_folder(model_copy)
    message = str(err.value)
    assert message.startswith(f"{model_copy}: 10 tensors the model needs are missing (")
    shown = message.split("missing (", 1)[1].split(", ... and 5 more); the copy is incomplete.")[0].split(", ")
    assert len(shown) == 5 and set(shown) <= set(removed)


def test_the_header_level_check_alone_accepts_it(model_copy):
    tensors = _tensors(model_copy)
    _save(model_copy, {k: v for k, v in tensors.items() if "layers.1.mlp" not in k})
    assert check_model_folder(model_copy, complete=False).n_parameters > 0  # milliseconds, no torch


def test_a_changed_shape_is_refused(model_copy):
    import torch

    tensors = _tensors(model_copy)
    tensors["model.layers.0.mlp.up_proj.weight"] = torch.zeros(64, 64)
    _save(model_copy, tensors)
    with pytest.raises(ModelFolderError, match=r"1 tensor with the wrong shape") as err:
        check_model_folder(model_copy)
    assert "model.layers.0.mlp.up_proj.weight is [64, 64] in model.safetensors, the model needs [128, 64]" in str(
        err.value
    )


def test_a_foreign_tensor_is_refused(model_copy):
    import torch

    tensors = _tensors(model_copy)
    tensors["model.layers.7.mlp.up_proj.weight"] = torch.zeros(2, 2)
    _save(model_copy, tensors)
    with pytest.raises(ModelFolderError, match="the model has no place for .*do not match config.json"):
        check_model_folder(model_copy)


def test_a_config_that_describes_another_model_is_refused(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    config["num_hidden_layers"] = 4
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="18 tensors the model needs are missing"):
        check_model_folder(model_copy)


F32_2X2 = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
MALFORMED = {
    "bad JSON": (b"{not json", b"", None, "header is not valid JSON"),
    "header length 0": (b"", b"", 0, "header length is 0"),
    "huge header length": (b"{}", b"", 2**40, "more than the format's 100 MB"),
    "header longer than the file": (b"{}", b"", 5_000, "larger than the file"),
    "header not an object": ([1, 2], b"", None, "not a JSON object"),
    "no tensors": ({}, b"", None, "lists no tensors"),
    "only metadata": ({"__metadata__": {"format": "pt"}}, b"", None, "lists no tensors"),
    "no dtype": ({"w": {"shape": [2, 2], "data_offsets": [0, 16]}}, bytes(16), None, "has no 'dtype'"),
    "no shape": ({"w": {"dtype": "F32", "data_offsets": [0, 16]}}, bytes(16), None, "has no 'shape'"),
    "no offsets": ({"w": {"dtype": "F32", "shape": [2, 2]}}, bytes(16), None, "has no 'data_offsets'"),
    "unknown dtype": ({"w": {**F32_2X2, "dtype": "F13"}}, bytes(16), None, "unknown dtype"),
    "shape of strings": ({"w": {**F32_2X2, "shape": ["2"]}}, bytes(16), None, "not a list of sizes"),
    "negative offsets": ({"w": {**F32_2X2, "data_offsets": [-16, 0]}}, bytes(16), None, "not \\[begin, end\\]"),
    "size does not match": ({"w": {**F32_2X2, "shape": [3, 2]}}, bytes(16), None, "24 bytes, but its offsets"),
    "overlap": ({"a": F32_2X2, "b": {**F32_2X2, "data_offsets": [8, 24]}}, bytes(24), None, "overlap"),
    "gap": ({"a": {**F32_2X2, "data_offsets": [8, 24]}}, bytes(24), None, "belong to no tensor"),
    "outside the data": ({"w": {**F32_2X2, "data_offsets": [16, 32]}}, bytes(16), None, "truncated"),
    "trailing bytes": ({"w": F32_2X2}, bytes(20), None, "4 bytes after the last tensor"),
    "metadata not strings": ({"__metadata__": {"a": 1}, "w": F32_2X2}, bytes(16), None, "__metadata__"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_headers_get_a_clean_message(model_copy, case):
    header, data, header_len, expected = MALFORMED[case]
    weights = model_copy / "model.safetensors"
    _write_raw(weights, header, data, header_len)
    with pytest.raises(ModelFolderError, match=expected) as err:
        check_model_folder(model_copy)
    assert str(err.value).startswith(f"{weights}: ")
    with pytest.raises(ModelFolderError, match=expected):
        read_safetensors_header(weights)  # the first-run dialog reads dtypes with it


def test_a_two_byte_file_is_refused(model_copy):
    (model_copy / "model.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(ModelFolderError, match="only 2 bytes long"):
        check_model_folder(model_copy)


def _shard(folder: Path) -> dict:
    """Split model.safetensors into two shards with an index; returns the index."""
    tensors = _tensors(folder)
    names = sorted(tensors)
    first, second = names[: len(names) // 2], names[len(names) // 2 :]
    _save(folder, {n: tensors[n] for n in first}, "model-00001-of-00002.safetensors")
    _save(folder, {n: tensors[n] for n in second}, "model-00002-of-00002.safetensors")
    (folder / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {n: "model-00001-of-00002.safetensors" for n in first}}
    index["weight_map"].update({n: "model-00002-of-00002.safetensors" for n in second})
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return index


def test_a_sharded_folder_is_accepted(model_copy):
    _shard(model_copy)
    assert len(check_model_folder(model_copy).weight_files) == 2


def test_a_shard_left_out_of_the_index_is_missing_tensors(model_copy):
    index = _shard(model_copy)
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if v.startswith("model-00001")}
    (model_copy / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelFolderError, match="tensors the model needs are missing"):
        check_model_folder(model_copy)


def _outside_shard(model_copy: Path) -> Path:
    outside = model_copy.parent / "elsewhere.safetensors"
    shutil.copy(model_copy / "model.safetensors", outside)
    return outside


@pytest.mark.parametrize(
    "index, expected",
    [
        ([1, 2], "does not hold a JSON object"),
        ({"metadata": {}}, "no 'weight_map' object"),
        ({"weight_map": ["model.safetensors"]}, "no 'weight_map' object"),
        ({"weight_map": {}}, "weight_map is empty"),
        ({"weight_map": {"w": 3}}, "not a .safetensors file"),
        ({"weight_map": {"w": "../../etc/x.safetensors"}}, "points outside the model folder"),
        ({"weight_map": {"w": "ABSOLUTE"}}, "points outside the model folder"),
        ({"weight_map": {"w": "sub\\x.safetensors"}}, "points outside the model folder"),
        ({"weight_map": {"w": "model.safetensors"}}, "not in the shard the index names"),
    ],
    ids=["list", "no weight_map", "weight_map list", "empty", "not a file", "dotdot", "absolute", "backslash",
         "tensor not in shard"],
)  # fmt: skip
def test_malformed_shard_indexes_are_refused(model_copy, index, expected):
    if index == {"weight_map": {"w": "ABSOLUTE"}}:
        index = {"weight_map": {"w": str(_outside_shard(model_copy))}}
    path = model_copy / "model.safetensors.index.json"
    path.write_text(json.dumps(index))
    with pytest.raises(ModelFolderError, match=expected) as err:
        check_model_folder(model_copy)
    assert str(path) in str(err.value) or str(model_copy) in str(err.value)


def test_a_shard_linked_from_outside_the_folder_is_refused(model_copy):
    outside = _outside_shard(model_copy)
    (model_copy / "model.safetensors").unlink()
    (model_copy / "model.safetensors").symlink_to(outside)
    with pytest.raises(ModelFolderError, match="is a link to .*outside the model folder; refused"):
        check_model_folder(model_copy)


def test_a_hugging_face_cache_snapshot_with_links_into_its_blobs_is_accepted(tiny_model_dir, tmp_path):
    repo = tmp_path / "models--x--tiny"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for file in tiny_model_dir.iterdir():
        blob = repo / "blobs" / f"blob-{file.name}"
        shutil.copy(file, blob)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    assert check_model_folder(snapshot).n_parameters > 0


@pytest.mark.parametrize("content", [b"\x00garbage\xff", b"{}", b'{"model": 5}'], ids=["bytes", "empty", "wrong"])
def test_a_garbage_tokenizer_is_refused_at_check_time(model_copy, content):
    (model_copy / "tokenizer.json").write_bytes(content)
    with pytest.raises(ModelFolderError, match="the tokenizer cannot be loaded") as err:
        check_model_folder(model_copy)
    assert str(err.value).startswith(f"{model_copy / 'tokenizer.json'}: ")


def test_a_tokenizer_larger_than_the_embeddings_is_refused(model_copy):
    import torch

    tensors = _tensors(model_copy)
    tensors["model.embed_tokens.weight"] = torch.zeros(1000, 64)
    _save(model_copy, tensors)
    config = json.loads((model_copy / "config.json").read_text())
    (model_copy / "config.json").write_text(json.dumps({**config, "vocab_size": 1000}))
    with pytest.raises(ModelFolderError, match="49,152 tokens but the model's embedding table only 1,000"):
        check_model_folder(model_copy)


def test_the_load_itself_refuses_missing_tensors(model_copy, monkeypatch):
    """The second guard: even past a check, missing tensors are an error, not a random init."""
    from medalign_desktop.engine import engine as engine_module

    tensors = _tensors(model_copy)
    _save(model_copy, {k: v for k, v in tensors.items() if k != "model.norm.weight"})
    monkeypatch.setattr(engine_module, "check_model_folder", lambda p: check_model_folder(p, complete=False))
    with pytest.raises(ModelFolderError, match="left 1 tensor missing \\(model.norm.weight\\).*random weights"):
        Engine().load(model_copy, dtype="float32")


def test_models_use_refuses_a_broken_folder_without_a_traceback(model_copy, capsys):
    from medalign_desktop import cli
    from medalign_desktop.config import AppConfig, load_config, save_config

    save_config(AppConfig())
    tensors = _tensors(model_copy)
    _save(model_copy, {k: v for k, v in tensors.items() if ".layers.1." not in k})
    assert cli.main(["models", "use", str(model_copy)]) == cli.EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "9 tensors the model needs are missing" in captured.err
    assert "Traceback" not in captured.err + captured.out and "parameters" not in captured.out
    assert load_config().base_model is None


def test_the_header_level_check_imports_no_torch(tiny_model_dir):
    """The main window checks a chosen folder on the GUI thread before its background load: that part stays
    milliseconds and torch-free."""
    import subprocess
    import sys

    code = (
        "import sys; from medalign_desktop.engine import check_model_folder; "
        f"check_model_folder({str(tiny_model_dir)!r}, complete=False); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
