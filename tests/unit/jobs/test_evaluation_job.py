"""Evaluation jobs against the scripted stand-in program (contract A of issue 7): the request, the
snapshot of held-out questions and cached answers, results stored per version, nothing generated twice,
failures named; and one slow run of the real `python -m training evaluate` on the tiny model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from medalign_desktop.jobs.evaluation import EvaluationError, evaluable_versions, evaluation_request
from medalign_desktop.jobs.manager import JobManager
from medalign_desktop.jobs.snapshot import SnapshotError, SnapshotRequest, write_snapshot
from medalign_desktop.store import Store

FAKE = Path(__file__).resolve().parents[2] / "data" / "fake_training.py"
SYSTEM = "You are a careful clinical assistant."
OPTIONS = {"A": "Intramuscular adrenaline", "B": "Oral antihistamine"}


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    mcq = store.add_prompt("First-line drug in anaphylaxis?", options=OPTIONS, answer_key="A")
    free = store.add_prompt("Maximum daily paracetamol dose?", reference_answer="4 g in adults.")
    store.add_prompt("A train question?")
    store.set_split([mcq, free], "held_out")
    store.add_model_version("B-iter-1", "hitl", adapter_path="/adapters/b1")
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


def _generations(store: Store) -> int:
    return store.db.execute("SELECT count(*) FROM generations").fetchone()[0]


def test_the_request_names_the_versions_and_the_scoring_reward_model(store):
    request = evaluation_request(store, ["base", "B-iter-1", "base"], "/models/base", SYSTEM, 64)
    assert (request.kind, request.eval_versions, request.overrides) == (
        "evaluate", ("base", "B-iter-1"), {"max_new_tokens": 64},
    )  # fmt: skip
    assert request.reward_adapter is None and request.system_prompt == SYSTEM
    reward = store.add_model_version("R-reward-1", "reward", adapter_path="/adapters/r1")
    assert evaluable_versions(store) == ["base", "B-iter-1"]  # a reward model does not answer
    request = evaluation_request(store, ["B-iter-1"], "/models/base", SYSTEM)
    assert (request.reward_adapter, request.reward_version_id) == ("/adapters/r1", reward)
    assert request.overrides == {"max_new_tokens": 256}
    with pytest.raises(EvaluationError, match="R-reward-1 is a reward model"):
        evaluation_request(store, ["R-reward-1"], "/m", SYSTEM)
    with pytest.raises(EvaluationError, match="no model version named 'D-dpo-7'"):
        evaluation_request(store, ["D-dpo-7"], "/m", SYSTEM)
    with pytest.raises(EvaluationError, match="Choose at least one"):
        evaluation_request(store, [], "/m", SYSTEM)
    store.set_split([1, 2], "train")
    with pytest.raises(EvaluationError, match="Mark questions as held out first"):
        evaluation_request(store, ["base"], "/m", SYSTEM)


def test_snapshot_writes_held_out_questions_cached_answers_and_the_config(store, tmp_path):
    store.store_evaluation(
        None,
        {"settings": {"max_new_tokens": 64, "system_prompt": SYSTEM}, "versions": {"base": {}}},
        [{"version": "base", "prompt_id": 1, "text": "The answer is A.", "n_tokens": 4,
          "finish_reason": "stop", "cached": False}],
    )  # fmt: skip
    store.add_generation(2, "sampled, not an evaluation answer", model_version="base", settings={})
    request = SnapshotRequest("evaluate", "/models/base", SYSTEM, reward_adapter="/r", eval_versions=("base", "B-iter-1"),
                              overrides={"max_new_tokens": 64})  # fmt: skip
    info = write_snapshot(store, request, tmp_path / "job")
    read = lambda name: [json.loads(x) for x in (tmp_path / "job" / name).read_text().splitlines()]  # noqa: E731
    assert read("data/questions.jsonl") == [
        {"prompt_id": 1, "question": "First-line drug in anaphylaxis?", "reference_answer": None,
         "answer_key": "A", "options": OPTIONS},
        {"prompt_id": 2, "question": "Maximum daily paracetamol dose?", "reference_answer": "4 g in adults.",
         "answer_key": None, "options": None},
    ]  # fmt: skip
    assert read("data/cached.jsonl") == [
        {
            "version": "base",
            "prompt_id": 1,
            "text": "The answer is A.",
            "n_tokens": 4,
            "finish_reason": "stop",
        }
    ]
    assert (info.n_train, info.n_new) == (2, 3)  # 2 questions x 2 versions, 1 answer cached
    config = json.loads((tmp_path / "job" / "config.json").read_text())
    assert config == {
        "kind": "evaluate", "base_model": "/models/base", "reward_adapter": "/r", "max_new_tokens": 64,
        "system_prompt": SYSTEM, "seed": 0,
        "versions": [{"name": "base", "adapter_path": None}, {"name": "B-iter-1", "adapter_path": "/adapters/b1"}],
    }  # fmt: skip
    from training.config import config_from_dict

    assert config_from_dict(config).versions == config["versions"]  # the program accepts what the app writes
    # A different max_new_tokens is a different cache: nothing cached.
    write_snapshot(store, SnapshotRequest("evaluate", "/m", SYSTEM, eval_versions=("base",)), tmp_path / "j2")
    assert (tmp_path / "j2" / "data" / "cached.jsonl").read_text() == ""


def test_snapshot_refuses_without_held_out_questions_or_versions(store, tmp_path):
    with pytest.raises(SnapshotError, match="Choose at least one model version"):
        write_snapshot(store, SnapshotRequest("evaluate", "/m", SYSTEM), tmp_path / "j1")
    store.set_split([1, 2], "train")
    with pytest.raises(SnapshotError, match="Mark questions as held out first"):
        write_snapshot(
            store, SnapshotRequest("evaluate", "/m", SYSTEM, eval_versions=("base",)), tmp_path / "j2"
        )


def test_a_successful_evaluation_stores_results_per_version_and_reuses_answers_next_time(
    loop, manager, store
):
    ready, versions = [], []
    manager.results_ready.connect(lambda job_id, kind: ready.append((job_id, kind)))
    manager.version_ready.connect(versions.append)
    request = evaluation_request(store, ["base", "B-iter-1"], "/models/base", SYSTEM)
    job_id = run_until_idle(loop, manager, manager.submit(request))
    job = store.get_job(job_id)
    assert (job.state, job.error, job.config["eval_versions"]) == ("succeeded", None, ["base", "B-iter-1"])
    assert ready == [(job_id, "evaluate")] and versions == []
    written = json.loads(Path(job.job_dir, "results.json").read_text())
    stored = {r.version: r for r in store.evaluation_results()}
    assert {name: r.metrics for name, r in stored.items()} == written["versions"]
    assert stored["base"].metrics["accuracy"] == 0.0 and stored["B-iter-1"].metrics["accuracy"] == 1.0
    assert stored["base"].job_id == job_id and stored["base"].settings["max_new_tokens"] == 256
    assert _generations(store) == 4

    job_id = run_until_idle(loop, manager, manager.submit(request))
    assert store.get_job(job_id).state == "succeeded" and _generations(store) == 4
    assert [r.metrics["n_cached"] for r in store.evaluation_results()] == [2, 2]
    item = store.next_review_item("base", "B-iter-1", annotator="dr a", rng_seed=0)
    assert item is not None and item.prompt.split == "held_out"


def test_a_broken_answers_file_fails_the_job_naming_the_line_and_stores_nothing(loop, manager, store):
    request = evaluation_request(store, ["base", "B-iter-1"], "/models/base", SYSTEM)
    request.overrides["fake_mode"] = "bad_answers"
    job_id = run_until_idle(loop, manager, manager.submit(request))
    job = store.get_job(job_id)
    assert (
        job.state == "failed" and "answers.jsonl line 5: prompt_id: must be a positive integer" in job.error
    )
    assert store.evaluation_results() == [] and _generations(store) == 0


def test_a_failed_evaluation_stores_nothing(loop, manager, store):
    request = evaluation_request(store, ["base"], "/models/base", SYSTEM)
    request.overrides["fake_mode"] = "fail"
    job_id = run_until_idle(loop, manager, manager.submit(request))
    assert store.get_job(job_id).state == "failed" and store.evaluation_results() == []


@pytest.mark.slow
def test_the_real_evaluate_program_answers_the_snapshot(
    loop, store, job_manager_for, tiny_model_dir, tiny_adapters
):
    """The app's snapshot and config are what `python -m training evaluate` reads; its files are what we store."""
    pytest.importorskip("training.evaluate")
    store.add_model_version(
        "B-iter-tiny", "hitl", base_model=str(tiny_model_dir), adapter_path=tiny_adapters[0]
    )
    manager = job_manager_for(store, env_extra={"OMP_NUM_THREADS": "1"})
    request = evaluation_request(
        store, ["base", "B-iter-tiny"], str(tiny_model_dir), SYSTEM, max_new_tokens=8
    )
    request.overrides["device"] = "cpu"
    job_id = run_until_idle(loop, manager, manager.submit(request), timeout=180)
    job = store.get_job(job_id)
    assert job.state == "succeeded", job.error
    results = {r.version: r.metrics for r in store.evaluation_results()}
    assert set(results) == {"base", "B-iter-tiny"}
    assert results["base"]["n_questions"] == 2 and results["base"]["n_mcq"] == 1
    assert _generations(store) == 4
    job_id = run_until_idle(loop, manager, manager.submit(request), timeout=180)
    assert store.get_job(job_id).state == "succeeded"
    assert _generations(store) == 4  # all cached the second time
