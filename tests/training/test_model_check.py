"""The training programs apply the app's model-folder rules (training/model_check.py) and load base models
through the guard that refuses missing or left-over tensors."""

from __future__ import annotations

import shutil

import pytest

from training.lora import LoadPlan, ModelError, check_model_folder, load_base_model
from training.model_check import ModelCheckError, from_pretrained_checked


@pytest.fixture
def broken_copy(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    tensors = load_file(target / "model.safetensors")
    save_file({k: v for k, v in tensors.items() if "layers.0.self_attn" not in k}, target / "model.safetensors")
    return target


def test_the_training_check_accepts_the_tiny_model(tiny_model_dir):
    assert check_model_folder(tiny_model_dir) == tiny_model_dir


def test_the_training_check_refuses_missing_tensors_like_the_app(broken_copy):
    from medalign_desktop.engine import ModelFolderError
    from medalign_desktop.engine import check_model_folder as app_check

    with pytest.raises(ModelError) as training_err:
        check_model_folder(broken_copy)
    with pytest.raises(ModelFolderError) as app_err:
        app_check(broken_copy)
    assert str(training_err.value) == f"Base model: {app_err.value}"
    assert "4 tensors the model needs are missing (model.layers.0.self_attn." in str(app_err.value)


def test_the_training_check_refuses_a_missing_folder(tmp_path):
    with pytest.raises(ModelError, match="the model folder does not exist"):
        check_model_folder(tmp_path / "nowhere")


def test_the_load_guard_refuses_missing_tensors(broken_copy):
    from transformers import AutoModelForCausalLM

    with pytest.raises(ModelCheckError, match="left 4 tensors missing .*random weights"):
        from_pretrained_checked(AutoModelForCausalLM, broken_copy)


def test_load_base_model_refuses_missing_tensors(broken_copy):
    with pytest.raises(ModelError, match="cannot be loaded: .*4 tensors missing"):
        load_base_model(broken_copy, LoadPlan("cpu", "float32", "none"), gradient_checkpointing=False)


def test_a_reward_model_may_lack_its_fresh_score_head(tiny_model_dir):
    model = load_base_model(tiny_model_dir, LoadPlan("cpu", "float32", "none"), False, scorer=True)
    assert model.score.weight.shape[0] == 1
