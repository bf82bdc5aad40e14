"""Model-folder checks: every broken folder gives an error naming the path and what is wrong."""

from __future__ import annotations

import json
import shutil

import pytest

from medalign_desktop.engine import Engine, ModelFolderError, check_model_folder


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def test_good_folder_is_described(tiny_model_dir):
    info = check_model_folder(tiny_model_dir)
    assert info.model_type == "llama" and info.architecture == "LlamaForCausalLM"
    assert info.has_chat_template
    assert 3_000_000 < info.n_parameters < 4_000_000  # 49152 x 64 embedding + 2 small layers
    assert info.weights_bytes == info.n_parameters * 4  # fp32
    assert "LlamaForCausalLM" in info.describe()


def test_missing_folder(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist") as err:
        check_model_folder(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)


def test_file_instead_of_folder(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(ModelFolderError, match="is a file"):
        check_model_folder(file)


def test_missing_config(model_copy):
    (model_copy / "config.json").unlink()
    with pytest.raises(ModelFolderError, match=r"configuration is missing \(config.json\)"):
        check_model_folder(model_copy)


def test_corrupt_config(model_copy):
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="cannot be read"):
        check_model_folder(model_copy)


def test_config_without_model_type(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    del config["model_type"]
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="no 'model_type'"):
        check_model_folder(model_copy)


def test_missing_tokenizer(model_copy):
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelFolderError, match="tokenizer is missing"):
        check_model_folder(model_copy)


def test_missing_weights(model_copy):
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="no weights found"):
        check_model_folder(model_copy)


def test_pickle_weights_are_refused(model_copy):
    (model_copy / "model.safetensors").rename(model_copy / "pytorch_model.bin")
    with pytest.raises(ModelFolderError, match="safetensors only"):
        check_model_folder(model_copy)


def test_truncated_weights(model_copy):
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFolderError, match="truncated") as err:
        check_model_folder(model_copy)
    assert str(weights) in str(err.value)


def test_garbage_weights(model_copy):
    (model_copy / "model.safetensors").write_bytes(b"\xff" * 100)
    with pytest.raises(ModelFolderError, match="not a readable safetensors file"):
        check_model_folder(model_copy)


def test_missing_shard(model_copy):
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (model_copy / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelFolderError, match="shards are missing: model-00001-of-00002"):
        check_model_folder(model_copy)


def test_engine_load_refuses_a_broken_folder_without_touching_the_loaded_model(tiny_model_dir, model_copy):
    engine = Engine()
    engine.load(tiny_model_dir, dtype="float32")
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelFolderError):
        engine.load(model_copy)
    assert engine.loaded is not None and engine.loaded.folder.path == tiny_model_dir
