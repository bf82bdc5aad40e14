"""Typed store operations: each write says what it changed, the pages refresh from that, and writes made
by another process (``medalign import`` while the app runs) reach the status bar and the queue."""

from __future__ import annotations

import inspect

import pytest

from medalign_desktop import cli
from medalign_desktop.store import Store
from medalign_desktop.ui.core import operations as ops
from medalign_desktop.ui.core.operations import Change
from medalign_desktop.ui.core.services import StoreService
from tests.gui.conftest import QUESTIONS, run, wait_answer, write_questions

WRITE_PREFIXES = ("add_", "record_", "change_", "withdraw_", "undo_", "set_", "hold_out_", "delete_", "create_", "update_",
                  "reopen_", "store_")  # fmt: skip
NEW_QUESTIONS = ["Which antibiotic is first-line for community-acquired pneumonia in adults?",
                 "What is the target HbA1c for most adults with type 2 diabetes?"]  # fmt: skip


def test_every_operation_is_a_store_function_and_every_write_says_what_it_changes():
    operations = ops.all_operations()
    assert len(operations) > 30
    for name, op in operations.items():
        assert callable(op.fn) and next(iter(inspect.signature(op.fn).parameters)) in {"self", "store"}, name
        is_write = op.fn.__name__.startswith(WRITE_PREFIXES)
        assert op.writes == is_write, f"{name}: a {'write' if is_write else 'query'} must say so"
    assert Store.record_verdict.changes == Change.VERDICTS and Store.add_prompt.changes == Change.QUESTIONS
    with pytest.raises(ValueError, match="must say what it changes"):
        ops.write(Store.record_verdict, Change.NONE)


def test_a_job_reports_its_own_outcome():
    assert ops.after_job("evaluate") & Change.EVALUATIONS and ops.after_job("score") & Change.SCORES
    assert ops.after_job("hitl") == Change.JOBS | Change.VERSIONS


def test_a_write_emits_its_change_and_a_query_emits_nothing(qtbot, qt_loop, db_path):
    service = StoreService(db_path)
    seen: list[Change] = []
    service.changed.connect(seen.append)
    try:
        run(qtbot, qt_loop.create_task(service.open()))
        prompt_id = run(qtbot, qt_loop.create_task(service.run(Store.add_prompt, "A typed question?")))
        assert seen == [Change.QUESTIONS]
        assert run(qtbot, qt_loop.create_task(service.run(Store.get_prompt, prompt_id))).text == "A typed question?"
        run(qtbot, qt_loop.create_task(service.run(Store.stats)))
        assert seen == [Change.QUESTIONS]  # reads change nothing
    finally:
        service.shutdown()


def _import_from_the_command_line(tmp_path, db_path) -> None:
    """What ``medalign import FILE --db DB`` does, on its own connection (as a second process would)."""
    questions = write_questions(tmp_path / "more.jsonl", NEW_QUESTIONS)
    assert cli.main(["import", str(questions), "--db", str(db_path)]) == 0


def test_an_import_on_the_command_line_reaches_the_status_bar_and_the_queue(
    qtbot, make_window, seeded_db, tmp_path
):
    window = make_window(db=seeded_db)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    assert "5 questions" in window.status.database.text() and len(page.cursor.ids) == 5
    seen: list[Change] = []
    window.ctx.store.changed.connect(seen.append)

    _import_from_the_command_line(tmp_path, seeded_db)

    qtbot.waitUntil(lambda: "7 questions" in window.status.database.text(), timeout=8000)
    qtbot.waitUntil(lambda: len(page.cursor.ids) == 7, timeout=5000)
    assert page.prompt.text == QUESTIONS[0] and page.position.text() == "Question 1 of 7"  # not moved
    assert any(change & Change.EXTERNAL for change in seen)


def test_an_empty_queue_shows_a_question_imported_elsewhere(qtbot, make_window, db_path, tmp_path):
    window = make_window(db=db_path)
    page = window.annotate
    qtbot.waitUntil(lambda: page.position.text() == "No questions in the queue", timeout=10000)
    _import_from_the_command_line(tmp_path, db_path)
    wait_answer(qtbot, page, NEW_QUESTIONS[0], timeout=20000)
    assert page.position.text() == "Question 1 of 2"
