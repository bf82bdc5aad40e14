"""Score jobs against the scripted stand-in program: snapshot of unscored answers, scores stored against the
reward version (no model version made), results_ready, failures named, nothing scored twice."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from medalign_desktop.jobs.manager import JobManager
from medalign_desktop.jobs.scoring import ScoringError, score_request, store_scores
from medalign_desktop.jobs.snapshot import SnapshotError, SnapshotRequest, write_snapshot
from medalign_desktop.store import Store

FAKE = Path(__file__).resolve().parents[2] / "data" / "fake_training.py"
SYSTEM = "You are a careful clinical assistant."


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    p1 = store.add_prompt("What is the first-line drug for anaphylaxis?")
    p2 = store.add_prompt("Dose of paracetamol?")
    store.set_split([p2], "held_out")
    g1 = store.add_generation(p1, "Adrenaline, intramuscular.", settings={})
    store.add_generation(p2, "Up to 4 g a day.", settings={})
    store.record_verdict(g1, "accept", annotator="dr-a")
    store.add_model_version("R-reward-1", "reward", base_model="/models/reward-base", adapter_path="/r/1")
    yield store
    store.close()


@pytest.fixture
def manager(store, job_manager_for) -> JobManager:
    return job_manager_for(store, launcher=f"python {FAKE}")


def run_until_idle(loop, manager, coroutine, timeout=30.0):
    async def go():
        idle = asyncio.Event()
        manager.idle.connect(idle.set)
        result = await coroutine
        await asyncio.wait_for(idle.wait(), timeout)
        return result

    return loop.run_until_complete(go())


def test_score_request_uses_the_newest_reward_model_and_its_base(store):
    newer = store.add_model_version("R-reward-2", "reward", adapter_path="/r/2")
    request = score_request(store, base_model="/models/app-base", system_prompt=SYSTEM)
    assert (request.kind, request.reward_version_id, request.reward_adapter) == ("score", newer, "/r/2")
    assert request.base_model == "/models/app-base"  # R-reward-2 recorded no base
    first = score_request(store, base_model="/x", system_prompt=SYSTEM, reward_version_id=1)
    assert (first.reward_adapter, first.base_model) == ("/r/1", "/models/reward-base")
    chat = store.add_model_version("B-iter-1", "hitl", adapter_path="/b")
    with pytest.raises(ScoringError, match=f"Model version {chat} is not a registered reward model"):
        score_request(store, base_model="/x", system_prompt=SYSTEM, reward_version_id=chat)


def test_snapshot_writes_every_unscored_answer_with_the_system_prompt(store, tmp_path):
    request = SnapshotRequest("score", "/base", SYSTEM, reward_adapter="/r/1", reward_version_id=1)
    info = write_snapshot(store, request, tmp_path / "job")
    records = [json.loads(line) for line in (tmp_path / "job/data/answers.jsonl").read_text().splitlines()]
    assert info.n_train == 2 and [r["generation_id"] for r in records] == [1, 2]  # held out too
    assert records[0]["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the first-line drug for anaphylaxis?"},
        {"role": "assistant", "content": "Adrenaline, intramuscular."},
    ]
    config = json.loads((tmp_path / "job/config.json").read_text())
    assert config == {"kind": "score", "base_model": "/base", "reward_adapter": "/r/1"}
    from training.config import config_from_dict

    assert config_from_dict(config).reward_adapter == "/r/1"  # the program accepts what the app writes

    store.add_scores(1, [(1, 0.5), (2, 0.1)])
    with pytest.raises(SnapshotError, match="Every answer is scored already"):
        write_snapshot(store, request, tmp_path / "job2")


def test_successful_score_job_stores_scores_and_makes_no_version(loop, manager, store):
    ready, versions = [], []
    manager.results_ready.connect(lambda job_id, kind: ready.append((job_id, kind)))
    manager.version_ready.connect(versions.append)
    request = score_request(store, base_model="/base", system_prompt=SYSTEM)
    job_id = run_until_idle(loop, manager, manager.submit(request))
    job = store.get_job(job_id)
    assert (job.state, job.error, job.data_size) == ("succeeded", None, 2)
    assert job.config["reward_version_id"] == 1
    assert store.answer_scores(1) == {1: -0.75, 2: -0.5}
    assert ready == [(job_id, "score")] and versions == []
    assert [r.reward_score for r in store.history(score_version_id=1)] == [-0.75]

    # Everything is scored now: the next score job fails at the snapshot, with the reason.
    job_id = run_until_idle(
        loop, manager, manager.submit(score_request(store, base_model="/b", system_prompt=""))
    )
    assert store.get_job(job_id).error == "Every answer is scored already by this reward model."


def test_only_new_answers_are_scored_next_time(loop, manager, store):
    store.add_scores(1, [(1, 3.0)])
    request = score_request(store, base_model="/base", system_prompt=SYSTEM)
    job_id = run_until_idle(loop, manager, manager.submit(request))
    assert store.get_job(job_id).state == "succeeded"
    assert store.answer_scores(1) == {1: 3.0, 2: -0.5}


def test_a_broken_scores_file_fails_the_job_naming_the_line_and_stores_nothing(loop, manager, store):
    request = score_request(store, base_model="/base", system_prompt=SYSTEM)
    request.overrides["fake_mode"] = "bad_scores"
    job_id = run_until_idle(loop, manager, manager.submit(request))
    job = store.get_job(job_id)
    assert job.state == "failed" and "scores.jsonl line 3: 'score' must be a finite number" in job.error
    assert store.answer_scores(1) == {}


def test_a_failed_score_job_stores_nothing(loop, manager, store):
    request = score_request(store, base_model="/base", system_prompt=SYSTEM)
    request.overrides["fake_mode"] = "fail"
    ready = []
    manager.results_ready.connect(lambda *args: ready.append(args))
    job_id = run_until_idle(loop, manager, manager.submit(request))
    assert store.get_job(job_id).state == "failed" and store.answer_scores(1) == {} and ready == []


def test_store_scores_refuses_a_job_without_a_reward_version(store, tmp_path):
    job_id = store.create_job("score", {})
    (tmp_path / "scores.jsonl").write_text('{"generation_id": 1, "score": 1.0}\n')
    with pytest.raises(ScoringError, match="does not record which reward model"):
        store_scores(store, job_id, tmp_path)
    job_id = store.create_job("score", {"reward_version_id": 1})
    (tmp_path / "scores.jsonl").write_text('{"generation_id": 99, "score": 1.0}\n')
    with pytest.raises(ScoringError, match="no answers with ids"):
        store_scores(store, job_id, tmp_path)


@pytest.mark.slow
def test_the_real_score_program_scores_the_snapshot(loop, store, job_manager_for, tiny_model_dir, tmp_path):
    """The app's snapshot and config are what `python -m training score` reads; its file is what we store."""
    from tests.training.conftest import make_reward_adapter

    adapter = make_reward_adapter(tiny_model_dir, tmp_path / "reward", seed=3)
    version = store.add_model_version(
        "R-reward-2", "reward", base_model=str(tiny_model_dir), adapter_path=adapter
    )
    manager = job_manager_for(store, env_extra={"OMP_NUM_THREADS": "1"})
    request = score_request(store, base_model="/unused", system_prompt=SYSTEM, reward_version_id=version)
    request.overrides["device"] = "cpu"
    job_id = run_until_idle(loop, manager, manager.submit(request), timeout=120)
    job = store.get_job(job_id)
    assert job.state == "succeeded", job.error
    scores = store.answer_scores(version)
    assert sorted(scores) == [1, 2] and all(math.isfinite(s) for s in scores.values())
