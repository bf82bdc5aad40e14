"""Evaluation answers and results, the held-out share, blind review (next item, flags, votes), and the
held-out guard for questions moved out of training after they got feedback."""

from __future__ import annotations

import json
import random

import pytest

from medalign_desktop.jobs.snapshot import SnapshotRequest, write_snapshot
from medalign_desktop.store import Store, StoreValidationError, import_questions
from medalign_desktop.store.eval_results import evaluation_settings
from medalign_desktop.store.schema import migrations as migrations_module

SYSTEM = "You are a careful clinical assistant."
SETTINGS = {"max_new_tokens": 256, "temperature": 0, "system_prompt": SYSTEM, "seed": 0}


def _answer(version: str, prompt_id: int, text: str, *, cached: bool = False) -> dict:
    return {
        "version": version, "prompt_id": prompt_id, "text": text, "n_tokens": len(text.split()),
        "finish_reason": "stop", "cached": cached, "parsed_option": None, "correct": None, "reward": None,
    }  # fmt: skip


def _results(*versions: str, settings: dict = SETTINGS, accuracy: float = 0.5) -> dict:
    return {"settings": settings, "versions": {v: {"n_questions": 2, "accuracy": accuracy} for v in versions}}


@pytest.fixture
def held(store: Store, clock) -> list[int]:
    """Three held-out questions and one train question."""
    ids = [store.add_prompt(f"Held-out question {i}?") for i in range(3)]
    store.set_split(ids, "held_out")
    store.add_prompt("A train question?")
    return ids


def _evaluate(store: Store, versions: tuple[str, ...], prompt_ids: list[int], job_id=None) -> None:
    answers = [_answer(v, p, f"{v} answers {p}") for v in versions for p in prompt_ids]
    store.store_evaluation(job_id, _results(*versions), answers)


def _count(store: Store, table: str) -> int:
    return store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_fresh_database_is_at_v4_and_a_v3_file_migrates_keeping_its_data(store, tmp_path, monkeypatch):
    assert store.schema_version == migrations_module.latest_version() >= 4
    assert {"evaluation_results", "review_flags"} <= set(store.db.table_names())
    db_path = tmp_path / "older.sqlite"
    monkeypatch.setattr(migrations_module, "MIGRATIONS", migrations_module.MIGRATIONS[:3])
    with Store.open(db_path) as v3:
        prompt = v3.add_prompt("Kept")
        assert "evaluation_results" not in v3.db.table_names()
    monkeypatch.undo()
    with Store.open(db_path) as v4:
        assert v4.schema_version == migrations_module.latest_version() and v4.last_backup is not None
        assert v4.get_prompt(prompt).text == "Kept" and v4.evaluation_results() == []


def test_the_cache_matches_the_exact_settings_and_versions(store, held):
    _evaluate(store, ("base", "B-iter-1"), held[:2])
    settings = evaluation_settings(256, SYSTEM)
    cached = store.evaluation_cache(["base"], settings)
    assert [(c.version, c.prompt_id, c.text) for c in cached] == [
        ("base", held[0], f"base answers {held[0]}"), ("base", held[1], f"base answers {held[1]}"),
    ]  # fmt: skip
    assert store.get_generation(cached[0].generation_id).settings == settings
    assert len(store.evaluation_cache(["base", "B-iter-1"], settings)) == 4
    assert store.evaluation_cache(["base"], evaluation_settings(128, SYSTEM)) == []
    assert store.evaluation_cache(["base"], evaluation_settings(256, "Another prompt")) == []
    assert store.evaluation_cache(["D-dpo-1"], settings) == []
    assert store.evaluation_cache([], settings) == []


def test_store_evaluation_writes_answers_and_results_together_or_nothing(store, held):
    job = store.create_job("evaluate", {})
    _evaluate(store, ("base",), held, job_id=job)
    assert _count(store, "generations") == 3
    [result] = store.evaluation_results()
    assert (result.version, result.job_id, result.metrics["accuracy"]) == ("base", job, 0.5)
    assert result.settings == SETTINGS

    answers = [_answer("B-iter-1", held[0], "fine"), _answer("B-iter-1", held[1], "fine"),
               _answer("B-iter-1", 999, "no such question")]  # fmt: skip
    with pytest.raises(StoreValidationError, match="no prompt with id 999"):
        store.store_evaluation(job, _results("B-iter-1"), answers)
    bad = [_answer("B-iter-1", held[0], "x"), {**_answer("B-iter-1", held[1], "y"), "prompt_id": "two"}]
    with pytest.raises(StoreValidationError) as info:
        store.store_evaluation(job, _results("B-iter-1"), bad)
    assert info.value.field == "answers[1].prompt_id"
    with pytest.raises(StoreValidationError, match="not one of the evaluated versions"):
        store.store_evaluation(job, _results("B-iter-1"), [_answer("D-dpo-9", held[0], "x")])
    with pytest.raises(StoreValidationError, match="no job with id 77"):
        store.store_evaluation(77, _results("B-iter-1"), [])
    assert _count(store, "generations") == 3 and len(store.evaluation_results(latest_only=False)) == 1


