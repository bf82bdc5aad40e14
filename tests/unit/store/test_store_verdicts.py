"""Verdicts: validation, one transaction per verdict, change / withdraw / undo, the audit trail."""

from __future__ import annotations

import pytest

from medalign_desktop.store import REJECT_REASONS, SAFETY_FLAGS, Store, StoreValidationError
from medalign_desktop.store import verdicts as verdicts_module


def _count(store: Store, table: str) -> int:
    return store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_accept_edit_reject_are_stored(store: Store, make_generation) -> None:
    gen = make_generation()
    accept = store.record_verdict(gen, "accept", annotator="dr a", rating=5, notes="textbook")
    edit = store.record_verdict(
        gen, "edit", annotator="dr b", edited_text="IM adrenaline 0.5 mg, repeat in 5 min."
    )
    reject = store.record_verdict(
        gen, "reject", annotator="dr c", reject_reason="incomplete", reject_note="no dose",
        safety_flags=["missing_red_flag", "unsafe_advice", "missing_red_flag"],
    )  # fmt: skip

    a, e, r = (store.feedback_detail(i) for i in (accept, edit, reject))
    assert (a.verdict, a.rating, a.notes, a.edited_text, a.final_text) == (
        "accept",
        5,
        "textbook",
        None,
        "Intramuscular adrenaline.",
    )
    assert e.edited_text == e.final_text == "IM adrenaline 0.5 mg, repeat in 5 min."
    assert e.original_text == "Intramuscular adrenaline."  # the original is kept
    assert (r.reject_reason, r.reject_note) == ("incomplete", "no dose")
    assert r.safety_flags == ("missing_red_flag", "unsafe_advice")  # sorted, no repeats
    assert r.prompt_text == "What is the first-line treatment of anaphylaxis?"
    assert r.model_version == "base"


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"verdict": "maybe"}, "verdict", "'maybe' is not one of accept, edit, reject"),
        ({"verdict": "edit"}, "edited_text", "is required"),
        ({"verdict": "edit", "edited_text": "   "}, "edited_text", "must not be empty"),
        (
            {"verdict": "edit", "edited_text": " Intramuscular adrenaline.\n"},
            "edited_text",
            "same as the original",
        ),
        ({"verdict": "accept", "edited_text": "x"}, "edited_text", "only allowed with verdict 'edit'"),
        ({"verdict": "reject"}, "reject_reason", "is required when the verdict is 'reject'"),
        ({"verdict": "reject", "reject_reason": "boring"}, "reject_reason", "'boring' is not one of"),
        (
            {"verdict": "accept", "reject_reason": "unsafe"},
            "reject_reason",
            "only allowed with verdict 'reject'",
        ),
        ({"verdict": "accept", "reject_note": "hm"}, "reject_note", "only allowed with verdict 'reject'"),
        ({"verdict": "accept", "rating": 0}, "rating", "from 1 to 5"),
        ({"verdict": "accept", "rating": 6}, "rating", "from 1 to 5"),
        ({"verdict": "accept", "rating": 4.5}, "rating", "from 1 to 5"),
        ({"verdict": "accept", "rating": True}, "rating", "from 1 to 5"),
        ({"verdict": "accept", "safety_flags": ["rude"]}, "safety_flags", "'rude' is not one of"),
        ({"verdict": "accept", "safety_flags": "privacy"}, "safety_flags", "not a single string"),
        ({"verdict": "accept", "annotator": " "}, "annotator", "must not be empty"),
        ({"verdict": "accept", "annotator": None}, "annotator", "is required"),
        ({"verdict": "accept", "notes": 3}, "notes", "must be text"),
        ({"verdict": "accept", "generation_id": 999}, "generation_id", "no generation with id 999"),
        ({"verdict": "accept", "generation_id": "1"}, "generation_id", "positive integer"),
    ],
)
def test_invalid_verdicts_are_refused_before_writing(
    store: Store, make_generation, kwargs, field, fragment
) -> None:
    gen = make_generation()
    kwargs = {"annotator": "dr a", "generation_id": gen, **kwargs}
    with pytest.raises(StoreValidationError) as info:
        store.record_verdict(kwargs.pop("generation_id"), kwargs.pop("verdict"), **kwargs)
    assert info.value.field == field
    assert fragment in info.value.message
    assert str(info.value).startswith(f"{field}: ")
    assert _count(store, "feedback") == _count(store, "audit_log") == _count(store, "feedback_flags") == 0


def test_every_listed_reason_and_flag_is_accepted(store: Store, make_generation) -> None:
    gen = make_generation()
    for reason in REJECT_REASONS:
        store.record_verdict(gen, "reject", annotator="dr a", reject_reason=reason, safety_flags=SAFETY_FLAGS)
    assert _count(store, "feedback") == len(REJECT_REASONS)


