"""Snapshots: what a job learns from, the replay sample, the held-out guard, the files written."""

from __future__ import annotations

import json

import pytest

from medalign_desktop.jobs.snapshot import SnapshotError, SnapshotRequest, write_snapshot
from medalign_desktop.store import Store

SYSTEM = "You are a careful medical assistant."


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    yield store
    store.close()


def answer(store, question, text, verdict, *, split="train", annotator="dr-a", edited=None):
    prompt_id = store.add_prompt(question, split=split)
    gen_id = store.add_generation(prompt_id, text, settings={"temperature": 0})
    kwargs = {"edited_text": edited} if verdict == "edit" else {}
    if verdict == "reject":
        kwargs = {"reject_reason": "factually_wrong"}
    return store.record_verdict(gen_id, verdict, annotator=annotator, **kwargs)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def finish_retrain(store):
    job = store.create_job("hitl", {})
    store.set_job_state(job, "running")
    store.set_job_state(job, "succeeded")


def test_hitl_snapshot_uses_accepted_and_edited_answers_only(store, tmp_path):
    answer(store, "Q accept", "A accepted", "accept")
    answer(store, "Q edit", "A original", "edit", edited="A edited by the clinician")
    answer(store, "Q reject", "A rejected", "reject")
    withdrawn = answer(store, "Q withdrawn", "A withdrawn", "accept")
    store.withdraw_verdict(withdrawn, annotator="dr-a")
    answer(store, "Q held out", "A held", "accept", split="held_out")

    info = write_snapshot(
        store, SnapshotRequest("hitl", "/models/base", SYSTEM, parent_adapter="/a/1"), tmp_path / "job"
    )
    rows = read_jsonl(tmp_path / "job" / "data" / "train.jsonl")
    assert [r["completion"][0]["content"] for r in rows] == ["A accepted", "A edited by the clinician"]
    assert rows[0]["prompt"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Q accept"},
    ]
    assert (info.n_train, info.n_new, info.n_replay) == (2, 2, 0)
    config = json.loads((tmp_path / "job" / "config.json").read_text())
    assert config == {
        "kind": "hitl",
        "base_model": "/models/base",
        "parent_adapter": "/a/1",
        "output_name": "adapter",
    }


def test_replay_sample_of_earlier_feedback_is_seeded(store, tmp_path):
    for i in range(10):
        answer(store, f"old {i}", f"old answer {i}", "accept")
    finish_retrain(store)
    for i in range(4):
        answer(store, f"new {i}", f"new answer {i}", "accept")
    request = SnapshotRequest("hitl", "/m", SYSTEM, replay_fraction=0.5, seed=3)
    info = write_snapshot(store, request, tmp_path / "j1")
    assert (info.n_new, info.n_replay, info.n_train) == (4, 2, 6)
    first = read_jsonl(tmp_path / "j1" / "data" / "train.jsonl")
    assert [r["completion"][0]["content"] for r in first[:4]] == [f"new answer {i}" for i in range(4)]
    assert all(r["completion"][0]["content"].startswith("old") for r in first[4:])
    write_snapshot(store, request, tmp_path / "j2")
    assert read_jsonl(tmp_path / "j2" / "data" / "train.jsonl") == first  # same seed, same sample
    provenance = json.loads((tmp_path / "j1" / "snapshot.json").read_text())
    assert len(provenance["feedback_ids"]) == 6 and provenance["n_replay"] == 2


def test_no_new_feedback_is_a_clear_error(store, tmp_path):
    answer(store, "Q", "A", "accept")
    finish_retrain(store)
    with pytest.raises(SnapshotError, match="No new accepted or edited answers"):
        write_snapshot(store, SnapshotRequest("hitl", "/m", SYSTEM), tmp_path / "job")


def test_sft_snapshot_uses_reference_answers_of_the_train_split(store, tmp_path):
    store.add_prompt("What is CPR?", reference_answer="Cardiopulmonary resuscitation ...")
    store.add_prompt("No reference")
    store.add_prompt("Held out", reference_answer="secret", split="held_out")
    info = write_snapshot(store, SnapshotRequest("sft", "/m", ""), tmp_path / "job")
    rows = read_jsonl(tmp_path / "job" / "data" / "train.jsonl")
    assert info.n_train == 1 and rows[0]["prompt"] == [{"role": "user", "content": "What is CPR?"}]


def test_held_out_guard_refuses_a_leak(store, tmp_path, monkeypatch):
    answer(store, "Q", "A", "accept")
    held = store.add_prompt("Marked held out later", split="held_out")
    from medalign_desktop.jobs.kinds import sft
    from medalign_desktop.store.training_data import TrainingExample

    leak = TrainingExample(held, "Marked held out later", "x", "accept", 99, "train", "2099")
    real = sft.select_examples
    monkeypatch.setattr(
        sft, "select_examples", lambda s, r: (lambda ex, info: (ex + [leak], info))(*real(s, r))
    )
    with pytest.raises(SnapshotError, match=f"Held-out questions would be trained on \\(ids \\[{held}\\]\\)"):
        write_snapshot(store, SnapshotRequest("hitl", "/m", SYSTEM), tmp_path / "job")