def test_cached_and_repeated_answers_are_not_stored_twice_and_latest_results_win(store, held):
    _evaluate(store, ("base",), held)
    again = [_answer("base", p, "cached text", cached=True) for p in held[:2]]
    again.append(_answer("base", held[2], "generated again by a concurrent job"))
    store.store_evaluation(None, _results("base", accuracy=0.75), again)
    assert _count(store, "generations") == 3
    assert [c.text for c in store.evaluation_cache(["base"], evaluation_settings(256, SYSTEM))] == [
        f"base answers {p}" for p in held
    ]
    assert [r.metrics["accuracy"] for r in store.evaluation_results(latest_only=False)] == [0.5, 0.75]
    assert [r.metrics["accuracy"] for r in store.evaluation_results()] == [0.75]


def test_hold_out_share_is_seeded_and_exact(store, tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"question": f"Question number {i}?"}) + "\n" for i in range(10)))
    batch = import_questions(store, path).batch_id
    ids = store.queue(mode="all")
    assert store.hold_out_share(batch, 0.25, seed=7) == 3  # round(2.5) is 3: halves round up
    expected = sorted(random.Random(7).sample(ids, 3))
    assert [p for p in ids if store.get_prompt(p).split == "held_out"] == expected
    assert store.held_out_count() == 3 and [p.id for p in store.held_out_prompts()] == expected
    assert store.hold_out_share(batch, 0.25, seed=7) == 0  # the same draw: nothing more to move
    assert store.hold_out_share(batch, 1.0, seed=1) == 7 and store.held_out_count() == 10
    for fraction in (0, 1.5, "half", True):
        with pytest.raises(StoreValidationError, match="fraction"):
            store.hold_out_share(batch, fraction, seed=1)
    with pytest.raises(StoreValidationError, match="no import batch with id 42"):
        store.hold_out_share(42, 0.5, seed=1)


def test_next_review_item_draws_every_question_once_per_annotator(store, held):
    _evaluate(store, ("base", "B-iter-1", "D-dpo-1"), held)
    train = store.queue(mode="all")[-1]
    _evaluate(store, ("base", "B-iter-1"), [train])  # evaluation answers to a train question: never drawn
    store.add_generation(held[0], "a sampled answer", model_version="base", settings={"temperature": 0.7})
    seen, remaining = [], []
    for seed in range(len(held) + 2):  # bounded: a repeat would show as more items than questions
        item = store.next_review_item("base", "B-iter-1", annotator="dr a", rng_seed=seed)
        if item is None:
            break
        versions = (item.first_generation.model_version, item.second_generation.model_version)
        assert versions == (("B-iter-1", "base") if item.swapped else ("base", "B-iter-1"))
        assert item.first_generation.prompt_id == item.second_generation.prompt_id == item.prompt.id
        seen.append(item.prompt.id)
        remaining.append(item.remaining)
        store.record_review(item.first_generation.id, item.second_generation.id, "tie",
                            annotator="dr a", swapped=item.swapped, answer_flags={})  # fmt: skip
    assert sorted(seen) == held and remaining == [3, 2, 1]
    assert store.next_review_item("base", "B-iter-1", annotator="dr b", rng_seed=0) is not None
    assert store.next_review_item("B-iter-1", "D-dpo-1", annotator="dr a", rng_seed=0) is not None

    first = store.next_review_item("base", "D-dpo-1", annotator="dr a", rng_seed=5)
    assert first == store.next_review_item("base", "D-dpo-1", annotator="dr a", rng_seed=5)
    draws = [store.next_review_item("base", "D-dpo-1", annotator="dr a", rng_seed=s) for s in range(30)]
    assert {d.prompt.id for d in draws} == set(held)  # a seeded random choice, not always the oldest question
    assert {d.swapped for d in draws} == {True, False}  # and a random order of the two answers

    comparison = store.list_comparisons()[0]
    store.withdraw_comparison(comparison.id, annotator="dr a")  # withdrawn: that question comes back
    item = store.next_review_item("base", "B-iter-1", annotator="dr a", rng_seed=0)
    assert item is not None and item.prompt.id == comparison.prompt_id
    with pytest.raises(StoreValidationError, match="must differ"):
        store.next_review_item("base", "base", annotator="dr a", rng_seed=0)