def test_a_failure_mid_verdict_writes_nothing(store: Store, make_generation, monkeypatch) -> None:
    """The feedback row is inserted before the audit row; if the audit insert fails, neither remains."""
    gen = make_generation()

    def failing_audit(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(verdicts_module, "_append_audit", failing_audit)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.record_verdict(
            gen, "reject", annotator="dr a", reject_reason="unsafe", safety_flags=["privacy"]
        )
    assert _count(store, "feedback") == _count(store, "feedback_flags") == _count(store, "audit_log") == 0
    assert not store.db.conn.in_transaction
    monkeypatch.undo()
    assert store.record_verdict(gen, "accept", annotator="dr a") == 1  # the store still works


def test_a_failure_mid_change_keeps_the_old_verdict(store: Store, make_generation, monkeypatch) -> None:
    feedback_id = store.record_verdict(
        make_generation(), "accept", annotator="dr a", safety_flags=["privacy"]
    )
    monkeypatch.setattr(verdicts_module, "_append_audit", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        store.change_verdict(
            feedback_id, annotator="dr b", verdict="reject", reject_reason="unsafe", safety_flags=[]
        )
    detail = store.feedback_detail(feedback_id)
    assert (detail.verdict, detail.reject_reason, detail.safety_flags) == ("accept", None, ("privacy",))
    assert len(detail.audit) == 1


def test_audit_trail_of_create_change_withdraw(store: Store, make_generation, clock) -> None:
    feedback_id = store.record_verdict(make_generation(), "accept", annotator="dr a", rating=3)
    assert (
        store.change_verdict(feedback_id, annotator="dr b", verdict="edit", edited_text="Adrenaline IM.")
        is True
    )
    store.withdraw_verdict(feedback_id, annotator="dr c", reason="wrong patient")

    trail = store.audit_trail(feedback_id)
    assert [(e.action, e.annotator) for e in trail] == [
        ("create", "dr a"),
        ("change", "dr b"),
        ("withdraw", "dr c"),
    ]
    create, change, withdraw = trail
    assert create.old is None
    assert create.new == {
        "verdict": "accept", "edited_text": None, "reject_reason": None, "reject_note": None, "rating": 3,
        "safety_flags": [], "notes": None, "withdrawn": False,
    }  # fmt: skip
    assert change.old == create.new
    assert change.new == {**create.new, "verdict": "edit", "edited_text": "Adrenaline IM."}
    assert withdraw.old == change.new
    assert withdraw.new == {**change.new, "withdrawn": True, "withdraw_reason": "wrong patient"}
    assert [e.created_at for e in trail] == sorted(e.created_at for e in trail)

    detail = store.feedback_detail(feedback_id)
    assert detail.withdrawn and detail.annotator == "dr a" and detail.audit == trail
    assert detail.updated_at == withdraw.created_at and detail.created_at == create.created_at


def test_changing_the_verdict_drops_fields_of_the_old_one(store: Store, make_generation) -> None:
    feedback_id = store.record_verdict(
        make_generation(), "reject", annotator="dr a", reject_reason="unsafe", reject_note="dose", rating=1
    )
    store.change_verdict(feedback_id, annotator="dr a", verdict="accept")
    detail = store.feedback_detail(feedback_id)
    assert (detail.verdict, detail.reject_reason, detail.reject_note, detail.rating) == (
        "accept",
        None,
        None,
        1,
    )


def test_change_validates_the_merged_verdict(store: Store, make_generation) -> None:
    feedback_id = store.record_verdict(make_generation(), "accept", annotator="dr a")
    with pytest.raises(StoreValidationError) as info:
        store.change_verdict(feedback_id, annotator="dr a", verdict="edit")
    assert info.value.field == "edited_text"
    with pytest.raises(StoreValidationError) as info:
        store.change_verdict(feedback_id, annotator="dr a", colour="red")
    assert info.value.field == "colour"
    with pytest.raises(StoreValidationError) as info:
        store.change_verdict(12345, annotator="dr a", rating=2)
    assert (info.value.field, info.value.message) == ("feedback_id", "no verdict with id 12345")
    assert len(store.audit_trail(feedback_id)) == 1


def test_a_change_that_changes_nothing_is_not_audited(store: Store, make_generation) -> None:
    feedback_id = store.record_verdict(
        make_generation(), "accept", annotator="dr a", safety_flags=["privacy"]
    )
    assert (
        store.change_verdict(feedback_id, annotator="dr a", verdict="accept", safety_flags=("privacy",))
        is False
    )
    assert len(store.audit_trail(feedback_id)) == 1


def test_withdrawn_verdicts_cannot_be_changed_or_withdrawn_again(store: Store, make_generation) -> None:
    feedback_id = store.record_verdict(make_generation(), "accept", annotator="dr a")
    store.withdraw_verdict(feedback_id, annotator="dr a")
    with pytest.raises(StoreValidationError, match="withdrawn and cannot be changed"):
        store.change_verdict(feedback_id, annotator="dr a", rating=2)
    with pytest.raises(StoreValidationError, match="already withdrawn"):
        store.withdraw_verdict(feedback_id, annotator="dr a")
    assert len(store.audit_trail(feedback_id)) == 2


def test_undo_withdraws_the_annotators_latest_live_verdict(store: Store, make_generation) -> None:
    gen = make_generation()
    first = store.record_verdict(gen, "accept", annotator="dr a")
    second = store.record_verdict(gen, "reject", annotator="dr a", reject_reason="off_topic")
    other = store.record_verdict(gen, "accept", annotator="dr b")

    assert store.undo_last_verdict("dr a") == second
    assert store.undo_last_verdict("dr a") == first
    assert store.undo_last_verdict("dr a") is None
    assert store.undo_last_verdict("nobody") is None
    assert not store.feedback_detail(other).withdrawn
    trail = store.audit_trail(second)
    assert [e.action for e in trail] == ["create", "undo"]
    assert trail[-1].new["withdrawn"] is True and trail[-1].annotator == "dr a"


def test_audit_trail_of_unknown_verdict(store: Store) -> None:
    with pytest.raises(StoreValidationError) as info:
        store.audit_trail(7)
    assert info.value.field == "feedback_id"
