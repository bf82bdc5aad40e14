"""Verdicts (feedback) and their audit trail.

Every write here is ONE transaction holding the feedback row, its safety flags and its audit row, so a
verdict is either fully saved (and audited) or not at all. Verdicts are never deleted: they are withdrawn,
and the audit log (append-only, enforced by triggers) keeps every state a verdict went through as full
JSON snapshots, with who did it and when.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.db import insert, query_value, require_row, transaction
from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.rows import AuditEntry
from medalign_desktop.store.validation import (
    check_choice,
    check_flags,
    check_id,
    check_rating,
    check_text,
)
from medalign_desktop.store.vocab import REJECT_REASONS, SAFETY_FLAGS, VERDICTS

CHANGEABLE_FIELDS = (
    "verdict",
    "edited_text",
    "reject_reason",
    "reject_note",
    "rating",
    "safety_flags",
    "notes",
)
_EDIT_ONLY = ("edited_text",)
_REJECT_ONLY = ("reject_reason", "reject_note")


def validate_verdict(values: dict[str, Any], original_text: str) -> dict[str, Any]:
    """Check one verdict's fields together (they depend on the verdict) and return them normalised."""
    verdict = check_choice("verdict", values.get("verdict"), VERDICTS)
    out: dict[str, Any] = {"verdict": verdict}
    if verdict == "edit":
        edited = check_text("edited_text", values.get("edited_text"))
        if edited.strip() == original_text.strip():
            raise StoreValidationError(
                "edited_text", "is the same as the original answer; use 'accept' instead"
            )
        out["edited_text"] = edited
    else:
        _refuse_unless(values, _EDIT_ONLY, verdict, "edit")
        out["edited_text"] = None
    if verdict == "reject":
        if values.get("reject_reason") is None:
            raise StoreValidationError("reject_reason", "is required when the verdict is 'reject'")
        out["reject_reason"] = check_choice("reject_reason", values["reject_reason"], REJECT_REASONS)
        out["reject_note"] = check_text("reject_note", values.get("reject_note"), required=False)
    else:
        _refuse_unless(values, _REJECT_ONLY, verdict, "reject")
        out["reject_reason"] = out["reject_note"] = None
    out["rating"] = check_rating(values.get("rating"))
    out["safety_flags"] = list(check_flags(values.get("safety_flags"), SAFETY_FLAGS))
    out["notes"] = check_text("notes", values.get("notes"), required=False)
    return out


def _refuse_unless(values: dict[str, Any], fields: tuple[str, ...], verdict: str, needed: str) -> None:
    for name in fields:
        if values.get(name) is not None:
            raise StoreValidationError(name, f"is only allowed with verdict '{needed}', not '{verdict}'")


def _generation_text(db: Database, generation_id: int) -> str:
    return require_row(db, "generations", generation_id, "generation_id", "text")["text"]


def _append_audit(
    db: Database, feedback_id: int, action: str, old: dict | None, new: dict | None, annotator: str, at: str
) -> int:
    """The only writer of audit_log (a separate function so tests can make it fail mid-transaction)."""
    dump = lambda value: None if value is None else json.dumps(value, ensure_ascii=False)  # noqa: E731
    return insert(
        db,
        "audit_log",
        {
            "feedback_id": feedback_id,
            "action": action,
            "old_json": dump(old),
            "new_json": dump(new),
            "annotator": annotator,
            "created_at": at,
        },
    )


def _write_flags(db: Database, feedback_id: int, flags: list[str]) -> None:
    db.execute("DELETE FROM feedback_flags WHERE feedback_id = ?", [feedback_id])
    for flag in flags:
        db.execute("INSERT INTO feedback_flags (feedback_id, flag) VALUES (?, ?)", [feedback_id, flag])


def snapshot(db: Database, feedback_id: int) -> tuple[dict[str, Any], int]:
    """The verdict's current fields as stored (the audit's before/after shape) and its generation id."""
    row = require_row(db, "feedback", feedback_id, "feedback_id")
    flags = [
        r[0]
        for r in db.execute(
            "SELECT flag FROM feedback_flags WHERE feedback_id = ? ORDER BY flag", [feedback_id]
        )
    ]
    state = {name: row[name] for name in CHANGEABLE_FIELDS if name != "safety_flags"}
    state["safety_flags"] = flags
    state["withdrawn"] = bool(row["withdrawn"])
    return state, row["generation_id"]


