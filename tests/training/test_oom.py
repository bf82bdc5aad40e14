"""Out of memory: every form it takes becomes a `failed` event naming the job kind's settings, never a bare
traceback; and a real one, forced by an address-space cap on the child, leaves no adapter behind."""

from __future__ import annotations

import io
import json
import resource
import subprocess
from pathlib import Path

import pytest
import torch

from tests.training.test_cli import ROOT, child_env, command
from training import protocol
from training.__main__ import describe_failure, main
from training.config import CONFIG_CLASSES
from training.oom import GPU, RAM, describe_oom, memory_kind
from training.protocol import EventStreamParser, LogText, parse_line

GIB = 1024**3
# Measured: a normal tiny-model hitl job (batch 2, max_length 64) finishes under a 1.5 GiB address-space cap;
# the absurd one below (16 examples of 4096 tokens in one batch) fails under 2.5 GiB in its first forward pass
# after ~20 s (under 4 GiB it took 64 examples and ~65 s). The cap leaves 1 GiB of room over a normal job.
CAP_BYTES = int(2.5 * GIB)

CPU_ALLOCATOR = (
    "[enforce fail at alloc_cpu.cpp:118] data. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 51539607552 bytes. Error code 12 (Cannot allocate memory)"
)


def config_for(kind: str, **values):
    """The kind's config: its defaults plus ``values``."""
    return CONFIG_CLASSES[kind](**values)


@pytest.mark.parametrize(
    "make, memory",
    [
        (lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), GPU),
        (lambda: RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), GPU),
        (lambda: RuntimeError("CUDA error: out of memory"), GPU),
        (lambda: MemoryError(), RAM),
        (lambda: RuntimeError(CPU_ALLOCATOR), RAM),
        (lambda: RuntimeError("std::bad_alloc"), RAM),
        (lambda: RuntimeError("shape '[2, 3]' is invalid for input of size 7"), None),
        (lambda: ValueError("out of memory is a phrase, not an allocation"), None),
    ],
)
def test_memory_kind_recognises_every_form(make, memory):
    assert memory_kind(make()) == memory


def test_an_out_of_memory_error_wrapped_by_a_library_is_found():
    try:
        try:
            raise RuntimeError(CPU_ALLOCATOR)
        except RuntimeError as inner:
            raise ValueError("Map failed on example 3") from inner
    except ValueError as outer:
        assert memory_kind(outer) == RAM
        assert describe_failure(outer, "hitl")[0] == "Out of memory (RAM)"


EXPECTED = {  # kind -> settings its advice must name (with the value the job had)
    "sft": ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "gradient_checkpointing", "'4bit'"),
    "hitl": ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "gradient_checkpointing", "'4bit'"),
    "dpo": ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "gradient_checkpointing", "'4bit'"),
    "reward": ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "gradient_checkpointing", "'4bit'"),
    "ppo": ("batch_size", "forward_batch_size", "mini_batch_size", "max_new_tokens", "max_length", "'4bit'"),
    "evaluate": ("batch_size", "max_new_tokens", "'4bit'"),
    "score": ("batch_size", "max_length"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CONFIG_CLASSES))
def test_advice_names_the_kinds_settings_and_their_values(kind):
    values = (
        {"batch_size": 37} if kind in ("ppo", "evaluate", "score") else {"per_device_train_batch_size": 37}
    )
    config = config_for(kind, **values)
    reason, advice = describe_oom(torch.OutOfMemoryError("CUDA out of memory"), kind, config)
    assert reason == "Out of GPU memory"
    for setting in EXPECTED[kind]:
        assert setting in advice, (setting, advice)
    assert "(now 37)" in advice
    if kind in ("evaluate", "score"):  # generation / scoring has no optimiser to checkpoint
        assert "gradient_checkpointing" not in advice and "per_device_train_batch_size" not in advice
    if kind in ("ppo", "evaluate", "score"):
        assert "per_device_train_batch_size" not in advice


