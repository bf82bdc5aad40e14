"""``python -m training ppo --resume`` on the tiny Llama: a run cancelled after a checkpoint and resumed ends
like the uninterrupted run (same steps, same numbers, same adapter), and resuming with nothing to resume from
fails with advice."""

from __future__ import annotations

import io
import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from training import protocol
from training.__main__ import main
from training.checkpoints import find_best_and_last

from .conftest import parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

# 4 PPO steps of 2 rollouts (2 optimiser steps each), evaluations and checkpoints after steps 2 and 4
JOB = dict(
    max_steps=4,
    checkpoint_every=2,
    eval_every=2,
    eval_prompts=2,
    n_prompts=8,
    learning_rate=1e-3,
    ppo_epochs=1,
)
TIMINGS = ("generation_s", "scoring_s", "optimisation_s", "eval_s")


def run_main(job_dir, *flags):
    out = io.StringIO()
    code = main(["ppo", "--job-dir", str(job_dir), *flags], events=out)
    return code, parse_events(out.getvalue())


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def numbers(metric: protocol.Metric) -> dict[str, float]:
    """A metric event's values, timings left out (they differ from run to run)."""
    values = {"loss": metric.loss, "grad_norm": metric.grad_norm, "epoch": metric.epoch, **metric.extra}
    return {k: v for k, v in values.items() if k not in TIMINGS and v is not None}


def assert_same_numbers(a: list[protocol.Metric], b: list[protocol.Metric]) -> None:
    assert [m.step for m in a] == [m.step for m in b]
    for x, y in zip(a, b, strict=True):
        left, right = numbers(x), numbers(y)
        assert left.keys() == right.keys()
        for key in left:
            assert left[key] == pytest.approx(right[key], rel=1e-4, abs=1e-6), (x.step, key)