def record_verdict(
    db: Database, clock: Callable[[], str], generation_id: Any, verdict: Any, *, annotator: Any, **fields: Any
) -> int:
    check_id("generation_id", generation_id)
    annotator = check_text("annotator", annotator)
    with transaction(db):
        values = validate_verdict({"verdict": verdict, **fields}, _generation_text(db, generation_id))
        now = clock()
        row = {k: v for k, v in values.items() if k != "safety_flags"}
        row.update(
            generation_id=generation_id, annotator=annotator, created_at=now, updated_at=now, withdrawn=0
        )
        feedback_id = insert(db, "feedback", row)
        _write_flags(db, feedback_id, values["safety_flags"])
        _append_audit(db, feedback_id, "create", None, {**values, "withdrawn": False}, annotator, now)
    return feedback_id


def change_verdict(
    db: Database, clock: Callable[[], str], feedback_id: Any, *, annotator: Any, **fields: Any
) -> bool:
    """Apply a correction; return False (and write nothing) when nothing actually changes."""
    check_id("feedback_id", feedback_id)
    annotator = check_text("annotator", annotator)
    for name in fields:
        if name not in CHANGEABLE_FIELDS:
            raise StoreValidationError(
                name, f"cannot be changed (changeable: {', '.join(CHANGEABLE_FIELDS)})"
            )
    with transaction(db):
        old, generation_id = snapshot(db, feedback_id)
        if old["withdrawn"]:
            raise StoreValidationError(
                "feedback_id", f"verdict {feedback_id} is withdrawn and cannot be changed"
            )
        merged = {k: v for k, v in old.items() if k != "withdrawn"}
        if fields.get("verdict", old["verdict"]) != old["verdict"]:
            # Fields that belonged to the old verdict do not carry over unless given again.
            for name in _EDIT_ONLY + _REJECT_ONLY:
                merged[name] = None
        merged.update(fields)
        new = validate_verdict(merged, _generation_text(db, generation_id))
        if {**new, "withdrawn": False} == old:
            return False
        now = clock()
        assignments = ", ".join(f"{k} = ?" for k in new if k != "safety_flags")
        params = [v for k, v in new.items() if k != "safety_flags"] + [now, feedback_id]
        db.execute(f"UPDATE feedback SET {assignments}, updated_at = ? WHERE id = ?", params)
        _write_flags(db, feedback_id, new["safety_flags"])
        _append_audit(db, feedback_id, "change", old, {**new, "withdrawn": False}, annotator, now)
    return True


def withdraw_verdict(
    db: Database,
    clock: Callable[[], str],
    feedback_id: Any,
    *,
    annotator: Any,
    reason: Any = None,
    action: str = "withdraw",
) -> None:
    check_id("feedback_id", feedback_id)
    annotator = check_text("annotator", annotator)
    reason = check_text("reason", reason, required=False)
    with transaction(db):
        old, _ = snapshot(db, feedback_id)
        if old["withdrawn"]:
            raise StoreValidationError("feedback_id", f"verdict {feedback_id} is already withdrawn")
        now = clock()
        db.execute("UPDATE feedback SET withdrawn = 1, updated_at = ? WHERE id = ?", [now, feedback_id])
        new = {**old, "withdrawn": True, "withdraw_reason": reason}
        _append_audit(db, feedback_id, action, old, new, annotator, now)


def undo_last_verdict(db: Database, clock: Callable[[], str], annotator: Any) -> int | None:
    """Withdraw (audited as 'undo') the annotator's most recent live verdict; None if there is none."""
    annotator = check_text("annotator", annotator)
    with transaction(db):
        feedback_id = query_value(
            db, "SELECT max(id) FROM feedback WHERE annotator = ? AND withdrawn = 0", [annotator]
        )
        if feedback_id is None:
            return None
        withdraw_verdict(db, clock, feedback_id, annotator=annotator, reason="undo", action="undo")
    return int(feedback_id)


def audit_trail(db: Database, feedback_id: Any) -> list[AuditEntry]:
    check_id("feedback_id", feedback_id)
    require_row(db, "feedback", feedback_id, "feedback_id", "id")
    rows = db.query("SELECT * FROM audit_log WHERE feedback_id = ? ORDER BY id", [feedback_id])
    return [AuditEntry.from_row(row) for row in rows]