def test_ram_advice_and_settings_already_at_their_memory_saving_values():
    config = config_for("hitl", gradient_checkpointing=False, quantization="4bit", max_length=512)
    reason, advice = describe_oom(MemoryError(), "hitl", config)
    assert reason == "Out of memory (RAM)"
    assert "max_length (now 512)" in advice and "turn gradient_checkpointing on (now off)" in advice
    assert "'4bit'" not in advice  # already on: no advice to turn it on
    assert "close other programs" in advice


def test_out_of_memory_in_a_program_names_its_settings(make_job, monkeypatch):
    """Through main(): the failed event and result.json carry the job's own values."""

    def boom(*args, **kwargs):
        raise RuntimeError(CPU_ALLOCATOR)

    monkeypatch.setattr("training.sft.prepare", boom)
    job_dir = make_job(per_device_train_batch_size=3, max_length=48)
    out = io.StringIO()
    assert main(["hitl", "--job-dir", str(job_dir)], events=out) == protocol.EXIT_FAILED
    failed = parse_line(out.getvalue().splitlines()[-1])
    assert isinstance(failed, protocol.Failed) and failed.reason == "Out of memory (RAM)"
    assert "per_device_train_batch_size (now 3)" in failed.advice and "max_length (now 48)" in failed.advice
    result = json.loads((job_dir / "result.json").read_text())
    assert result["status"] == "failed" and result["advice"] == failed.advice


def write_long_job(job_dir: Path, model_dir: Path, n_examples: int = 16, **overrides) -> Path:
    """A hitl job whose examples fill max_length, so a batch really is batch x max_length tokens."""
    (job_dir / "data").mkdir(parents=True)
    config = {
        "kind": "hitl",
        "base_model": str(model_dir),
        "output_name": "adapter",
        "max_steps": 1,
        "max_length": 4096,
        "per_device_train_batch_size": 4096,
        "gradient_accumulation_steps": 1,
        **overrides,
    }
    (job_dir / "config.json").write_text(json.dumps(config))
    answer = " ".join(f"dose {i} mg" for i in range(1500))  # ~4500 tokens, cut at max_length
    line = {
        "prompt": [{"role": "user", "content": "List the doses."}],
        "completion": [{"role": "assistant", "content": answer}],
    }
    lines = [json.dumps({**line, "id": f"ex-{i}"}) for i in range(n_examples)]
    (job_dir / "data" / "train.jsonl").write_text("\n".join(lines) + "\n")
    return job_dir


def run_capped(job_dir: Path, cap_bytes: int, timeout: float = 120) -> tuple[int, list, str]:
    def cap() -> None:  # runs in the child only: the test process keeps its limits
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    done = subprocess.run(
        command("hitl", job_dir),
        capture_output=True,
        cwd=ROOT,
        env=child_env(),
        timeout=timeout,
        preexec_fn=cap,
    )
    parser = EventStreamParser()
    return done.returncode, parser.feed(done.stdout) + parser.close(), done.stderr.decode(errors="replace")


@pytest.mark.slow
def test_a_real_out_of_memory_gives_the_readable_failure(tiny_model_dir, tmp_path):
    job_dir = write_long_job(tmp_path / "job", tiny_model_dir)
    code, items, stderr = run_capped(job_dir, CAP_BYTES)
    assert code == protocol.EXIT_FAILED, stderr[-3000:]
    assert not [item.text for item in items if isinstance(item, LogText)]  # no traceback on stdout
    failed = items[-1]
    assert isinstance(failed, protocol.Failed), items[-3:]
    assert "out of memory" in failed.reason.lower(), (failed, stderr[-3000:])
    assert (
        "per_device_train_batch_size (now 4096)" in failed.advice and "max_length (now 4096)" in failed.advice
    )
    assert "Traceback" in stderr  # the developer's copy goes to the log
    assert not (job_dir / "adapter").exists() and not list(job_dir.glob("adapter.tmp-*"))
    assert json.loads((job_dir / "result.json").read_text())["status"] == "failed"
