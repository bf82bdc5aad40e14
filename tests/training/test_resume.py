"""Resuming a stopped job from its last checkpoint (issue 9, acceptance at the program level).

An uninterrupted hitl run of 8 optimiser steps with a checkpoint every 2 is compared with a run in a fresh job
folder that receives a real SIGTERM (the app's Cancel) just after its checkpoint at step 4, then continues with
``--resume``: same final step, metric steps that go on at 5 with no gap, the same losses at the same steps (the
CPU is deterministic) and the same final adapter weights, because the optimiser, scheduler, RNG states and the
position in the data come back from the checkpoint.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal

import pytest
import torch
from safetensors.torch import load_file

from training import protocol
from training.__main__ import main
from training.checkpoints import find_best_and_last, list_checkpoints

from .conftest import parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

# 16 examples: 2 held back (eval_fraction 0.1), 14 train in 7 batches of 2, so step 8 starts a second epoch
# and the resumed data order is checked across an epoch boundary too. lr high enough to move the weights.
RUN = dict(kind="hitl", n_examples=16, max_steps=8, eval_steps=2, learning_rate=2e-3, warmup_ratio=0.0)


class SignalAfter(io.StringIO):
    """An event stream that sends this process ``signum`` right after the event line containing ``marker``
    (the program is then inside the trainer's on_save, exactly after that checkpoint is complete)."""

    def __init__(self, marker: str, signum: int = signal.SIGTERM):
        super().__init__()
        self.marker, self.signum, self.sent = marker, signum, False

    def write(self, text: str) -> int:
        written = super().write(text)
        if not self.sent and self.marker in text:
            self.sent = True
            os.kill(os.getpid(), self.signum)
        return written


class CrashAfter(io.StringIO):
    """An event stream that raises (a crash of the program) right after the event line containing ``marker``."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.marker in text:
            raise RuntimeError("simulated crash")
        return written


def run_main(job_dir, *flags: str, kind: str = "hitl", out: io.StringIO | None = None):
    out = out if out is not None else io.StringIO()
    code = main([kind, "--job-dir", str(job_dir), *flags], events=out)
    return code, parse_events(out.getvalue())


def training_losses(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, protocol.Metric) and e.loss is not None}


def eval_losses(events) -> dict[int, float]:
    return {e.step: e.eval_loss for e in events if isinstance(e, protocol.Metric) and e.eval_loss is not None}


def test_cancelled_job_resumes_to_the_same_result_as_an_uninterrupted_one(make_job):
    full_dir = make_job(name="full", **RUN)
    code, full = run_main(full_dir)
    assert code == protocol.EXIT_OK
    full_losses = training_losses(full)
    assert sorted(full_losses) == list(range(1, 9))
    assert sorted(eval_losses(full)) == [2, 4, 6, 8]

    cut_dir = make_job(name="cut", **RUN)
    stream = SignalAfter(f'"{cut_dir / "checkpoints" / "checkpoint-4"}"')
    code, cut = run_main(cut_dir, out=stream)
    assert stream.sent and code == protocol.EXIT_CANCELLED
    assert isinstance(cut[-1], protocol.Failed) and cut[-1].reason == protocol.CANCELLED_REASON
    assert not (cut_dir / "adapter").exists()
    _, last = find_best_and_last(cut_dir)
    assert last is not None and last.step == 4  # the checkpoint survived the cancel
    assert sorted(training_losses(cut)) == [1, 2, 3, 4]  # stopped before step 5's work

    code, resumed = run_main(cut_dir, "--resume")
    assert code == protocol.EXIT_OK, resumed[-1]
    started = next(e for e in resumed if isinstance(e, protocol.Started))
    assert started.total_steps == 8
    logs = [e.message for e in resumed if isinstance(e, protocol.Log)]
    assert any("Resuming from the checkpoint at step 4" in m for m in logs)
    progress = [e for e in resumed if isinstance(e, protocol.Progress)]
    assert [p.step for p in progress] == [5, 6, 7, 8] and all(p.total == 8 for p in progress)
    assert progress[0].eta_s is not None and progress[0].eta_s > 0  # paced on this run's steps, not 5 of them

    # The curve goes on where it stopped: no gap, no restart at 1, the same numbers as the uninterrupted run.
    resumed_losses = training_losses(resumed)
    assert sorted(resumed_losses) == [5, 6, 7, 8]
    joined = {**training_losses(cut), **resumed_losses}
    assert sorted(joined) == sorted(full_losses)
    for step, loss in joined.items():
        assert math.isclose(loss, full_losses[step], rel_tol=1e-5, abs_tol=1e-6), (
            step,
            loss,
            full_losses[step],
        )
    for step, value in eval_losses(resumed).items():
        assert step in (6, 8) and math.isclose(value, eval_losses(full)[step], rel_tol=1e-5), step

    finished = resumed[-1]
    assert isinstance(finished, protocol.Finished) and finished.metrics["global_step"] == 8
    # the whole run's mean loss (logged every step), not only the resumed steps'
    assert finished.metrics["train_loss"] == pytest.approx(full[-1].metrics["train_loss"], rel=1e-5)
    full_weights = load_file(full_dir / "adapter" / "adapter_model.safetensors")
    resumed_weights = load_file(cut_dir / "adapter" / "adapter_model.safetensors")
    assert full_weights.keys() == resumed_weights.keys()
    for name, tensor in full_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    result = json.loads((cut_dir / "result.json").read_text())
    assert result["checkpoints"]["last"]["step"] == 8 and [c.step for c in list_checkpoints(cut_dir)][-1] == 8


def test_a_crash_after_a_checkpoint_keeps_it_and_resume_continues(make_job):
    """A crash (here an exception out of the event stream right after checkpoint 2) fails the job; the
    complete checkpoint stays and resuming from it finishes the run."""

    job_dir = make_job(kind="hitl", max_steps=4, eval_steps=2)
    code, events = run_main(job_dir, out=CrashAfter('checkpoint-2"'))
    assert code == protocol.EXIT_FAILED and "simulated crash" in events[-1].reason
    assert [c.step for c in list_checkpoints(job_dir)] == [2]
    # what a SIGKILL can leave besides: a checkpoint half written, one renamed away but not yet deleted
    half = job_dir / "checkpoints" / "checkpoint-4"
    half.mkdir()
    (half / "adapter_model.safetensors").write_bytes(b"cut")
    trash = job_dir / "checkpoints" / "checkpoint-1.trash-99"
    shutil.copytree(job_dir / "checkpoints" / "checkpoint-2", trash)
    code, events = run_main(job_dir, "--resume")
    assert code == protocol.EXIT_OK, events[-1]
    assert sorted(training_losses(events)) == [3, 4] and events[-1].metrics["global_step"] == 4
    assert not trash.exists() and [c.step for c in list_checkpoints(job_dir)] == [4]


def test_resume_without_a_checkpoint_fails_readably(make_job):
    job_dir = make_job()
    code, events = run_main(job_dir, "--resume")
    assert code == protocol.EXIT_FAILED
    failed = events[-1]
    assert isinstance(failed, protocol.Failed)
    assert "Cannot resume" in failed.reason and str(job_dir / "checkpoints") in failed.reason
    assert "Start the job again" in failed.advice
    assert not any(isinstance(e, protocol.Started) for e in events)  # refused before the model loaded
    assert json.loads((job_dir / "result.json").read_text())["status"] == "failed"


def test_resume_of_a_job_that_keeps_no_checkpoints_is_a_usage_error(tmp_path, tiny_model_dir):
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    config = {"kind": "score", "base_model": str(tiny_model_dir), "reward_adapter": str(tmp_path)}
    (job_dir / "config.json").write_text(json.dumps(config))
    code, events = run_main(job_dir, "--resume", kind="score")
    assert code == protocol.EXIT_USAGE and "cannot resume" in events[-1].reason


@pytest.mark.parametrize("kind", ["dpo", "reward"])
def test_pair_kinds_resume_to_the_uninterrupted_weights(make_pair_job, tiny_adapters, kind):
    """DPO with a parent (the frozen "ref" is rebuilt from the parent on resume, the checkpoint holds only the
    trained "default") and reward (the score head is saved and restored with the LoRA)."""
    run = dict(kind=kind, n_pairs=12, max_steps=4, eval_steps=2, learning_rate=1e-3)
    if kind == "dpo":
        run["parent_adapter"] = str(tiny_adapters[0])
    full_dir = make_pair_job(name="full", **run)
    code, full = run_main(full_dir, kind=kind)
    assert code == protocol.EXIT_OK, full[-1]

    cut_dir = make_pair_job(name="cut", **run)
    stream = SignalAfter(f'"{cut_dir / "checkpoints" / "checkpoint-2"}"')
    code, _ = run_main(cut_dir, kind=kind, out=stream)
    assert code == protocol.EXIT_CANCELLED and find_best_and_last(cut_dir)[1].step == 2
    code, resumed = run_main(cut_dir, "--resume", kind=kind)
    assert code == protocol.EXIT_OK, resumed[-1]
    assert sorted(training_losses(resumed)) == [3, 4]
    for step, loss in training_losses(resumed).items():
        assert math.isclose(loss, training_losses(full)[step], rel_tol=1e-5, abs_tol=1e-6), step
    full_weights = load_file(full_dir / "adapter" / "adapter_model.safetensors")
    resumed_weights = load_file(cut_dir / "adapter" / "adapter_model.safetensors")
    assert full_weights.keys() == resumed_weights.keys()
    if kind == "reward":
        assert any("score" in name for name in full_weights)
    for name, tensor in full_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "overrides, end",
    [
        ({}, 4),  # the last step's checkpoint
        ({"early_stopping_patience": 1, "early_stopping_threshold": 100.0}, 2),  # stopped early at step 2
    ],
)
def test_a_crash_between_the_final_checkpoint_and_the_adapter_trains_no_further(make_job, overrides, end):
    job_dir = make_job(n_examples=12, max_steps=4, eval_steps=1, **overrides)
    code, events = run_main(job_dir, out=CrashAfter(f'checkpoint-{end}"'))
    assert code == protocol.EXIT_FAILED and not (job_dir / "adapter").exists()
    _, last = find_best_and_last(job_dir)
    assert last.step == end
    code, events = run_main(job_dir, "--resume")
    assert code == protocol.EXIT_OK, events[-1]
    assert not training_losses(events) and not eval_losses(events)  # not one step past the end
    assert any(isinstance(e, protocol.Started) for e in events)
    assert any(
        f"Training had ended at step {end}" in e.message for e in events if isinstance(e, protocol.Log)
    )
    metrics = events[-1].metrics
    assert metrics["global_step"] == end and metrics["stopped_early"] is bool(overrides)
    assert metrics["eval_loss"] == pytest.approx(last.value)
    saved = load_file(last.path / "adapter_model.safetensors")
    final = load_file(job_dir / "adapter" / "adapter_model.safetensors")
    assert saved.keys() == final.keys() and all(torch.equal(saved[k], final[k]) for k in saved)
