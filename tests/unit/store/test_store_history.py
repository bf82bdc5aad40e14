"""The History page's queries: filters, search, paging, counts, details, status-bar numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from medalign_desktop.store import Store, StoreValidationError


@pytest.fixture
def filled(store: Store, clock) -> dict[str, int]:
    """Four verdicts on 2026-01-01 (the clock ticks a second per write: the edit is at 00:00:05 UTC),
    one of them withdrawn, and one more on 2026-01-03 at noon UTC."""
    p1 = store.add_prompt("Chest pain radiating to the left arm: what next?")
    p2 = store.add_prompt("Dose of paracetamol for an adult?")
    g1 = store.add_generation(p1, "Call an ambulance and give aspirin.", model_version="base", settings={})
    g2 = store.add_generation(p2, "Up to 4 g per day.", model_version="hitl-1", settings={})
    ids = {
        "accept": store.record_verdict(g1, "accept", annotator="dr a", rating=5),
        "edit": store.record_verdict(
            g2, "edit", annotator="dr b", edited_text="1 g every 6 hours, max 4 g a day."
        ),
        "reject": store.record_verdict(
            g1, "reject", annotator="dr a", reject_reason="unsafe", safety_flags=["unsafe_advice", "privacy"]
        ),
        "withdrawn": store.record_verdict(g2, "accept", annotator="dr c"),
    }
    store.withdraw_verdict(ids["withdrawn"], annotator="dr c")
    clock.jump_to(datetime(2026, 1, 3, 12, tzinfo=UTC))
    ids["later"] = store.record_verdict(g2, "accept", annotator="dr b", safety_flags=["hallucinated_fact"])
    return ids


def _ids(rows) -> list[int]:
    return [row.feedback_id for row in rows]


def test_newest_first_without_withdrawn(store: Store, filled) -> None:
    rows = store.history()
    assert _ids(rows) == [filled["later"], filled["reject"], filled["edit"], filled["accept"]]
    assert store.history_count() == 4
    reject = rows[1]
    assert (reject.verdict, reject.annotator, reject.model_version, reject.flags, reject.withdrawn) == (
        "reject",
        "dr a",
        "base",
        ("privacy", "unsafe_advice"),
        False,
    )
    assert reject.prompt_excerpt == "Chest pain radiating to the left arm: what next?"
    assert reject.answer_excerpt == "Call an ambulance and give aspirin."
    assert rows[2].edited_excerpt == "1 g every 6 hours, max 4 g a day."
    assert rows[3].rating == 5 and rows[3].edited_excerpt is None


def test_include_withdrawn(store: Store, filled) -> None:
    rows = store.history(include_withdrawn=True)
    assert len(rows) == store.history_count(include_withdrawn=True) == 5
    assert [r.withdrawn for r in rows if r.feedback_id == filled["withdrawn"]] == [True]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"verdict": "accept"}, ["later", "accept"]),
        ({"verdict": "edit"}, ["edit"]),
        ({"annotator": "dr a"}, ["reject", "accept"]),
        ({"annotator": "dr c"}, []),
        ({"annotator": "dr c", "include_withdrawn": True}, ["withdrawn"]),
        ({"model_version": "hitl-1"}, ["later", "edit"]),
        ({"flag": "privacy"}, ["reject"]),
        ({"flag": "hallucinated_fact"}, ["later"]),
        ({"flag": "missing_red_flag"}, []),
        ({"search": "chest pain"}, ["reject", "accept"]),  # question text, case-insensitive
        ({"search": "AMBULANCE"}, ["reject", "accept"]),  # original answer
        ({"search": "every 6 hours"}, ["edit"]),  # edited answer
        ({"search": "paracetamol", "verdict": "accept"}, ["later"]),
        ({"search": "4 g"}, ["later", "edit"]),
        ({"search": " 6 "}, ["edit"]),  # shorter than a trigram: LIKE fallback
        ({"search": "%"}, []),  # LIKE wildcards are literal
        ({"search": '"quoted"'}, []),  # FTS syntax is literal too
        ({"search": "   "}, ["later", "reject", "edit", "accept"]),
        ({"date_from": date(2026, 1, 2)}, ["later"]),
        ({"date_to": date(2026, 1, 1)}, ["reject", "edit", "accept"]),  # whole day, inclusive
        ({"date_to": "2026-01-01"}, ["reject", "edit", "accept"]),
        ({"date_from": "2026-01-01T00:00:05Z", "date_to": "2026-01-01T00:00:05Z"}, ["edit"]),
        ({"date_from": datetime(2026, 1, 3, 13, tzinfo=timezone(timedelta(hours=1)))}, ["later"]),
        ({"date_from": datetime(2026, 1, 3, 13, 0, 1, tzinfo=timezone(timedelta(hours=1)))}, []),
        (
            {"annotator": "dr a", "verdict": "reject", "model_version": "base", "flag": "unsafe_advice"},
            ["reject"],
        ),
    ],
)
def test_filters(store: Store, filled, filters, expected) -> None:
    expected_ids = [filled[name] for name in expected]
    assert _ids(store.history(**filters)) == expected_ids
    assert store.history_count(**filters) == len(expected_ids)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"verdict": "yes"}, "verdict"),
        ({"flag": "bad"}, "flag"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_to": 20260101}, "date_to"),
        ({"limit": -1}, "limit"),
        ({"offset": "2"}, "offset"),
    ],
)
def test_bad_filters(store: Store, filters, field) -> None:
    with pytest.raises(StoreValidationError) as info:
        store.history(**filters)
    assert info.value.field == field


def test_paging(store: Store, make_generation) -> None:
    gen = make_generation()
    ids = [store.record_verdict(gen, "accept", annotator="dr a") for _ in range(7)]
    newest_first = ids[::-1]
    assert _ids(store.history(limit=3)) == newest_first[:3]
    assert _ids(store.history(limit=3, offset=3)) == newest_first[3:6]
    assert _ids(store.history(limit=3, offset=6)) == newest_first[6:]
    assert store.history(limit=3, offset=9) == []


def test_excerpts_are_one_short_line(store: Store) -> None:
    prompt = store.add_prompt("line one\n\n  line two " + "x" * 1000)
    gen = store.add_generation(prompt, "answer", settings={})
    store.record_verdict(gen, "accept", annotator="dr a")
    row = store.history()[0]
    assert row.prompt_excerpt.startswith("line one line two x")
    assert len(row.prompt_excerpt) == 160 and row.prompt_excerpt.endswith("…")


@pytest.mark.parametrize("analyze", [False, True])
@pytest.mark.parametrize(
    "filters", [{}, {"annotator": "dr a"}, {"verdict": "edit"}, {"include_withdrawn": True}]
)
def test_first_page_walks_newest_first_without_sorting(store: Store, filled, filters, analyze) -> None:
    """No sort of every live verdict for a page: the query walks ids newest first and stops early,
    with or without the statistics PRAGMA optimize gathers."""
    from medalign_desktop.store.history import build_filters, page_sql

    if analyze:
        store.db.execute("ANALYZE")
    where = build_filters(**filters)
    plan = store.db.execute(
        "EXPLAIN QUERY PLAN " + page_sql(where), {**where.params, "limit": 200, "offset": 0}
    )
    assert not [row[3] for row in plan if "TEMP B-TREE FOR ORDER BY" in row[3]]


def test_annotators_and_model_version_names(store: Store, filled) -> None:
    store.add_model_version("sft-1", "sft")
    assert store.annotators() == ["dr a", "dr b", "dr c"]
    assert store.model_version_names() == ["base", "hitl-1", "sft-1"]


def test_stats(store: Store, filled) -> None:
    assert store.stats() == {
        "prompts": 2, "prompts_held_out": 0, "generations": 2, "withdrawn": 1,
        "accept": 2, "edit": 1, "reject": 1, "verdicts": 4, "samples_since_last_retrain": 3,
    }  # fmt: skip


def test_samples_since_last_retrain(store: Store, make_generation, clock) -> None:
    gen = make_generation()
    store.record_verdict(gen, "accept", annotator="dr a")
    store.record_verdict(gen, "edit", annotator="dr a", edited_text="better")
    store.record_verdict(gen, "reject", annotator="dr a", reject_reason="other")  # rejects do not count
    assert store.samples_since_last_retrain() == 2

    job = store.create_job("hitl", {"lr": 1e-4})
    store.set_job_state(job, "running")
    during = store.record_verdict(gen, "accept", annotator="dr a")  # after start, before finish
    store.set_job_state(job, "succeeded")
    assert store.samples_since_last_retrain() == 0

    failed = store.create_job("hitl", {})
    store.set_job_state(failed, "running")
    other_kind = store.create_job("dpo", {})
    store.set_job_state(other_kind, "running")
    after = store.record_verdict(gen, "accept", annotator="dr a")
    store.record_verdict(gen, "edit", annotator="dr a", edited_text="best")
    store.set_job_state(failed, "failed", error="out of memory")
    store.set_job_state(other_kind, "succeeded")  # other kinds do not reset the count
    assert store.samples_since_last_retrain() == 2
    store.withdraw_verdict(after, annotator="dr a")
    assert store.samples_since_last_retrain() == 1
    assert during  # recorded before the job finished, so not counted


def test_feedback_detail_unknown(store: Store) -> None:
    with pytest.raises(StoreValidationError, match="no verdict with id 3"):
        store.feedback_detail(3)