def test_record_review_keeps_each_answers_flags_and_review_votes_lists_live_reviews(store, held):
    _evaluate(store, ("base", "B-iter-1"), held[:2])
    item = store.next_review_item("base", "B-iter-1", annotator="dr a", rng_seed=1)
    first, second = item.first_generation.id, item.second_generation.id
    before = _count(store, "comparisons")
    with pytest.raises(StoreValidationError) as info:
        store.record_review(first, second, "second", annotator="dr a", swapped=False,
                            answer_flags={first: ["made_up_flag"]})  # fmt: skip
    assert info.value.field == f"answer_flags[{first}]"
    with pytest.raises(StoreValidationError, match="not one of the two answers"):
        store.record_review(first, second, "second", annotator="dr a", swapped=False, answer_flags={99: []})
    assert _count(store, "comparisons") == before and _count(store, "review_flags") == 0

    cid = store.record_review(
        first, second, "second", annotator="dr a", swapped=item.swapped,
        answer_flags={first: ["unsafe_advice", "hallucinated_fact"], second: []}, notes="first is dangerous",
    )  # fmt: skip
    comparison = store.get_comparison(cid)
    assert (comparison.mode, comparison.choice, comparison.notes) == (
        "versions",
        "second",
        "first is dangerous",
    )
    assert comparison.safety_flags == ("hallucinated_fact", "unsafe_advice")
    [vote] = store.review_votes()
    assert (vote.first_version, vote.second_version, vote.choice) == (
        item.first_generation.model_version, item.second_generation.model_version, "second",
    )  # fmt: skip
    assert (vote.first_flags, vote.second_flags) == (("hallucinated_fact", "unsafe_advice"), ())
    assert (vote.comparison_id, vote.annotator, vote.first_generation_id) == (cid, "dr a", first)

    # Not votes: a 'seeds' comparison, a comparison of non-evaluation answers, a withdrawn review.
    other = store.next_review_item("base", "B-iter-1", annotator="dr a", rng_seed=1)
    store.record_comparison(other.first_generation.id, other.second_generation.id, "first",
                            annotator="dr a", swapped=False, mode="seeds")  # fmt: skip
    sampled = store.add_generation(
        item.prompt.id, "sampled", model_version="base", settings={"temperature": 0.7}
    )
    store.record_comparison(first, sampled, "first", annotator="dr b", swapped=False, mode="versions")
    assert [v.comparison_id for v in store.review_votes()] == [cid]
    store.withdraw_comparison(cid, annotator="dr a")
    assert store.review_votes() == []


def test_a_question_held_out_after_feedback_never_reaches_a_training_snapshot(store, clock, tmp_path):
    """The held-out guard: questions moved to held-out keep their verdicts and reviews out of every job."""
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"question": f"Question {i}?"}) + "\n" for i in range(2)))
    batch = import_questions(store, path).batch_id
    ids = store.queue(mode="all")
    for pid in ids:
        generation = store.add_generation(pid, f"Answer {pid}", model_version="base", settings={})
        store.record_verdict(generation, "edit", annotator="dr a", edited_text=f"Better answer {pid}")
    assert store.hold_out_share(batch, 0.5, seed=3) == 1
    [moved] = [p.id for p in store.held_out_prompts()]
    [kept] = [pid for pid in ids if pid != moved]
    # A blind review on the held-out question gives a pair too, which must stay out as well.
    _evaluate(store, ("base", "B-iter-1"), [moved])
    item = store.next_review_item("base", "B-iter-1", annotator="dr a", rng_seed=0)
    store.record_review(item.first_generation.id, item.second_generation.id, "first", annotator="dr a",
                        swapped=item.swapped, answer_flags={})  # fmt: skip

    for kind in ("hitl", "dpo"):
        write_snapshot(store, SnapshotRequest(kind, "/m", SYSTEM), tmp_path / kind)
        provenance = json.loads((tmp_path / kind / "snapshot.json").read_text())
        assert provenance["prompt_ids"] == [kept]
        text = (tmp_path / kind / "data" / "train.jsonl").read_text()
        assert f"Question {kept - 1}?" in text and f"Question {moved - 1}?" not in text
