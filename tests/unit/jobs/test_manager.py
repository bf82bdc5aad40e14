"""The job queue against a scripted stand-in training program: states, metrics, versions, faults."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from medalign_desktop.jobs.manager import INTERRUPTED, JobManager, version_name
from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.store import Store

FAKE = Path(__file__).resolve().parents[2] / "data" / "fake_training.py"


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    prompt = store.add_prompt("What is the first-line drug for anaphylaxis?")
    generation = store.add_generation(prompt, "Adrenaline, intramuscular.", settings={})
    store.record_verdict(generation, "accept", annotator="dr-a")
    yield store
    store.close()


@pytest.fixture
def manager(store, job_manager_for):
    return job_manager_for(store, launcher=f"python {FAKE}")


def request(mode: str, adapter_source: Path | None = None) -> JobRequest:
    overrides = {"fake_mode": mode}
    if adapter_source:
        overrides["fake_adapter_source"] = str(adapter_source)
    return JobRequest("hitl", "/models/base", "system", overrides=overrides)


def run_until_idle(loop, manager, coroutine, timeout=30.0):
    async def go():
        idle = asyncio.Event()
        manager.idle.connect(idle.set)
        result = await coroutine
        await asyncio.wait_for(idle.wait(), timeout)
        return result

    return loop.run_until_complete(go())


def test_version_names_count_per_kind():
    assert version_name("hitl", []) == "B-iter-1"
    assert version_name("hitl", ["B-iter-1", "A-sft-1", "B-iter-2"]) == "B-iter-3"
    assert version_name("sft", ["B-iter-1"]) == "A-sft-1"


def test_successful_job_registers_a_version_and_stores_metrics(loop, manager, store, tiny_adapters):
    metrics, versions = [], []
    manager.metric.connect(lambda job, values: metrics.append(values))
    manager.version_ready.connect(versions.append)
    job_id = run_until_idle(loop, manager, manager.submit(request("succeed", tiny_adapters[0])))
    job = store.get_job(job_id)
    assert job.state == "succeeded" and job.data_size == 1 and job.error is None
    assert [m["loss"] for m in metrics] == [2.5, 2.0, 1.5]
    assert [m.value for m in store.job_metrics(job_id, "loss")] == [2.5, 2.0, 1.5]
    (version,) = versions
    assert version.name == "B-iter-1" and version.job_id == job_id and version.data_size == 1
    assert Path(version.adapter_path, "adapter_model.safetensors").exists()
    assert version.metrics == {"train_loss": 1.5}
    assert (Path(job.job_dir) / "data" / "train.jsonl").exists()


def test_failed_event_gives_the_reason_and_no_version(loop, manager, store):
    job_id = run_until_idle(loop, manager, manager.submit(request("fail")))
    job = store.get_job(job_id)
    assert job.state == "failed"
    assert job.error == "Out of GPU memory. Lower per_device_train_batch_size or max_length."
    assert store.list_model_versions() == []


def test_killed_process_fails_cleanly_and_the_next_job_succeeds(loop, manager, store, tiny_adapters):
    logs = []
    manager.log.connect(lambda job, text: logs.append(text))
    crashed = run_until_idle(loop, manager, manager.submit(request("crash")))
    job = store.get_job(crashed)
    assert job.state == "failed" and "was killed" in job.error and "RuntimeError: boom" in job.error
    assert '{"event": "metric", "ste' in logs  # the cut line is kept as log text
    assert store.list_model_versions() == []
    second = run_until_idle(loop, manager, manager.submit(request("succeed", tiny_adapters[0])))
    assert store.get_job(second).state == "succeeded"


@pytest.mark.parametrize("mode", ["hang", "stubborn"])
def test_cancel_stops_the_running_job(loop, manager, store, mode):
    async def go():
        idle = asyncio.Event()
        manager.idle.connect(idle.set)
        first_metric = asyncio.Event()
        manager.metric.connect(lambda *_: first_metric.set())
        job_id = await manager.submit(request(mode))
        await asyncio.wait_for(first_metric.wait(), 20)
        manager._running.process.cancel(grace_ms=300)
        await asyncio.wait_for(idle.wait(), 20)
        return job_id

    job_id = loop.run_until_complete(go())
    assert store.get_job(job_id).state == "cancelled"
    assert not (Path(store.get_job(job_id).job_dir) / "adapter").exists()


def test_queued_jobs_run_one_at_a_time_and_can_be_cancelled_while_queued(loop, manager, store, tiny_adapters):
    states = []

    async def go():
        idle = asyncio.Event()
        manager.idle.connect(idle.set)
        first = await manager.submit(request("succeed", tiny_adapters[0]))
        second = await manager.submit(request("succeed", tiny_adapters[0]))
        third = await manager.submit(request("succeed", tiny_adapters[0]))
        states.append([store.get_job(j).state for j in (first, second, third)])
        await manager.cancel(third)
        await asyncio.wait_for(idle.wait(), 30)
        return first, second, third

    first, second, third = loop.run_until_complete(go())
    assert states[0] == ["running", "queued", "queued"]
    assert [store.get_job(j).state for j in (first, second, third)] == ["succeeded", "failed", "cancelled"]
    # The snapshot is taken when a job starts, not when it is queued: the first retrain already learnt
    # the only new verdict, so the second finds nothing new and says so.
    assert "No new accepted or edited answers" in store.get_job(second).error
    assert [v.name for v in store.list_model_versions()] == ["B-iter-1"]


def test_missing_program_is_reported(loop, store, tmp_path):
    async def store_call(fn):
        return fn(store)

    manager = JobManager(store_call, tmp_path / "jobs", launcher="/nonexistent/python -m training")
    job_id = run_until_idle(loop, manager, manager.submit(request("succeed")))
    job = store.get_job(job_id)
    assert job.state == "failed" and "could not be started" in job.error


def test_recover_marks_interrupted_jobs_failed(loop, manager, store):
    stale = store.create_job("hitl", {})
    store.set_job_state(stale, "running")
    assert loop.run_until_complete(manager.recover()) == [stale]
    assert store.get_job(stale).state == "failed" and store.get_job(stale).error == INTERRUPTED


def test_snapshot_problem_fails_the_job_without_starting_a_process(loop, manager, store):
    job_id = run_until_idle(loop, manager, manager.submit(JobRequest("sft", "/m", "")))
    job = store.get_job(job_id)
    assert job.state == "failed" and "reference answers" in job.error
    assert sys.executable  # the process was never needed
