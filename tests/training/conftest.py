"""Fixtures for the training programs: job folders (config.json + data/train.jsonl) on the tiny Llama."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from training import protocol

SYSTEM = "You are a careful clinical assistant."


def example(i: int) -> dict:
    return {
        "prompt": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"What is the usual adult dose of drug {i}?"},
        ],
        "completion": [{"role": "assistant", "content": f"The usual dose is {i + 1} mg twice daily."}],
        "id": f"ex-{i}",
    }


def write_job(job_dir: Path, config: dict, n_examples: int = 8, eval_examples: int = 0) -> Path:
    (job_dir / "data").mkdir(parents=True, exist_ok=True)
    (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    lines = [json.dumps(example(i)) for i in range(n_examples)]
    (job_dir / "data" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if eval_examples:
        lines = [json.dumps(example(100 + i)) for i in range(eval_examples)]
        (job_dir / "data" / "eval.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return job_dir


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """The tiny model gains nothing from a second thread, and on a shared 2-core machine OpenMP threads that
    spin against another busy process make a step up to 10x slower; one thread keeps timings steady."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def make_job(tmp_path, tiny_model_dir):
    """make_job(kind="hitl", n_examples=8, eval_examples=0, **overrides) -> job folder for the tiny model.

    Defaults keep runs short: 3 steps, max length 64, batch 2."""

    def make(kind: str = "hitl", n_examples: int = 8, eval_examples: int = 0, name: str = "job", **overrides):
        config = {
            "kind": kind,
            "base_model": str(tiny_model_dir),
            "parent_adapter": None,
            "output_name": "adapter",
            "max_steps": 3,
            "max_length": 64,
            "per_device_train_batch_size": 2,
            "per_device_eval_batch_size": 2,
            "gradient_accumulation_steps": 1,
            **overrides,
        }
        return write_job(tmp_path / name, config, n_examples, eval_examples)

    return make


@pytest.fixture
def events_buffer():
    """Send emitted events to a buffer; returns it (parse with protocol.parse_line per line)."""
    buffer = io.StringIO()
    previous = protocol.set_event_stream(buffer)
    yield buffer
    protocol.set_event_stream(previous)


def parse_events(text: str) -> list:
    return [protocol.parse_line(line) for line in text.splitlines() if line.strip()]


def pair(
    i: int, good: str = "Take {n} mg twice daily with food.", bad: str = "No idea, maybe {n} grams."
) -> dict:
    """One preference pair in TRL's explicit-prompt conversational form (the dpo / reward jobs' data)."""
    return {
        "id": f"pair-{i}",
        "prompt": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"What is the usual adult dose of drug {i}?"},
        ],
        "chosen": [{"role": "assistant", "content": good.format(n=i + 1)}],
        "rejected": [{"role": "assistant", "content": bad.format(n=i + 1)}],
    }


@pytest.fixture
def make_pair_job(tmp_path, tiny_model_dir):
    """make_pair_job(kind="dpo", n_pairs=8, eval_pairs=0, **overrides) -> job folder of pairs for the tiny model.

    Defaults keep runs short: 3 steps, max length 64, batch 2, no accumulation."""

    def make(kind: str = "dpo", n_pairs: int = 8, eval_pairs: int = 0, name: str = "job", **overrides):
        config = {
            "kind": kind,
            "base_model": str(tiny_model_dir),
            "parent_adapter": None,
            "output_name": "adapter",
            "max_steps": 3,
            "max_length": 64,
            "per_device_train_batch_size": 2,
            "per_device_eval_batch_size": 2,
            "gradient_accumulation_steps": 1,
            **overrides,
        }
        job_dir = tmp_path / name
        (job_dir / "data").mkdir(parents=True, exist_ok=True)
        (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
        lines = [json.dumps(pair(i)) for i in range(n_pairs)]
        (job_dir / "data" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if eval_pairs:
            lines = [json.dumps(pair(100 + i)) for i in range(eval_pairs)]
            (job_dir / "data" / "eval.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return job_dir

    return make


def make_reward_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    """A reward adapter as the `reward` job saves one: peft ``save_pretrained`` of
    ``AutoModelForSequenceClassification(num_labels=1)`` with ``LoraConfig(task_type="SEQ_CLS")`` (LoRA weights
    plus the score head as modules_to_save), with random non-zero LoRA B and score weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    base = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, dtype=torch.float32)
    base.config.pad_token_id = 2
    config = LoraConfig(
        task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name or "score" in name:
                param.normal_(0, 0.5)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_reward_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    return make_reward_adapter(tiny_model_dir, tmp_path_factory.mktemp("tiny-reward") / "reward", 3)


@pytest.fixture
def make_ppo_job(tmp_path, tiny_model_dir, tiny_reward_adapter):
    """make_ppo_job(n_prompts=6, name="job", **overrides) -> a `ppo` job folder (data/prompts.jsonl) for the
    tiny model. Defaults keep runs to seconds: 2 PPO steps of 2 rollouts, 8 new tokens, 1 epoch."""

    def make(n_prompts: int = 6, name: str = "job", **overrides):
        config = {
            "kind": "ppo",
            "base_model": str(tiny_model_dir),
            "parent_adapter": None,
            "reward_adapter": str(tiny_reward_adapter),
            "output_name": "adapter",
            "max_steps": 2,
            "batch_size": 2,
            "mini_batch_size": 1,
            "ppo_epochs": 1,
            "max_new_tokens": 8,
            "max_length": 128,
            "checkpoint_every": 1,
            **overrides,
        }
        job_dir = tmp_path / name
        (job_dir / "data").mkdir(parents=True, exist_ok=True)
        (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
        lines = [json.dumps({"id": f"p-{i}", "prompt": example(i)["prompt"]}) for i in range(n_prompts)]
        (job_dir / "data" / "prompts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return job_dir

    return make
