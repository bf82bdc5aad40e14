"""Job configs: the research project's defaults, overrides, and clear errors for unknown keys and types."""

from __future__ import annotations

import json

import pytest

from training.config import (
    CONFIG_CLASSES,
    ConfigError,
    HITLJobConfig,
    SFTJobConfig,
    config_from_dict,
    defaults,
    load_config,
)

BASE = {"base_model": "/models/llama-3.2-3b-instruct", "parent_adapter": None, "output_name": "adapter"}

LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_sft_defaults_are_the_research_projects():
    config = config_from_dict({"kind": "sft", **BASE})
    assert isinstance(config, SFTJobConfig)
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.05)
    assert config.lora_target_modules == LORA_MODULES
    assert config.learning_rate == 2e-4
    assert config.lr_scheduler_type == "cosine"
    assert config.warmup_ratio == 0.1
    assert config.num_train_epochs == 3
    assert config.max_length == 2048
    assert config.gradient_checkpointing is True
    assert config.quantization == "auto"  # NF4 + double quant + bf16 compute on CUDA
    assert (config.max_steps, config.logging_steps) == (-1, 1)


def test_hitl_defaults():
    config = config_from_dict({"kind": "hitl", **BASE})
    assert isinstance(config, HITLJobConfig)
    assert config.learning_rate == 1e-4
    assert config.num_train_epochs == 1
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.05)
    assert config.max_length == 2048 and config.gradient_checkpointing


def test_overrides():
    config = config_from_dict(
        {"kind": "hitl", **BASE, "learning_rate": 5e-5, "max_steps": 10, "lora_r": 8, "num_train_epochs": 2}
    )
    assert (config.learning_rate, config.max_steps, config.lora_r) == (5e-5, 10, 8)
    assert config.num_train_epochs == 2.0 and isinstance(config.num_train_epochs, float)


def test_defaults_helper_for_the_app():
    assert defaults("sft")["learning_rate"] == 2e-4
    assert defaults("hitl")["lora_target_modules"] == LORA_MODULES
    assert {"sft", "hitl", "dpo", "reward"} <= set(CONFIG_CLASSES)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown key 'learning_rat'"):
        config_from_dict({"kind": "sft", **BASE, "learning_rat": 1e-4})


@pytest.mark.parametrize(
    "field, value",
    [
        ("learning_rate", "fast"),
        ("max_steps", 2.5),
        ("per_device_train_batch_size", True),
        ("gradient_checkpointing", 1),
        ("lora_target_modules", "q_proj"),
        ("lora_target_modules", ["q_proj", 3]),
        ("parent_adapter", 7),
        ("base_model", None),
    ],
)
def test_wrong_type_names_the_field(field, value):
    with pytest.raises(ConfigError, match=f"field '{field}' must be"):
        config_from_dict({"kind": "sft", **BASE, field: value})


@pytest.mark.parametrize(
    "field, value",
    [
        ("learning_rate", 0),
        ("lora_r", -1),
        ("warmup_ratio", 1.5),
        ("eval_fraction", 1.0),
        ("max_steps", 0),
        ("output_name", "../elsewhere"),
        ("device", "tpu"),
        ("quantization", "8bit"),
        ("base_model", ""),
    ],
)
def test_bad_value_names_the_field(field, value):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        config_from_dict({"kind": "sft", **BASE, field: value})


def test_kind_must_match_the_program():
    with pytest.raises(ConfigError, match="'kind' is 'sft' but the program was started as 'hitl'"):
        config_from_dict({"kind": "sft", **BASE}, kind="hitl")
    with pytest.raises(ConfigError, match="'kind' must be one of"):
        config_from_dict({"kind": "no-such-kind", **BASE})
    assert config_from_dict(dict(BASE), kind="hitl").kind == "hitl"  # kind may be left to the command line


def test_base_model_is_required():
    with pytest.raises(ConfigError, match="'base_model' is required"):
        config_from_dict({"kind": "sft"})


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config.json is missing"):
        load_config(tmp_path)
    (tmp_path / "config.json").write_text('{"kind": "sft",\n "base_model": }', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON \\(line 2"):
        load_config(tmp_path)
    (tmp_path / "config.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "sft", **BASE}), encoding="utf-8")
    assert load_config(tmp_path, kind="sft").base_model == BASE["base_model"]


def test_round_trip_through_to_dict():
    config = config_from_dict({"kind": "hitl", **BASE, "seed": 7})
    assert config_from_dict(config.to_dict()) == config