def test_a_cancelled_and_resumed_run_ends_like_an_uninterrupted_one(make_ppo_job, monkeypatch):
    whole = make_ppo_job(name="whole", **JOB)
    code, uninterrupted = run_main(whole)
    assert code == protocol.EXIT_OK, uninterrupted[-1]

    job_dir = make_ppo_job(name="stopped", **JOB)
    from training.ppo.loop import PPOStep

    calls, original, kill_at = [], PPOStep._optimiser_step, [5]

    def optimiser_step(self, scored, rows):
        calls.append(rows)
        if len(calls) in kill_at:  # step 3's first optimiser step: after the step-2 checkpoint
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, scored, rows)

    monkeypatch.setattr(PPOStep, "_optimiser_step", optimiser_step)
    code, first = run_main(job_dir)
    assert code == protocol.EXIT_CANCELLED
    _, last = find_best_and_last(job_dir)
    assert last.step == 2 and not (job_dir / "adapter").exists()
    (job_dir / "checkpoints" / "step-3.tmp-999999").mkdir()  # what a killed run can leave behind

    kill_at.clear()
    code, resumed = run_main(job_dir, "--resume")
    assert code == protocol.EXIT_OK, resumed[-1]
    assert any("Resuming after step 2 of 4" in e.message for e in of(resumed, protocol.Log))
    assert not list(job_dir.rglob("*.tmp-*"))

    # Steps continue where the checkpoint left them: 1-2 before the cancel, 3-4 after, each once.
    assert [p.step for p in of(first, protocol.Progress)] == [1, 2]
    assert [p.step for p in of(resumed, protocol.Progress)] == [3, 4]
    assert [(p.step, p.total) for p in of(resumed, protocol.Progress)] == [(3, 4), (4, 4)]
    whole_metrics = of(uninterrupted, protocol.Metric)
    pieced = [m for m in of(first, protocol.Metric) if m.step <= 2] + of(resumed, protocol.Metric)
    assert [m.step for m in whole_metrics] == [1, 2, 2, 3, 4, 4]  # training, and evaluation after 2 and 4
    assert_same_numbers(whole_metrics, pieced)

    whole_result = json.loads((whole / "result.json").read_text())["metrics"]
    result = json.loads((job_dir / "result.json").read_text())["metrics"]
    assert result["global_step"] == whole_result["global_step"] == 4
    for key in ("first_reward_mean", "best_reward_mean", "best_step", "eval_reward_mean", "best_eval_step"):
        assert result[key] == pytest.approx(whole_result[key], rel=1e-4), key

    a = load_file(str(whole / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(job_dir / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6)
    assert any(not torch.equal(t, torch.zeros_like(t)) for n, t in a.items() if "lora_B" in n)


def test_resume_restores_the_checkpoints_state(make_ppo_job, monkeypatch):
    """The policy, value head, optimiser, KL coefficient and prompt order come back from the checkpoint."""
    job_dir = make_ppo_job(max_steps=2, checkpoint_every=1, kl_target=1.0, learning_rate=1e-3)
    assert run_main(job_dir)[0] == protocol.EXIT_OK
    import training.ppo.resume as resume_module

    _, last = find_best_and_last(job_dir)
    saved = json.loads((last.path / "state.json").read_text())
    assert saved["step"] == 2 and saved["kl_coef"] != 0.2  # adapted towards kl_target
    restored, real = [], resume_module.restore

    def restore(folder, ppo, sampler, patience):
        state = real(folder, ppo, sampler, patience)
        restored.append((ppo, sampler, state))
        return state

    monkeypatch.setattr(resume_module, "restore", restore)
    (job_dir / "adapter").rename(job_dir / "first-adapter")
    code, events = run_main(job_dir, "--resume")  # nothing left to do: the final adapter is written again
    assert code == protocol.EXIT_OK and not of(events, protocol.Progress)
    ((ppo, sampler, state),) = restored
    assert ppo.kl_control.value == saved["kl_coef"] and sampler.order == saved["sampler_order"]
    assert state.step == 2 and len(state.history) == 2
    assert len(ppo.optimizer.state_dict()["state"]) == len(ppo.params)  # moments of every parameter back
    head = load_file(str(last.path / "value_head.safetensors"))
    assert torch.equal(ppo.models.value_head.weight.detach(), head["weight"])
    again = load_file(str(job_dir / "adapter" / "adapter_model.safetensors"))
    before = load_file(str(job_dir / "first-adapter" / "adapter_model.safetensors"))
    assert all(torch.equal(again[k], before[k]) for k in before)

    # A config changed since the checkpoint (another LoRA rank) is named, not a traceback.
    config = json.loads((job_dir / "config.json").read_text())
    (job_dir / "config.json").write_text(json.dumps({**config, "lora_r": 4}))
    (job_dir / "adapter").rename(job_dir / "second-adapter")
    code, events = run_main(job_dir, "--resume")
    assert code == protocol.EXIT_FAILED and f"Checkpoint {last.path} does not fit" in events[-1].reason
    assert "without resuming" in events[-1].advice


def test_resume_without_a_checkpoint_fails_with_advice(make_ppo_job):
    job_dir = make_ppo_job()
    code, events = run_main(job_dir, "--resume")
    assert code == protocol.EXIT_FAILED
    assert "Nothing to resume" in events[-1].reason and str(job_dir / "checkpoints") in events[-1].reason
    assert "Start the job again" in events[-1].advice
    assert not of(events, protocol.Started)  # failed before loading the model

    # A checkpoint without its resume state (written by an older version) is named as such.
    folder = job_dir / "checkpoints" / "step-1"
    folder.mkdir(parents=True)
    (folder / "checkpoint.json").write_text(json.dumps({"step": 1, "metric": "reward_mean", "value": 0.1}))
    code, events = run_main(job_dir, "--resume")
    assert code == protocol.EXIT_FAILED and f"Checkpoint {folder} cannot be resumed" in events[-1].reason
    assert "state.json" in events[-1].reason


def test_a_killed_process_resumes_from_the_command_line(make_ppo_job):
    """SIGKILL (no handler runs) after two checkpoints, then ``python -m training ppo --resume``: the job
    finishes from the last complete checkpoint, its steps continuing."""
    import subprocess
    import sys

    job_dir = make_ppo_job(max_steps=200, checkpoint_every=1)
    command = [sys.executable, "-m", "training", "ppo", "--job-dir", str(job_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        artifacts = 0
        for line in process.stdout:
            artifacts += isinstance(protocol.parse_line(line), protocol.Artifact)
            if artifacts >= 2:
                process.kill()
                break
    finally:
        process.kill()
        process.wait(30)
    _, last = find_best_and_last(job_dir)
    assert last is not None and last.step >= 2
    config = json.loads((job_dir / "config.json").read_text())
    (job_dir / "config.json").write_text(json.dumps({**config, "max_steps": last.step + 1}))  # one more step

    done = subprocess.run([*command, "--resume"], capture_output=True, env=env, text=True, timeout=120)
    events = parse_events(done.stdout)
    assert done.returncode == protocol.EXIT_OK, events[-1]
    assert [p.step for p in of(events, protocol.Progress)] == [last.step + 1]
    assert events[-1].metrics["global_step"] == last.step + 1
    assert len(json.loads((find_best_and_last(job_dir)[1].path / "state.json").read_text())["history"]) == (
        last.step + 1
    )
    assert (job_dir / "adapter" / "adapter_model.safetensors").is_file() and not list(
        job_dir.rglob("*.tmp-*")
    )
