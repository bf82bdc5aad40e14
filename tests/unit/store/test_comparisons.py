"""Comparisons: validation, one transaction each, reading back, withdrawal."""

from __future__ import annotations

import pytest

from medalign_desktop.store import Store, StoreValidationError

QUESTION = "First-line treatment of anaphylaxis?"


@pytest.fixture
def two_answers(store: Store, clock) -> tuple[int, int]:
    prompt_id = store.add_prompt(QUESTION)
    first = store.add_generation(prompt_id, "IM adrenaline.", model_version="base", settings={"seed": 1})
    second = store.add_generation(prompt_id, "Oral antihistamine.", model_version="v2", settings={"seed": 2})
    return first, second


def _count(store: Store, table: str) -> int:
    return store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_comparison_is_stored_and_read_back(store: Store, two_answers) -> None:
    first, second = two_answers
    comparison_id = store.record_comparison(
        first, second, "first", annotator="dr a", swapped=True, mode="versions",
        edited_text="IM adrenaline 0.5 mg.", safety_flags=["unsafe_advice", "privacy", "privacy"], notes="ok",
    )  # fmt: skip
    got = store.get_comparison(comparison_id)
    assert (got.first_generation_id, got.second_generation_id, got.swapped, got.mode) == (
        first, second, True, "versions",
    )  # fmt: skip
    assert (got.choice, got.edited_text, got.notes, got.annotator) == (
        "first", "IM adrenaline 0.5 mg.", "ok", "dr a",
    )  # fmt: skip
    assert got.safety_flags == ("privacy", "unsafe_advice")
    assert got.prompt_id == store.get_generation(first).prompt_id
    assert got.created_at == "2026-01-01T00:00:03.000000Z" and not got.withdrawn


@pytest.mark.parametrize("choice", ["second", "tie", "both_bad"])
def test_every_choice_is_accepted(store: Store, two_answers, choice: str) -> None:
    comparison_id = store.record_comparison(*two_answers, choice, annotator="a", swapped=False, mode="seeds")
    assert store.get_comparison(comparison_id).choice == choice


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"choice": "maybe"}, "choice", "'maybe' is not one of first, second, tie, both_bad"),
        ({"mode": "random"}, "mode", "'random' is not one of seeds, versions"),
        ({"swapped": 1}, "swapped", "must be True or False"),
        ({"annotator": " "}, "annotator", "must not be empty"),
        ({"choice": "tie", "edited_text": "x"}, "edited_text", "only allowed when one answer wins"),
        ({"edited_text": "  "}, "edited_text", "must not be empty"),
        ({"edited_text": " IM adrenaline.\n"}, "edited_text", "same as the chosen answer"),
        ({"choice": "second", "edited_text": "Oral antihistamine."}, "edited_text", "same as the chosen"),
        ({"safety_flags": ["rude"]}, "safety_flags", "'rude' is not one of"),
        ({"notes": 3}, "notes", "must be text"),
    ],
)
def test_invalid_input_is_refused_and_nothing_written(store: Store, two_answers, kwargs, field, fragment):
    args = {"choice": "first", "annotator": "dr a", "swapped": False, "mode": "seeds", **kwargs}
    with pytest.raises(StoreValidationError) as info:
        store.record_comparison(*two_answers, args.pop("choice"), **args)
    assert info.value.field == field and fragment in str(info.value)
    assert _count(store, "comparisons") == _count(store, "comparison_flags") == 0


def test_generations_must_exist_differ_and_share_the_question(store: Store, two_answers) -> None:
    first, _ = two_answers
    other_prompt = store.add_prompt("Another question?")
    elsewhere = store.add_generation(other_prompt, "Answer elsewhere.", settings={})
    common = {"annotator": "a", "swapped": False, "mode": "seeds"}
    with pytest.raises(StoreValidationError, match="no generation with id 99") as info:
        store.record_comparison(first, 99, "first", **common)
    assert info.value.field == "second_generation_id"
    with pytest.raises(StoreValidationError, match="must differ"):
        store.record_comparison(first, first, "first", **common)
    with pytest.raises(StoreValidationError, match="compare answers to one question"):
        store.record_comparison(first, elsewhere, "first", **common)
    with pytest.raises(StoreValidationError, match="positive integer id"):
        store.record_comparison("1", first, "first", **common)
    assert _count(store, "comparisons") == 0


def test_flags_failure_rolls_back_the_comparison(store: Store, two_answers, monkeypatch) -> None:
    """The row and its flags are one transaction: a failure while writing flags leaves nothing."""
    store.db.execute(
        "CREATE TRIGGER no_privacy BEFORE INSERT ON comparison_flags WHEN new.flag = 'privacy'"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(Exception, match="refused"):
        store.record_comparison(
            *two_answers, "first", annotator="a", swapped=False, mode="seeds", safety_flags=["privacy"]
        )
    assert _count(store, "comparisons") == 0


def test_withdraw_and_list(store: Store, two_answers) -> None:
    first, second = two_answers
    kept = store.record_comparison(first, second, "tie", annotator="a", swapped=False, mode="seeds")
    gone = store.record_comparison(second, first, "first", annotator="b", swapped=True, mode="seeds")
    other = store.add_prompt("Other?")
    g3 = store.add_generation(other, "x", settings={})
    g4 = store.add_generation(other, "y", settings={})
    elsewhere = store.record_comparison(g3, g4, "second", annotator="a", swapped=False, mode="seeds")

    store.withdraw_comparison(gone, annotator="c")
    assert store.get_comparison(gone).withdrawn
    assert store.db.execute("SELECT withdrawn_by FROM comparisons WHERE id = ?", [gone]).fetchone() == ("c",)
    prompt_id = store.get_generation(first).prompt_id
    assert [c.id for c in store.list_comparisons(prompt_id=prompt_id)] == [kept]
    assert [c.id for c in store.list_comparisons(prompt_id=prompt_id, include_withdrawn=True)] == [kept, gone]
    assert [c.id for c in store.list_comparisons()] == [kept, elsewhere]
    with pytest.raises(StoreValidationError, match="already withdrawn"):
        store.withdraw_comparison(gone, annotator="c")
    with pytest.raises(StoreValidationError, match="no comparison with id 42"):
        store.withdraw_comparison(42, annotator="c")
    with pytest.raises(StoreValidationError, match="no comparison with id 42"):
        store.get_comparison(42)
