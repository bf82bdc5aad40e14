"""Preference jobs from the store to the job folder: which adapter each kind starts from, the pair and
prompt snapshots with the held-out guard, and the queue registering D- / R- / C- versions with their metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from medalign_desktop.jobs.requests import (
    JobRequest,
    RequestError,
    ppo_job_inputs,
    preference_job_inputs,
    training_request,
)
from medalign_desktop.jobs.snapshot import SnapshotError, SnapshotRequest, write_snapshot
from medalign_desktop.store import Store
from tests.unit.jobs.test_manager import run_until_idle

FAKE = Path(__file__).resolve().parents[2] / "data" / "fake_training.py"
SYSTEM = "You are a careful medical assistant."


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    yield store
    store.close()


def answer(store, question, text, verdict, *, split="train", edited=None, annotator="dr-a"):
    prompt_id = store.add_prompt(question, split=split)
    generation = store.add_generation(prompt_id, text, settings={})
    fields = {"edited_text": edited} if verdict == "edit" else {}
    if verdict == "reject":
        fields = {"reject_reason": "factually_wrong"}
    return prompt_id, store.record_verdict(generation, verdict, annotator=annotator, **fields)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def pairs_file(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "pairs.jsonl"
    lines = [
        json.dumps({
            "prompt": q,
            "chosen": [{"role": "user", "content": q}, {"role": "assistant", "content": good}],
            "rejected": [{"role": "user", "content": q}, {"role": "assistant", "content": bad}],
        })
        for q, good, bad in rows
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def add_version(store, name, kind, adapter="/adapters/x", active=False):
    version = store.add_model_version(name, kind, adapter_path=adapter, metrics={"eval_accuracy": 0.75})
    if active:
        store.set_active_model_version(version)
    return version


# -- requests ---------------------------------------------------------------------------------------


def test_dpo_and_ppo_continue_from_the_active_version_reward_and_sft_from_the_base(store):
    active = add_version(store, "B-iter-1", "hitl", "/adapters/b1", active=True)
    reward = add_version(store, "R-reward-1", "reward", "/adapters/r1")
    common = {"base_model": "/models/base", "system_prompt": SYSTEM}
    dpo = training_request(store, kind="dpo", import_batch_ids=(3,), **common)
    assert (dpo.parent_adapter, dpo.parent_version_id, dpo.import_batch_ids) == ("/adapters/b1", active, (3,))
    rm = training_request(store, kind="reward", **common)
    assert (rm.parent_adapter, rm.parent_version_id) == (None, None)
    ppo = training_request(store, kind="ppo", prompt_scope="unannotated", max_prompts=8, **common)
    assert (ppo.parent_adapter, ppo.reward_adapter) == ("/adapters/b1", "/adapters/r1")
    assert (ppo.prompt_scope, ppo.max_prompts, ppo.import_batch_ids) == ("unannotated", 8, ())
    chosen = training_request(store, kind="ppo", reward_version_id=reward, **common)
    assert chosen.reward_adapter == "/adapters/r1"


def test_ppo_without_a_reward_model_is_refused_with_advice(store):
    with pytest.raises(RequestError, match="train one first"):
        training_request(store, kind="ppo", base_model="/m", system_prompt="")
    hitl = add_version(store, "B-iter-1", "hitl")
    add_version(store, "R-reward-1", "reward")
    with pytest.raises(RequestError, match="not a registered reward model"):
        training_request(store, kind="ppo", base_model="/m", system_prompt="", reward_version_id=hitl)


def test_dialog_inputs_count_feedback_pairs_batches_and_questions(store, tmp_path):
    from medalign_desktop.store.imports.preferences import import_preferences

    answer(store, "Q1", "original", "edit", edited="better")
    answer(store, "Q2", "fine", "accept")
    answer(store, "Q3 held", "x", "edit", edited="y", split="held_out")
    import_preferences(store, pairs_file(tmp_path, [("Imported Q", "good", "bad")]))
    n_feedback, batches = preference_job_inputs(store)
    assert n_feedback == 1
    assert [b["n_imported"] for b in batches] == [1]
    add_version(store, "R-reward-1", "reward")
    rewards, n_all, n_unannotated = ppo_job_inputs(store)
    store.add_prompt("Q4 unanswered")
    assert [v.name for v in rewards] == ["R-reward-1"] and (n_all, n_unannotated) == (2, 0)
    assert ppo_job_inputs(store)[1:] == (3, 1)


# -- snapshots --------------------------------------------------------------------------------------


def test_pair_snapshot_writes_feedback_pairs_and_only_the_chosen_imported_batches(store, tmp_path):
    from medalign_desktop.store.imports.preferences import import_preferences

    answer(store, "Q edit", "original answer", "edit", edited="edited answer")
    answer(store, "Q held", "x", "edit", edited="y", split="held_out")
    store.add_prompt("Held-out imported question", split="held_out")
    report = import_preferences(
        store,
        pairs_file(tmp_path, [("Imported Q", "good", "bad"), ("Held-out imported question", "g", "b")]),
    )
    batch = report.batch_id if hasattr(report, "batch_id") else store.import_batches(kind="pairs")[0]["id"]

    info = write_snapshot(store, SnapshotRequest("dpo", "/m", SYSTEM, parent_adapter="/a"), tmp_path / "j1")
    rows = read_jsonl(tmp_path / "j1" / "data" / "train.jsonl")
    assert info.n_train == 1 and len(rows) == 1
    assert rows[0]["prompt"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Q edit"}]
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "edited answer"}]
    assert rows[0]["rejected"] == [{"role": "assistant", "content": "original answer"}]
    config = json.loads((tmp_path / "j1" / "config.json").read_text())
    assert config == {"kind": "dpo", "base_model": "/m", "parent_adapter": "/a", "output_name": "adapter"}

    request = SnapshotRequest("reward", "/m", "", import_batch_ids=(batch,))
    write_snapshot(store, request, tmp_path / "j2")
    rows = read_jsonl(tmp_path / "j2" / "data" / "train.jsonl")
    assert sorted(r["prompt"][-1]["content"] for r in rows) == ["Imported Q", "Q edit"]
    snapshot = json.loads((tmp_path / "j2" / "snapshot.json").read_text())
    assert (snapshot["n_feedback_pairs"], snapshot["n_imported_pairs"], snapshot["n_dropped_held_out"]) == (
        1,
        1,
        1,
    )


def test_pair_snapshot_without_pairs_says_how_to_make_some(store, tmp_path):
    answer(store, "Q", "fine", "accept")
    with pytest.raises(SnapshotError, match="edit an answer"):
        write_snapshot(store, SnapshotRequest("dpo", "/m", SYSTEM), tmp_path / "job")


def test_pair_guard_refuses_a_question_moved_to_held_out(store, tmp_path, monkeypatch):
    from medalign_desktop.jobs import preference_snapshot as prefs

    prompt_id, _ = answer(store, "Q", "original", "edit", edited="better")
    real_select = prefs.select_pairs

    def select_then_move(*args, **kwargs):  # the split changes between the query and the guard
        selection = real_select(*args, **kwargs)
        store.set_split([prompt_id], "held_out")
        return selection

    monkeypatch.setattr(prefs, "select_pairs", select_then_move)
    with pytest.raises(SnapshotError, match="Held-out questions would be trained on"):
        write_snapshot(store, SnapshotRequest("dpo", "/m", SYSTEM), tmp_path / "job")


def test_ppo_snapshot_writes_train_questions_and_the_reward_adapter(store, tmp_path):
    answer(store, "Q answered", "a", "accept")
    store.add_prompt("Q open 1")
    store.add_prompt("Q open 2")
    store.add_prompt("Q held out", split="held_out")
    request = SnapshotRequest("ppo", "/m", SYSTEM, parent_adapter="/p", reward_adapter="/r")
    info = write_snapshot(store, request, tmp_path / "all")
    rows = read_jsonl(tmp_path / "all" / "data" / "prompts.jsonl")
    assert [r["prompt"][-1]["content"] for r in rows] == ["Q answered", "Q open 1", "Q open 2"]
    assert info.n_train == 3
    config = json.loads((tmp_path / "all" / "config.json").read_text())
    assert (config["reward_adapter"], config["parent_adapter"]) == ("/r", "/p")

    request = SnapshotRequest("ppo", "/m", "", reward_adapter="/r", prompt_scope="unannotated", max_prompts=1)
    write_snapshot(store, request, tmp_path / "open")
    rows = read_jsonl(tmp_path / "open" / "data" / "prompts.jsonl")
    assert len(rows) == 1 and rows[0]["prompt"][-1]["content"] in ("Q open 1", "Q open 2")
    assert rows[0]["prompt"] == [{"role": "user", "content": rows[0]["prompt"][-1]["content"]}]

    with pytest.raises(SnapshotError, match="reward model"):
        write_snapshot(store, SnapshotRequest("ppo", "/m", SYSTEM), tmp_path / "none")


# -- the queue --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "version", "extra_metric"),
    [("dpo", "D-dpo-1", "rewards/accuracies"), ("reward", "R-reward-1", "accuracy")],
)
def test_preference_job_registers_its_version_and_keeps_its_metrics(
    loop, store, job_manager_for, tiny_adapters, kind, version, extra_metric
):
    answer(store, "Q", "original", "edit", edited="better")
    manager = job_manager_for(store, launcher=f"{sys.executable} {FAKE}")
    seen = []
    manager.metric.connect(lambda _job, values: seen.append(values))
    overrides = {"fake_adapter_source": str(tiny_adapters[0])}
    job_id = run_until_idle(
        loop, manager, manager.submit(JobRequest(kind, "/m", SYSTEM, overrides=overrides))
    )
    assert store.get_job(job_id).state == "succeeded"
    assert [v.name for v in store.list_model_versions()] == [version]
    assert [m.value for m in store.job_metrics(job_id, extra_metric)] == [0.25, 0.5, 0.75]
    assert seen[0][extra_metric] == 0.25 and seen[0]["loss"] == 2.5
