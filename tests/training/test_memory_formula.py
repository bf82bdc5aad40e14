"""The memory estimate's formula (training/memory.py) on model shapes written as config.json: no torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.memory import (
    GiB,
    MemoryEstimate,
    ModelShapeError,
    estimate_job_memory,
    read_shape,
)

# SmolLM2-135M's shape (its config.json, as converted for the tests)
SMOLLM2 = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "vocab_size": 49152,
    "tie_word_embeddings": True,
    "dtype": "bfloat16",
}
# A Llama-3.2-3B-like shape: 128k vocabulary, untied LM head in its own right
LARGE = {
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 28,
    "num_attention_heads": 24,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def model_folder(root: Path, shape: dict, name: str = "model") -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(shape), encoding="utf-8")
    return folder


@pytest.fixture
def smol(tmp_path) -> Path:
    return model_folder(tmp_path, SMOLLM2, "smol")


@pytest.fixture
def large(tmp_path) -> Path:
    return model_folder(tmp_path, LARGE, "large")


def estimate(kind: str, model: Path, device: str = "cpu", **config) -> MemoryEstimate:
    return estimate_job_memory(kind, config, model, device=device)


def test_parameter_count_matches_the_published_smollm2_size(smol):
    shape = read_shape(smol)
    assert shape.linear_parameters() + shape.other_parameters() == 134_515_008
    assert shape.head_dim == 64 and shape.kv_heads == 3


def test_untied_lm_head_adds_its_matrix_and_head_dim_defaults_to_hidden_over_heads(tmp_path):
    tied = read_shape(model_folder(tmp_path, {**LARGE, "tie_word_embeddings": True}, "tied"))
    untied = read_shape(model_folder(tmp_path, LARGE, "untied"))
    assert untied.other_parameters() - tied.other_parameters() == 128256 * 3072
    assert untied.head_dim == 3072 // 24


def test_cpu_weights_are_fp32_whatever_the_file_holds(smol):
    parts = estimate("hitl", smol).parts
    assert parts["weights"] == 134_515_008 * 4


def test_activations_grow_with_batch_and_length(smol):
    def activations(batch: int, length: int = 256) -> int:
        config = dict(max_length=length, per_device_train_batch_size=batch, eval_fraction=0.0)
        return estimate("hitl", smol, **config).parts["activations"]

    one, two, four = (activations(b) for b in (1, 2, 4))
    assert one < two < four
    assert two == pytest.approx(2 * one, rel=0.01)  # linear below the LM head's 4,096-token tile
    assert activations(2, 1024) == pytest.approx(4 * activations(2, 256), rel=0.01)


def test_evaluation_counts_only_with_a_held_back_slice(smol):
    def activations(eval_fraction: float) -> int:
        config = dict(max_length=256, per_device_train_batch_size=1, per_device_eval_batch_size=8)
        return estimate("hitl", smol, eval_fraction=eval_fraction, **config).parts["activations"]

    assert activations(0.1) > 2 * activations(0.0)  # the evaluation batch is 8 times the training batch


def test_the_logit_tile_stops_growing_past_4096_tokens(large):
    # past 4,096 tokens per batch only the decoder's activations grow, not the LM head's tile
    small, big = (
        estimate("hitl", large, max_length=4096, per_device_train_batch_size=b, per_device_eval_batch_size=1)
        for b in (1, 2)
    )
    assert big.parts["activations"] < 2 * small.parts["activations"]


def test_training_part_scales_with_the_lora_rank(smol):
    r16 = estimate("hitl", smol, lora_r=16).parts["training"]
    r64 = estimate("hitl", smol, lora_r=64).parts["training"]
    assert r64 == 4 * r16
    fewer = estimate("hitl", smol, lora_target_modules=["q_proj", "v_proj"]).parts["training"]
    assert fewer < r16 / 5  # q and v are the small projections


def test_gradient_checkpointing_saves_activations(smol):
    def activations(device: str, checkpointing: bool) -> int:
        return estimate("hitl", smol, device, max_length=512, gradient_checkpointing=checkpointing).parts[
            "activations"
        ]

    assert activations("cuda", False) > 3 * activations("cuda", True)
    # on a CPU glibc keeps part of what checkpointing frees resident (CPU_HEAP_RETAINED): less is saved
    assert activations("cpu", True) < activations("cpu", False) < 2 * activations("cpu", True)


def test_dpo_needs_more_than_hitl_at_the_same_settings(smol):
    same = dict(max_length=512, per_device_train_batch_size=2, per_device_eval_batch_size=2)
    dpo, hitl, reward = (estimate(kind, smol, **same).total_bytes for kind in ("dpo", "hitl", "reward"))
    assert dpo > hitl
    assert reward < dpo  # the score head reads one value per token: no vocabulary-wide logits


def test_a_parent_adds_dpos_frozen_reference_copy(smol, tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    config = {"r": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    (parent / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    fresh = estimate("dpo", smol, lora_r=8, lora_target_modules=config["target_modules"])
    continued = estimate("dpo", smol, parent_adapter=str(parent))
    lora = read_shape(smol).lora_parameters(8, config["target_modules"])
    assert continued.parts["training"] - fresh.parts["training"] == lora * 4  # the parent's rank, not 16


def test_cuda_4bit_is_smaller_than_bf16_and_than_the_cpu(large):
    cpu = estimate("sft", large, max_length=1024, per_device_train_batch_size=1)
    nf4 = estimate("sft", large, "cuda", max_length=1024, per_device_train_batch_size=1, quantization="4bit")
    bf16 = estimate("sft", large, "cuda", max_length=1024, per_device_train_batch_size=1, quantization="none")
    assert nf4.parts["weights"] < bf16.parts["weights"] < cpu.parts["weights"]
    assert nf4.total_bytes < bf16.total_bytes < cpu.total_bytes
    assert nf4.device == "cuda"
    # 3.2B parameters: about 1.5 GiB of NF4 projections plus fp32 embeddings and LM head (2 x 1.5 GiB)
    assert 4.0 * GiB < nf4.parts["weights"] < 5.0 * GiB


def test_4bit_asked_for_on_the_cpu_counts_nf4_weights_auto_does_not(large):
    cpu = estimate("sft", large, max_length=1024, per_device_train_batch_size=1)
    nf4 = estimate("sft", large, "cpu", max_length=1024, per_device_train_batch_size=1, quantization="4bit")
    on_cuda = estimate(
        "sft", large, "cuda", max_length=1024, per_device_train_batch_size=1, quantization="4bit"
    )
    assert nf4.parts["weights"] == on_cuda.parts["weights"] < cpu.parts["weights"]
    assert estimate("sft", large, "cpu", quantization="auto").parts["weights"] == cpu.parts["weights"]


def test_ppo_grows_with_forward_batch_and_holds_the_reward_adapter(smol, tmp_path):
    reward = tmp_path / "reward"
    reward.mkdir()
    (reward / "adapter_config.json").write_text(json.dumps({"r": 4, "target_modules": ["q_proj"]}))
    base = dict(reward_adapter=str(reward), batch_size=16, max_new_tokens=128, max_length=1024)
    small = estimate("ppo", smol, forward_batch_size=1, **base)
    big = estimate("ppo", smol, forward_batch_size=16, **base)
    assert big.parts["activations"] > small.parts["activations"]
    shape = read_shape(smol)
    policy = shape.lora_parameters(16, list(shape.linears())) + shape.hidden + 1
    frozen_reward = shape.lora_parameters(4, ["q_proj"]) + shape.hidden
    assert small.parts["training"] == policy * 16 + frozen_reward * 4


def test_describe_reads_well_in_a_status_line(smol):
    text = estimate("dpo", smol, max_length=1024).describe()
    assert text.startswith("about ") and " GiB (weights 0.5, training 0.1, activations " in text
    assert text.endswith(")") and "runtime 0.5" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "is missing"),
        ("{not json", "is not valid JSON (line 1"),
        ("[1, 2]", "must hold a JSON object"),
        (json.dumps({**SMOLLM2, "hidden_size": None}), "'hidden_size' must be a positive whole number"),
        (json.dumps({k: v for k, v in SMOLLM2.items() if k != "vocab_size"}), "'vocab_size'"),
    ],
)
def test_a_bad_model_config_names_the_file_and_the_key(tmp_path, content, expected):
    folder = tmp_path / "broken-model"
    folder.mkdir()
    if content is not None:
        (folder / "config.json").write_text(content, encoding="utf-8")
    with pytest.raises(ModelShapeError) as caught:
        estimate_job_memory("hitl", {}, folder)
    assert str(folder / "config.json") in str(caught.value)
    assert expected in str(caught.value)


def test_bad_kind_device_or_setting_is_a_clear_error(smol):
    with pytest.raises(ValueError, match="job kind 'score'"):
        estimate("score", smol)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        estimate("hitl", smol, "mps")
    with pytest.raises(ValueError, match="config field 'max_length' must be a positive whole number"):
        estimate("hitl", smol, max_length="long")
