"""Resuming a stopped job from its last checkpoint, and the version made from the best or the last checkpoint,
against the scripted stand-in program's "checkpoints" mode (6 steps, eval loss 1.5 / 1.2 / 1.3 at steps
2 / 4 / 6: best step 4, last step 6)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from medalign_desktop.jobs.manager import INTERRUPTED
from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.jobs.resume import ResumeError, request_from_job
from medalign_desktop.store import Store, StoreValidationError
from tests.unit.jobs.test_manager import FAKE, run_until_idle


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


def request(adapter_source: Path, **overrides) -> JobRequest:
    overrides = {"fake_mode": "checkpoints", "fake_adapter_source": str(adapter_source), **overrides}
    return JobRequest("hitl", "/models/base", "system", overrides=overrides, parent_version_id=None)


def cancel_after_step(loop, manager, job_request: JobRequest, step: int) -> int:
    """Submit, wait for the metric of ``step`` (the program then hangs), cancel, wait until idle."""

    async def go():
        idle, reached = asyncio.Event(), asyncio.Event()
        manager.idle.connect(idle.set)
        manager.metric.connect(lambda _job, values: values["step"] == step and reached.set())
        job_id = await manager.submit(job_request)
        await asyncio.wait_for(reached.wait(), 20)
        await manager.cancel(job_id)
        await asyncio.wait_for(idle.wait(), 20)
        return job_id

    return loop.run_until_complete(go())


def loss_steps(store: Store, job_id: int) -> list[int]:
    return [m.step for m in store.job_metrics(job_id, "loss")]


def test_cancelled_job_resumes_from_its_last_checkpoint(loop, manager, store, tiny_adapters):
    versions, seen = [], []
    manager.version_ready.connect(versions.append)
    manager.metric.connect(lambda _job, values: seen.append(values["step"]))
    job_id = cancel_after_step(loop, manager, request(tiny_adapters[0], fake_hang_at=3), 3)
    job = store.get_job(job_id)
    assert job.state == "cancelled" and job.finished_at is not None and versions == []
    assert loss_steps(store, job_id) == [1, 2, 3]
    assert loop.run_until_complete(manager.resumable(job_id)) is True

    seen.clear()
    plan = run_until_idle(loop, manager, manager.resume(job_id))
    assert plan.checkpoint.step == 2 and plan.request.overrides["fake_hang_at"] == 3
    assert seen == [3, 4, 5, 6]  # the resumed program went on after the checkpoint's step
    job = store.get_job(job_id)
    assert job.state == "succeeded" and job.error is None and job.data_size == 1
    # step 3 was logged twice (before the cancel and after the resume) but is stored once: a continuous curve
    assert loss_steps(store, job_id) == [1, 2, 3, 4, 5, 6]
    pairs = Counter((m.step, m.name) for m in store.job_metrics(job_id))
    assert max(pairs.values()) == 1 and pairs[(3, "learning_rate")] == 1
    assert [m.step for m in store.job_metrics(job_id, "eval_loss")] == [2, 4, 6]
    (version,) = versions
    assert version.job_id == job_id and version.name == "B-iter-1"
    assert version.metrics["global_step"] == 6 and version.metrics["resumed_from"] == 2
    assert version.metrics["checkpoint"] == "best" and version.metrics["checkpoint_step"] == 4
    assert version.metrics["checkpoint_value"] == 1.2
    assert Path(version.adapter_path) == Path(job.job_dir) / "checkpoints" / "step-00004"
    assert loop.run_until_complete(manager.resumable(job_id)) is False  # succeeded


@pytest.mark.parametrize("which, step, value", [("best", 4, 1.2), ("last", 6, 1.3)])
def test_version_comes_from_the_chosen_checkpoint(loop, manager, store, tiny_adapters, which, step, value):
    manager.version_from = which
    job_id = run_until_idle(loop, manager, manager.submit(request(tiny_adapters[0])))
    (version,) = store.list_model_versions()
    assert version.job_id == job_id and version.metrics["train_loss"] == 1.75
    assert version.metrics["checkpoint"] == which and version.metrics["checkpoint_step"] == step
    assert (
        version.metrics["checkpoint_metric"] == "eval_loss" and version.metrics["checkpoint_value"] == value
    )
    assert Path(version.adapter_path, "adapter_model.safetensors").exists()
    assert Path(version.adapter_path).name == f"step-{step:05d}"

    offer = loop.run_until_complete(manager.checkpoint_offer(job_id))
    other = "last" if which == "best" else "best"
    assert offer.version_name == "B-iter-1" and offer.chosen_which == which and offer.chosen.step == step
    assert offer.other_which == other and offer.other.step == 10 - step and offer.other_version is None


def test_the_other_checkpoint_becomes_a_version_of_the_same_job(loop, manager, store, tiny_adapters):
    parent = store.add_model_version("B-iter-0", "hitl", base_model="/models/base")
    versions = []
    manager.version_ready.connect(versions.append)
    job_request = request(tiny_adapters[0])
    job_request.parent_version_id = parent
    job_id = run_until_idle(loop, manager, manager.submit(job_request))
    last = loop.run_until_complete(manager.add_checkpoint_version(job_id, "last"))
    best = versions[0]
    assert versions == [best, last] and (best.name, last.name) == ("B-iter-2", "B-iter-3")
    assert last.job_id == job_id and last.parent_id == parent == best.parent_id
    assert last.data_size == best.data_size == 1 and last.base_model == "/models/base"
    assert last.metrics["checkpoint"] == "last" and last.metrics["checkpoint_step"] == 6
    assert last.metrics["global_step"] == 6  # the job's own numbers are kept
    assert Path(last.adapter_path).name == "step-00006" != Path(best.adapter_path).name
    offer = loop.run_until_complete(manager.checkpoint_offer(job_id))
    assert offer.version_name == best.name and offer.other_version == last.name


def test_job_without_checkpoints_keeps_the_finished_adapter_and_offers_nothing(
    loop, manager, store, tiny_adapters
):
    overrides = {"fake_mode": "succeed", "fake_adapter_source": str(tiny_adapters[0])}
    job_id = run_until_idle(loop, manager, manager.submit(JobRequest("hitl", "/m", "s", overrides=overrides)))
    (version,) = store.list_model_versions()
    assert Path(version.adapter_path).name == "adapter" and "checkpoint" not in version.metrics
    assert loop.run_until_complete(manager.checkpoint_offer(job_id)) is None
    with pytest.raises(ResumeError, match="no last checkpoint"):
        loop.run_until_complete(manager.add_checkpoint_version(job_id, "last"))


def test_resume_is_refused_before_the_first_checkpoint_with_a_clear_message(loop, manager, store):
    overrides = {"fake_mode": "hang"}
    job_id = cancel_after_step(loop, manager, JobRequest("hitl", "/m", "s", overrides=overrides), 1)
    assert store.get_job(job_id).state == "cancelled"
    assert loop.run_until_complete(manager.resumable(job_id)) is False
    with pytest.raises(ResumeError, match=r"stopped before its first checkpoint .*start a new job instead"):
        loop.run_until_complete(manager.resume(job_id))
    job = store.get_job(job_id)
    assert job.state == "cancelled" and loss_steps(store, job_id) == [1]  # nothing changed


def test_resume_is_refused_for_kinds_and_states_that_cannot(loop, manager, store):
    score = store.create_job("score", {})
    store.set_job_state(score, "failed", error="x")
    with pytest.raises(ResumeError, match="keeps no checkpoints"):
        loop.run_until_complete(manager.resume(score))
    queued = store.create_job("hitl", {})
    with pytest.raises(ResumeError, match="only a cancelled or failed job"):
        loop.run_until_complete(manager.resume(queued))
    no_folder = store.create_job("hitl", {})
    store.set_job_state(no_folder, "cancelled")
    with pytest.raises(ResumeError, match="no job folder"):
        loop.run_until_complete(manager.resume(no_folder))
    assert not any(loop.run_until_complete(manager.resumable(j)) for j in (score, queued, no_folder))


def test_interrupted_job_resumes_like_a_cancelled_one(loop, manager, store, tiny_adapters):
    job_id = cancel_after_step(loop, manager, request(tiny_adapters[0], fake_hang_at=5), 5)
    # as if the app had crashed: the job was left running, recover() marks it failed
    store.db.execute("UPDATE jobs SET state = 'running', finished_at = NULL WHERE id = ?", [job_id])
    loop.run_until_complete(manager.recover())
    assert store.get_job(job_id).error == INTERRUPTED
    plan = run_until_idle(loop, manager, manager.resume(job_id))
    assert plan.checkpoint.step == 4
    assert store.get_job(job_id).state == "succeeded" and store.get_job(job_id).error is None
    assert loss_steps(store, job_id) == [1, 2, 3, 4, 5, 6]


def test_resume_queues_behind_a_running_job(loop, manager, store, tiny_adapters):
    stopped = cancel_after_step(loop, manager, request(tiny_adapters[0], fake_hang_at=3), 3)
    states, launched = [], []

    async def before_launch(job_id, job_request, job_dir):
        launched.append((job_id, job_request.kind, job_dir.name))

    manager.before_launch = before_launch

    async def go():
        idle = asyncio.Event()
        manager.idle.connect(idle.set)
        prompt = store.add_prompt("Define sepsis.")
        store.record_verdict(store.add_generation(prompt, "A dysregulated response.", settings={}), "accept",
                             annotator="dr-a")  # fmt: skip
        other = await manager.submit(request(tiny_adapters[0]))
        await manager.resume(stopped)
        states.append((store.get_job(other).state, store.get_job(stopped).state))
        with pytest.raises(ResumeError, match="already queued or running"):
            await manager.resume(stopped)
        await asyncio.wait_for(idle.wait(), 30)
        return other

    other = loop.run_until_complete(go())
    assert states == [("running", "queued")]
    assert launched == [(other, "hitl", f"job-{other:05d}"), (stopped, "hitl", f"job-{stopped:05d}")]
    assert store.get_job(stopped).state == "succeeded" and store.get_job(other).state == "succeeded"


def test_resumed_job_refused_by_the_launch_hook_fails_with_its_message(loop, manager, store, tiny_adapters):
    stopped = cancel_after_step(loop, manager, request(tiny_adapters[0], fake_hang_at=3), 3)

    async def refuse(job_id, job_request, job_dir):
        raise RuntimeError("Not enough memory: 9 GB needed, 2 GB free.")

    manager.before_launch = refuse
    run_until_idle(loop, manager, manager.resume(stopped))
    job = store.get_job(stopped)
    assert job.state == "failed" and job.error == "Not enough memory: 9 GB needed, 2 GB free."
    assert loop.run_until_complete(manager.resumable(stopped)) is True  # it can be tried again


def test_reopen_job_checks_its_input(store):
    job_id = store.create_job("hitl", {})
    with pytest.raises(StoreValidationError, match="only a cancelled or failed job"):
        store.reopen_job(job_id, keep_through_step=1)
    store.set_job_state(job_id, "running")
    store.add_job_metrics(job_id, [(1, "loss", 2.0), (2, "loss", 1.0), (None, "note", 1.0)])
    store.set_job_state(job_id, "failed", error="boom")
    with pytest.raises(StoreValidationError, match="keep_through_step"):
        store.reopen_job(job_id, keep_through_step="two")
    assert store.reopen_job(job_id, keep_through_step=1) == 1
    job = store.get_job(job_id)
    assert (job.state, job.error, job.finished_at) == ("queued", None, None)
    assert [(m.step, m.name) for m in store.job_metrics(job_id)] == [(1, "loss"), (None, "note")]


def test_request_from_job_separates_the_overrides():
    class StoredJob:
        kind = "ppo"
        config = {"trigger": "auto", "parent_version_id": 3, "reward_adapter": "/r", "max_steps": 8}

    rebuilt = request_from_job(StoredJob(), {"base_model": "/models/x", "parent_adapter": "/a"})
    assert (rebuilt.kind, rebuilt.base_model, rebuilt.parent_adapter) == ("ppo", "/models/x", "/a")
    assert rebuilt.parent_version_id == 3 and rebuilt.trigger == "auto" and rebuilt.reward_adapter == "/r"
    assert rebuilt.overrides == {"max_steps": 8}


def test_stopped_early_is_read_from_the_version_or_the_logged_metric(loop, manager, store):
    assert loop.run_until_complete(manager.stopped_early(999)) is None
    finished = store.create_job("hitl", {})
    store.add_model_version("B-iter-1", "hitl", job_id=finished, metrics={"stopped_early": False})
    assert loop.run_until_complete(manager.stopped_early(finished)) is None
    # the programs' form: a flag beside the step count
    early = store.create_job("dpo", {})
    store.add_model_version(
        "D-dpo-1", "dpo", job_id=early, metrics={"stopped_early": True, "global_step": 40}
    )
    assert loop.run_until_complete(manager.stopped_early(early)) == 40
    logged = store.create_job("ppo", {})
    store.set_job_state(logged, "running")
    store.add_job_metrics(logged, [(12, "reward_mean", 0.5), (12, "stopped_early", 1.0)])
    assert loop.run_until_complete(manager.stopped_early(logged)) == 12
