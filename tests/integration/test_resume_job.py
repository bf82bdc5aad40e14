"""Issue 9 acceptance through the app: a real hitl job on the tiny model is cancelled after its first
checkpoint, resumed by the JobManager, and ends like an uninterrupted run of the same job folder: the same
number of optimiser steps in its version's metrics, a stored loss curve with every step exactly once, and the
same losses at the same steps (the CPU is deterministic; the data order and optimiser come back)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from medalign_desktop.jobs.command import build_command, build_environment
from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

N_EXAMPLES = 12  # 10 or more, so a tenth is held back for the evaluation loss
RUN = {
    "max_length": 64, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
    "gradient_checkpointing": False, "max_steps": 6, "eval_steps": 2, "learning_rate": 2e-3,
    "warmup_ratio": 0.0, "device": "cpu", "quantization": "none",
}  # fmt: skip


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    for i in range(N_EXAMPLES):
        prompt = store.add_prompt(f"What is the adult dose of drug number {i}?")
        generation = store.add_generation(prompt, f"{i + 1} mg twice a day with food.", settings={})
        store.record_verdict(generation, "accept", annotator="dr-a")
    yield store
    store.close()


def cancel_after_first_checkpoint(loop, manager, request: JobRequest) -> tuple[int, list[str]]:
    """Submit; cancel as soon as the program reports its first checkpoint artifact; wait until idle."""
    checkpoints: list[str] = []

    async def go():
        idle, saved = asyncio.Event(), asyncio.Event()
        manager.idle.connect(idle.set)

        def on_event(_job, event):
            if event.EVENT == "artifact" and event.name == "checkpoint":
                checkpoints.append(event.path)
                saved.set()

        manager.event.connect(on_event)
        job_id = await manager.submit(request)
        await asyncio.wait_for(saved.wait(), 180)
        await manager.cancel(job_id)
        await asyncio.wait_for(idle.wait(), 60)
        manager.event.disconnect(on_event)
        return job_id

    return loop.run_until_complete(go()), checkpoints


def resume_until_idle(loop, manager, job_id: int):
    async def go():
        idle = asyncio.Event()
        manager.idle.connect(idle.set)
        plan = await manager.resume(job_id)
        await asyncio.wait_for(idle.wait(), 180)
        return plan

    return loop.run_until_complete(go())


def uninterrupted_losses(job_dir: Path, tmp_path: Path) -> tuple[dict[int, float], int]:
    """The same job folder's config and data trained in one go by the program itself."""
    reference = tmp_path / "reference-job"
    reference.mkdir()
    shutil.copy(job_dir / "config.json", reference / "config.json")
    shutil.copytree(job_dir / "data", reference / "data")
    argv = build_command("hitl", reference)
    env = build_environment(os.environ, extra={"OMP_NUM_THREADS": "1"})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    losses = {e["step"]: e["loss"] for e in events if e["event"] == "metric" and e.get("loss") is not None}
    (finished,) = [e for e in events if e["event"] == "finished"]
    return losses, finished["metrics"]["global_step"]


def test_cancelled_hitl_job_resumes_and_ends_like_an_uninterrupted_run(
    loop, store, job_manager_for, tiny_model_dir, tmp_path
):
    manager = job_manager_for(store, env_extra={"OMP_NUM_THREADS": "1"})
    versions = []
    manager.version_ready.connect(versions.append)
    request = JobRequest("hitl", str(tiny_model_dir), "Be careful.", overrides=dict(RUN))
    job_id, saved = cancel_after_first_checkpoint(loop, manager, request)
    job = store.get_job(job_id)
    assert job.state == "cancelled" and versions == [] and saved
    assert loop.run_until_complete(manager.resumable(job_id)) is True
    stopped_at = max(m.step for m in store.job_metrics(job_id, "loss"))

    plan = resume_until_idle(loop, manager, job_id)
    job = store.get_job(job_id)
    assert job.state == "succeeded", job.error
    assert plan.checkpoint.step >= 2 and stopped_at >= plan.checkpoint.step
    (version,) = versions
    assert version.job_id == job_id and version.metrics["global_step"] == RUN["max_steps"]
    assert version.metrics["checkpoint"] == "best" and Path(version.adapter_path, "checkpoint.json").exists()

    stored = store.job_metrics(job_id, "loss")
    assert [m.step for m in stored] == list(range(1, RUN["max_steps"] + 1))  # every step once, in order
    assert [m.step for m in store.job_metrics(job_id, "eval_loss")] == [2, 4, 6]

    reference, reference_steps = uninterrupted_losses(Path(job.job_dir), tmp_path)
    assert reference_steps == version.metrics["global_step"]
    resumed = {m.step: m.value for m in stored}
    assert resumed.keys() == reference.keys()
    for step, loss in reference.items():
        assert math.isclose(resumed[step], loss, rel_tol=1e-4), (step, resumed[step], loss)
