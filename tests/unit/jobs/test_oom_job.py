"""A job that really runs out of memory, through the app's JobManager: it ends `failed` with the training
program's readable reason and advice stored, no version, and the store and the queue go on working."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from medalign_desktop.jobs.manager import JobManager
from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.store import Store
from tests.training.test_oom import CAP_BYTES
from tests.unit.jobs.test_manager import FAKE, run_until_idle

N_LONG = 16  # as tests/training/test_oom.py: 16 answers of max_length tokens in one batch exhaust the cap
LONG_ANSWER = " ".join(f"dose {i} mg" for i in range(1500))  # ~4500 tokens, cut at max_length


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    for i in range(N_LONG):
        prompt = store.add_prompt(f"List every dose of drug {i}.")
        generation = store.add_generation(prompt, LONG_ANSWER, settings={})
        store.record_verdict(generation, "accept", annotator="dr-a")
    yield store
    store.close()


def capped_manager(job_manager_for, store: Store) -> JobManager:
    """The real training program, under an address-space cap set on the child by prlimit (the app's own
    process keeps its limits)."""
    launcher = f"prlimit --as={CAP_BYTES} {sys.executable} -m training"
    return job_manager_for(store, launcher=launcher, env_extra={"OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_out_of_memory_job_fails_readably_and_the_app_goes_on(
    loop, store, job_manager_for, tiny_model_dir, tiny_adapters
):
    manager = capped_manager(job_manager_for, store)
    absurd = {"per_device_train_batch_size": 4096, "max_length": 4096, "max_steps": 1}
    request = JobRequest(
        "hitl", str(tiny_model_dir), "You are a careful clinical assistant.", overrides=absurd
    )
    job_id = run_until_idle(loop, manager, manager.submit(request), timeout=120)

    job = store.get_job(job_id)
    assert job.state == "failed" and job.data_size == N_LONG
    assert job.error.startswith("Out of memory (RAM) "), job.error
    assert "per_device_train_batch_size (now 4096)" in job.error and "max_length (now 4096)" in job.error
    assert "Traceback" not in job.error and "alloc_cpu" not in job.error
    assert store.list_model_versions() == []
    assert not (Path(job.job_dir) / "adapter").exists()

    # The store still takes writes, and the queue runs the next job to the end.
    prompt = store.add_prompt("What is the first-line drug for anaphylaxis?")
    store.record_verdict(
        store.add_generation(prompt, "Adrenaline, intramuscular.", settings={}), "accept", annotator="dr-a"
    )
    manager.launcher = f"python {FAKE}"
    overrides = {"fake_mode": "succeed", "fake_adapter_source": str(tiny_adapters[0])}
    next_id = run_until_idle(
        loop, manager, manager.submit(JobRequest("hitl", "/models/base", "s", overrides=overrides))
    )
    assert store.get_job(next_id).state == "succeeded"
    assert [v.job_id for v in store.list_model_versions()] == [next_id]
    assert store.get_job(job_id).state == "failed"  # the failed job's record is untouched
