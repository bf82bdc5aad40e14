"""Preference pairs derived from verdicts, comparisons and imports: each rule, provenance, filters, speed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from medalign_desktop.store import PairFilter, PreferencePair, Store, StoreValidationError
from medalign_desktop.store import pairs as pairs_module
from medalign_desktop.store.db import transaction

QUESTION = "First-line treatment of anaphylaxis?"
A, B, C = "Oral antihistamine.", "IM adrenaline.", "Call for help."
EDIT = "IM adrenaline 0.5 mg into the thigh, repeat after 5 minutes."


@dataclass(frozen=True)
class Question:
    prompt_id: int
    a: int  # generation ids; a by 'base', b by 'v2', c by 'v3'
    b: int
    c: int


@pytest.fixture
def question(store: Store, clock) -> Question:
    prompt_id = store.add_prompt(QUESTION)
    ids = [
        store.add_generation(prompt_id, text, model_version=version, settings={})
        for text, version in ((A, "base"), (B, "v2"), (C, "v3"))
    ]
    return Question(prompt_id, *ids)


def _keys(store: Store, **filters) -> list[str]:
    return [p.key for p in store.preference_pairs(PairFilter(**filters))]


def _import_pair(store: Store, prompt: str, chosen: str, rejected: str, at: str) -> tuple[int, int]:
    """An imported pair written directly (the importer has its own tests); returns (batch id, pair id)."""
    with transaction(store.db) as db:
        batch = db.execute(
            "INSERT INTO import_batches (source_path, sha256, format, kind, created_at)"
            " VALUES ('/x.jsonl', '0', 'jsonl', 'pairs', ?)",
            [at],
        ).lastrowid
        pair = db.execute(
            "INSERT INTO imported_pairs (prompt, chosen, rejected, chosen_messages_json,"
            " rejected_messages_json, import_batch_id, dedup_hash, created_at)"
            " VALUES (?, ?, ?, '[]', '[]', ?, ?, ?)",
            [prompt, chosen, rejected, batch, f"{prompt}{chosen}{rejected}", at],
        ).lastrowid
    return batch, pair


def test_edit_gives_edited_over_original_with_provenance(store: Store, question: Question) -> None:
    fid = store.record_verdict(
        question.a, "edit", annotator="dr a", edited_text=EDIT, safety_flags=["unsafe_advice"]
    )
    assert store.preference_pairs() == [
        PreferencePair(
            key=f"edit-{fid}", source="edit", prompt_id=question.prompt_id, prompt=QUESTION, chosen=EDIT,
            rejected=A, annotator="dr a", feedback_ids=(fid,), comparison_id=None, chosen_version="base",
            rejected_version="base", split="train", safety_flags=("unsafe_advice",), import_batch_id=None,
            created_at="2026-01-01T00:00:04.000000Z",
        )
    ]  # fmt: skip
    assert store.count_pairs() == 1


def test_accept_alone_and_reject_alone_give_nothing(store: Store, question: Question) -> None:
    store.record_verdict(question.a, "accept", annotator="dr a")
    assert store.preference_pairs() == [] and store.count_pairs() == 0
    store.withdraw_verdict(1, annotator="dr a")
    store.record_verdict(question.b, "reject", annotator="dr a", reject_reason="unsafe")
    assert store.preference_pairs() == []
    store.record_verdict(question.b, "accept", annotator="dr b")  # the same answer: no pair with itself
    assert store.preference_pairs() == [] and store.count_pairs() == 0


@pytest.mark.parametrize(("choice", "winner", "loser"), [("first", "a", "b"), ("second", "b", "a")])
def test_comparison_gives_winner_over_loser(store: Store, question: Question, choice, winner, loser):
    cid = store.record_comparison(
        question.a, question.b, choice, annotator="dr c", swapped=True, mode="versions",
        safety_flags=["privacy"],
    )  # fmt: skip
    texts, versions = {"a": A, "b": B}, {"a": "base", "b": "v2"}
    [pair] = store.preference_pairs()
    assert (pair.key, pair.source, pair.comparison_id, pair.feedback_ids) == (
        f"cmp-{cid}",
        "comparison",
        cid,
        (),
    )
    assert (pair.chosen, pair.rejected) == (texts[winner], texts[loser])
    assert (pair.chosen_version, pair.rejected_version) == (versions[winner], versions[loser])
    assert (pair.annotator, pair.safety_flags, pair.prompt, pair.split) == (
        "dr c",
        ("privacy",),
        QUESTION,
        "train",
    )
    assert pair.created_at == store.get_comparison(cid).created_at


def test_edited_winner_gives_two_pairs(store: Store, question: Question) -> None:
    cid = store.record_comparison(
        question.a, question.b, "second", annotator="dr c", swapped=False, mode="seeds", edited_text=EDIT
    )
    pairs = store.preference_pairs()
    assert [(p.key, p.chosen, p.rejected) for p in pairs] == [
        (f"cmp-{cid}", EDIT, A),  # the edit stands for the winner
        (f"cmp-{cid}-edit", EDIT, B),  # and beats the original winner
    ]
    assert [(p.chosen_version, p.rejected_version) for p in pairs] == [("v2", "base"), ("v2", "v2")]


@pytest.mark.parametrize("choice", ["tie", "both_bad"])
def test_ties_and_both_bad_give_nothing(store: Store, question: Question, choice: str) -> None:
    store.record_comparison(question.a, question.b, choice, annotator="a", swapped=False, mode="seeds")
    assert store.preference_pairs() == [] and store.count_pairs() == 0


def test_reject_plus_better_answers(store: Store, question: Question) -> None:
    reject = store.record_verdict(
        question.a, "reject", annotator="dr r", reject_reason="unsafe", safety_flags=["unsafe_advice"]
    )
    accept = store.record_verdict(question.b, "accept", annotator="dr s", safety_flags=["privacy"])
    edit = store.record_verdict(question.c, "edit", annotator="dr t", edited_text=EDIT)
    pairs = {p.key: p for p in store.preference_pairs(PairFilter(sources=("reject",)))}
    assert sorted(pairs) == [f"rej-{reject}-{accept}", f"rej-{reject}-{edit}"]
    by_accept, by_edit = pairs[f"rej-{reject}-{accept}"], pairs[f"rej-{reject}-{edit}"]
    assert (by_accept.chosen, by_accept.rejected, by_edit.chosen, by_edit.rejected) == (B, A, EDIT, A)
    assert by_accept.annotator == by_edit.annotator == "dr r"  # the reject's annotator
    assert by_accept.feedback_ids == (reject, accept) and by_edit.feedback_ids == (reject, edit)
    assert (by_accept.chosen_version, by_accept.rejected_version) == ("v2", "base")
    assert by_accept.safety_flags == ("privacy", "unsafe_advice")  # the union
    assert by_edit.safety_flags == ("unsafe_advice",)
    # created_at is the later verdict's, whichever came first
    assert by_accept.created_at == store.feedback_detail(accept).created_at
    later_reject = store.record_verdict(question.c, "reject", annotator="dr u", reject_reason="incomplete")
    [late] = [p for p in store.preference_pairs() if p.key == f"rej-{later_reject}-{accept}"]
    assert late.created_at == store.feedback_detail(later_reject).created_at
    # all sources together: the edit pair, the two reject pairs, the later reject with b's accept
    assert store.count_pairs() == len(store.preference_pairs()) == 4


def test_imported_pairs(store: Store) -> None:
    batch, pair_id = _import_pair(store, "Q?", "good", "bad", "2026-02-01T00:00:00.000000Z")
    assert store.preference_pairs() == [
        PreferencePair(
            key=f"imp-{pair_id}", source="imported", prompt_id=None, prompt="Q?", chosen="good", rejected="bad",
            annotator=None, feedback_ids=(), comparison_id=None, chosen_version=None, rejected_version=None,
            split="train", safety_flags=(), import_batch_id=batch, created_at="2026-02-01T00:00:00.000000Z",
        )
    ]  # fmt: skip


def test_withdrawal_removes_each_pair(store: Store, question: Question) -> None:
    edit = store.record_verdict(question.a, "edit", annotator="a", edited_text=EDIT)
    cid = store.record_comparison(question.a, question.b, "first", annotator="a", swapped=False, mode="seeds")
    reject = store.record_verdict(question.c, "reject", annotator="a", reject_reason="off_topic")
    accept = store.record_verdict(question.b, "accept", annotator="b")
    assert _keys(store) == [f"edit-{edit}", f"cmp-{cid}", f"rej-{reject}-{edit}", f"rej-{reject}-{accept}"]

    store.withdraw_verdict(accept, annotator="b")
    assert _keys(store) == [f"edit-{edit}", f"cmp-{cid}", f"rej-{reject}-{edit}"]
    store.withdraw_comparison(cid, annotator="a")
    assert _keys(store) == [f"edit-{edit}", f"rej-{reject}-{edit}"]
    store.withdraw_verdict(reject, annotator="a")
    assert _keys(store) == [f"edit-{edit}"]
    assert store.undo_last_verdict("a") == edit
    assert _keys(store) == [] and store.count_pairs() == 0


def test_changing_an_edit_to_accept_removes_its_pair(store: Store, question: Question) -> None:
    fid = store.record_verdict(question.a, "edit", annotator="a", edited_text=EDIT)
    assert _keys(store) == [f"edit-{fid}"]
    store.change_verdict(fid, annotator="a", edited_text=EDIT + " Monitor.")
    assert [p.chosen for p in store.preference_pairs()] == [EDIT + " Monitor."]  # read live, never copied
    store.change_verdict(fid, annotator="a", verdict="accept")
    assert _keys(store) == []


def test_held_out_questions_are_left_out_unless_asked(store: Store, question: Question) -> None:
    fid = store.record_verdict(question.a, "edit", annotator="a", edited_text=EDIT)
    store.set_split([question.prompt_id], "held_out")
    assert _keys(store) == [] and store.count_pairs() == 0
    [pair] = store.preference_pairs(PairFilter(include_held_out=True))
    assert (pair.key, pair.split) == (f"edit-{fid}", "held_out")
    assert store.count_pairs(PairFilter(include_held_out=True)) == 1


@pytest.fixture
def mixed(store: Store, question: Question, clock) -> dict[str, str]:
    """One pair of each source, on different days, by different people and versions."""
    clock.jump_to(datetime(2026, 3, 1, 12, tzinfo=UTC))
    edit = store.record_verdict(
        question.b, "edit", annotator="ann", edited_text=EDIT, safety_flags=["hallucinated_fact"]
    )
    clock.jump_to(datetime(2026, 3, 2, 12, tzinfo=UTC))
    cid = store.record_comparison(
        question.a, question.c, "second", annotator="bob", swapped=False, mode="versions",
        safety_flags=["privacy"],
    )  # fmt: skip
    clock.jump_to(datetime(2026, 3, 3, 12, tzinfo=UTC))
    reject = store.record_verdict(question.a, "reject", annotator="cat", reject_reason="unsafe")
    batch, imported = _import_pair(store, "Q?", "good", "bad", "2026-03-04T12:00:00.000000Z")
    return {
        "edit": f"edit-{edit}", "cmp": f"cmp-{cid}", "rej": f"rej-{reject}-{edit}", "imp": f"imp-{imported}",
        "batch": str(batch),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["edit", "cmp", "rej", "imp"]),
        ({"date_from": date(2026, 3, 2)}, ["cmp", "rej", "imp"]),
        ({"date_to": date(2026, 3, 2)}, ["edit", "cmp"]),  # whole day, inclusive
        ({"date_from": "2026-03-02", "date_to": "2026-03-03"}, ["cmp", "rej"]),
        ({"date_to": datetime(2026, 3, 2, 12, tzinfo=UTC)}, ["edit", "cmp"]),
        ({"date_to": "2026-03-02T11:59:59+00:00"}, ["edit"]),
        ({"annotator": "bob"}, ["cmp"]),
        ({"annotator": "cat"}, ["rej"]),  # the reject's annotator, not the edit's
        ({"model_version": "v2"}, ["edit", "rej"]),  # chosen or rejected side
        ({"model_version": "base"}, ["cmp", "rej"]),
        ({"model_version": "v3"}, ["cmp"]),
        ({"sources": ("comparison", "imported")}, ["cmp", "imp"]),
        ({"sources": ()}, []),
        ({"flags": ("privacy",)}, ["cmp"]),
        ({"flags": ("hallucinated_fact", "privacy")}, ["edit", "cmp", "rej"]),  # rej carries the edit's flag
        ({"exclude_flagged": True}, ["imp"]),
        ({"import_batch_ids": ()}, ["edit", "cmp", "rej"]),
        ({"import_batch_ids": (99,)}, ["edit", "cmp", "rej"]),
    ],
)
def test_filters(store: Store, mixed: dict[str, str], filters: dict, expected: list[str]) -> None:
    assert _keys(store, **filters) == [mixed[name] for name in expected]
    assert store.count_pairs(PairFilter(**filters)) == len(expected)


def test_import_batch_filter_selects_batches(store: Store, mixed: dict[str, str]) -> None:
    batch = int(mixed["batch"])
    assert _keys(store, sources=("imported",), import_batch_ids=(batch,)) == [mixed["imp"]]
    assert _keys(store, sources=["imported"], import_batch_ids=[batch]) == [mixed["imp"]]  # lists do too


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"sources": ("edit", "magic")}, "sources"),
        ({"sources": "edit"}, "sources"),
        ({"flags": ("rude",)}, "safety_flags"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"annotator": 3}, "annotator"),
        ({"import_batch_ids": (0,)}, "import_batch_ids"),
    ],
)
def test_bad_filters_are_refused_before_reading(store: Store, filters: dict, field: str) -> None:
    with pytest.raises(StoreValidationError) as info:
        pairs_module.iter_pairs(store.db, PairFilter(**filters))
    assert info.value.field == field


def test_order_is_created_at_then_key(store: Store, question: Question, clock) -> None:
    """Same timestamps sort by key (as text); iter_pairs streams in small batches the same order."""
    moment = datetime(2026, 5, 1, tzinfo=UTC)
    made = []
    for gen in (question.a, question.b, question.c):
        clock.jump_to(moment)
        made.append(store.record_verdict(gen, "edit", annotator="a", edited_text=EDIT))
    clock.jump_to(moment)
    cid = store.record_comparison(question.a, question.b, "first", annotator="a", swapped=False, mode="seeds")
    expected = sorted([f"cmp-{cid}"] + [f"edit-{fid}" for fid in made])
    assert _keys(store) == expected
    with store.exclusive() as db:
        assert [p.key for p in pairs_module.iter_pairs(db, batch_size=1)] == expected


def _plan(store: Store, source: str) -> str:
    sql, params = pairs_module.pairs_sql(source)
    return " | ".join(row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_each_source_is_one_ordered_query(store: Store) -> None:
    """One SQL statement per source, walking indexes: never a reject paired with every accept and filtered."""
    edit, comparison, reject = (_plan(store, name) for name in ("edit", "comparison", "reject"))
    assert "feedback_live_verdict" in edit and "RIGHT PART OF ORDER BY" in edit, edit
    assert "comparisons_live" in comparison and "RIGHT PART OF ORDER BY" in comparison, comparison
    assert "SEARCH bg USING INDEX generations_prompt" in reject, reject
    assert "SEARCH b USING INDEX feedback_generation" in reject, reject


def test_streaming_100k_edit_pairs_is_quick(store: Store) -> None:
    """A quick check, not a benchmark: the figure is printed (run with -s to see it)."""
    n = 100_000
    at = "2026-06-01T00:00:00.000000Z"
    with transaction(store.db) as db:
        for trigger in ("generations_fts_ai", "feedback_fts_ai"):  # the search index is not measured here
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute("INSERT INTO prompts (text, dedup_hash, created_at) VALUES ('Q', 'h', ?)", [at])
        db.conn.executemany(
            "INSERT INTO generations (id, prompt_id, model_version_name, text, created_at) VALUES (?, 1, 'base', ?, ?)",
            ((i, f"original answer {i} " * 8, at) for i in range(1, n + 1)),
        )
        db.conn.executemany(
            "INSERT INTO feedback (id, generation_id, verdict, edited_text, annotator, created_at, updated_at)"
            " VALUES (?, ?, 'edit', ?, 'a', ?, ?)",
            ((i, i, f"edited answer {i} " * 8, f"2026-06-01T00:{i // 6000:02d}:{i % 60:02d}.000000Z", at)
             for i in range(1, n + 1)),
        )  # fmt: skip
    start = time.perf_counter()
    with store.exclusive() as db:
        count = sum(1 for _ in pairs_module.iter_pairs(db))
    elapsed = time.perf_counter() - start
    print(f"\niter_pairs over {n} edit pairs: {elapsed:.2f} s")
    assert count == n == store.count_pairs()
