"""Comparisons: a clinician's choice between two answers to the same question.

Each write is ONE transaction holding the comparison row and its safety flags. Comparisons are never
deleted, only withdrawn; the preference pairs they give are derived on reading (:mod:`pairs`), so a
withdrawal removes the pair at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.db import insert, query_one, require_row, transaction
from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.rows import COMPARISON_CHOICES, Comparison
from medalign_desktop.store.validation import check_choice, check_flags, check_id, check_text
from medalign_desktop.store.vocab import SAFETY_FLAGS

COMPARISON_MODES: tuple[str, ...] = ("seeds", "versions")
WINNING_CHOICES: tuple[str, ...] = ("first", "second")


def _generations(db: Database, first_id: int, second_id: int) -> tuple[int, str, str]:
    """(prompt id, first text, second text); both must exist and answer the same question."""
    texts: dict[int, tuple[int, str]] = {}
    for field, generation_id in (("first_generation_id", first_id), ("second_generation_id", second_id)):
        row = require_row(db, "generations", generation_id, field, "prompt_id, text")
        texts[generation_id] = (row["prompt_id"], row["text"])
    (first_prompt, first_text), (second_prompt, second_text) = texts[first_id], texts[second_id]
    if first_prompt != second_prompt:
        raise StoreValidationError(
            "second_generation_id",
            f"generation {second_id} answers question {second_prompt}, "
            f"but generation {first_id} answers question {first_prompt}; compare answers to one question",
        )
    return first_prompt, first_text, second_text


def _check_edit(edited_text: Any, choice: str, winner_text: str | None) -> str | None:
    edited = check_text("edited_text", edited_text, required=False)
    if edited is None:
        return None
    if choice not in WINNING_CHOICES:
        raise StoreValidationError(
            "edited_text", f"is only allowed when one answer wins (first or second), not '{choice}'"
        )
    if not edited.strip():
        raise StoreValidationError("edited_text", "must not be empty")
    if winner_text is not None and edited.strip() == winner_text.strip():
        raise StoreValidationError("edited_text", "is the same as the chosen answer; leave it out instead")
    return edited


def record_comparison(
    db: Database,
    clock: Callable[[], str],
    first_generation_id: Any,
    second_generation_id: Any,
    choice: Any,
    *,
    annotator: Any,
    swapped: Any,
    mode: Any,
    edited_text: Any = None,
    safety_flags: Iterable[str] = (),
    notes: Any = None,
) -> int:
    """Store one comparison and its flags in one transaction; return its id."""
    check_id("first_generation_id", first_generation_id)
    check_id("second_generation_id", second_generation_id)
    if first_generation_id == second_generation_id:
        raise StoreValidationError("second_generation_id", "must differ from first_generation_id")
    choice = check_choice("choice", choice, COMPARISON_CHOICES)
    annotator = check_text("annotator", annotator)
    if not isinstance(swapped, bool):
        raise StoreValidationError("swapped", f"must be True or False, got {swapped!r}")
    mode = check_choice("mode", mode, COMPARISON_MODES)
    flags = check_flags(safety_flags, SAFETY_FLAGS)
    notes = check_text("notes", notes, required=False)
    _check_edit(edited_text, choice, None)  # type and choice checks before touching the database
    with transaction(db):
        prompt_id, first_text, second_text = _generations(db, first_generation_id, second_generation_id)
        winner = {"first": first_text, "second": second_text}.get(choice)
        now = clock()
        comparison_id = insert(
            db,
            "comparisons",
            {
                "prompt_id": prompt_id,
                "first_generation_id": first_generation_id,
                "second_generation_id": second_generation_id,
                "swapped": int(swapped),
                "mode": mode,
                "choice": choice,
                "edited_text": _check_edit(edited_text, choice, winner),
                "notes": notes,
                "annotator": annotator,
                "created_at": now,
                "updated_at": now,
                "withdrawn": 0,
            },
        )
        for flag in flags:
            db.execute(
                "INSERT INTO comparison_flags (comparison_id, flag) VALUES (?, ?)", [comparison_id, flag]
            )
    return comparison_id


def withdraw_comparison(
    db: Database, clock: Callable[[], str], comparison_id: Any, *, annotator: Any
) -> None:
    """Withdraw a live comparison (its pairs disappear); who withdrew it is kept."""
    check_id("comparison_id", comparison_id)
    annotator = check_text("annotator", annotator)
    with transaction(db):
        if require_row(db, "comparisons", comparison_id, "comparison_id", "withdrawn")["withdrawn"]:
            raise StoreValidationError("comparison_id", f"comparison {comparison_id} is already withdrawn")
        db.execute(
            "UPDATE comparisons SET withdrawn = 1, withdrawn_by = ?, updated_at = ? WHERE id = ?",
            [annotator, clock(), comparison_id],
        )


_SELECT = """
    SELECT c.*, (SELECT group_concat(flag, ',') FROM comparison_flags x WHERE x.comparison_id = c.id) AS flags
    FROM comparisons c
"""


def get_comparison(db: Database, comparison_id: Any) -> Comparison:
    check_id("comparison_id", comparison_id)
    row = query_one(db, _SELECT + " WHERE c.id = ?", [comparison_id])
    if row is None:
        raise StoreValidationError("comparison_id", f"no comparison with id {comparison_id}")
    return Comparison.from_row(row)


def list_comparisons(
    db: Database, *, prompt_id: Any = None, include_withdrawn: bool = False
) -> list[Comparison]:
    """Comparisons oldest first, of one question if ``prompt_id`` is given; live ones unless asked."""
    clauses, params = [], []
    if prompt_id is not None:
        clauses.append("c.prompt_id = ?")
        params.append(check_id("prompt_id", prompt_id))
    if not include_withdrawn:
        clauses.append("c.withdrawn = 0")
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return [Comparison.from_row(row) for row in db.query(f"{_SELECT} {where} ORDER BY c.id", params)]
