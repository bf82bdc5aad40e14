"""A verdict saved while the database is busy is queued, retried, stored exactly once; nothing is lost.

The store is made to refuse ``record_verdict`` with a lock error a few times (as after its own retries,
while an import holds the write lock); the page says "Saving…", lets the clinician move on, and says
"Saved" once the verdict is stored. Closing the window meanwhile waits for it.
"""

from __future__ import annotations

import asyncio
import sqlite3

from PySide6.QtCore import Qt

from medalign_desktop.store import Store, StoreError
from medalign_desktop.ui.core.saving_queue import BUSY_TEXT, SAVED_TEXT, is_busy_error
from tests.gui.conftest import ANNOTATOR, QUESTIONS, wait_answer


def refuse(window, name: str, times: int, error: Exception) -> list[str]:
    """Make the store service refuse the write ``name`` ``times`` times, then let it through."""
    service = window.ctx.store
    real, attempts = service.call, []

    async def call(fn, /, *args, **kwargs):
        if getattr(fn, "__name__", None) == name:
            attempts.append(fn)
            if len(attempts) <= times:
                raise error
        return await real(fn, *args, **kwargs)

    service.call = call
    service.saving.backoff = (0.05, 0.1)
    return attempts


def test_busy_errors_are_told_apart():
    assert is_busy_error(StoreError("The database x.sqlite is busy: database is locked"))
    assert is_busy_error(sqlite3.OperationalError("database is locked"))
    assert not is_busy_error(StoreError("The database x.sqlite is not open."))
    assert not is_busy_error(ValueError("locked"))


def test_a_verdict_refused_by_a_busy_database_is_stored_once_later(qtbot, make_window, seeded_db):
    window = make_window(db=seeded_db)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    attempts = refuse(window, "record_verdict", 3, StoreError("The database is busy: database is locked"))
    gate = []  # hold the retries until the clinician has moved on and tried to close the window
    saving = window.ctx.store.saving
    real_drain = saving._drain

    async def gated_drain():
        while not gate:
            await asyncio.sleep(0.02)
        await real_drain()

    saving._drain = gated_drain
    qtbot.keyClick(page, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: page.actions.feedback.text() == BUSY_TEXT, timeout=10000)
    assert window.status.message.text() == BUSY_TEXT
    wait_answer(qtbot, page, QUESTIONS[1])  # the clinician moved on meanwhile
    assert saving.pending == 1
    qtbot.keyClick(page, Qt.Key.Key_R)  # the next verdict queues behind the first: the order is kept
    qtbot.keyClick(page.reject_panel, Qt.Key.Key_Return)
    wait_answer(qtbot, page, QUESTIONS[2])
    assert saving.pending == 2 and page.actions.feedback.text() == BUSY_TEXT
    page._feedback_timer.setInterval(200)

    window.close()  # with a verdict waiting: the window stays, and says why
    assert window.isVisible() and window._close_box is not None
    assert "could not be saved yet" in window._close_box.text()

    saved: list[str] = []
    page.verdict_saved.connect(saved.append)
    gate.append(True)
    qtbot.waitUntil(lambda: len(saved) == 2, timeout=10000)
    assert saved == ["accept", "reject"]
    assert saving.pending == 0 and len(attempts) == 5  # three refusals, then each verdict once
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)  # closed itself once saved
    assert page.actions.feedback.text() == SAVED_TEXT and window.status.message.text() == SAVED_TEXT
    qtbot.waitUntil(lambda: page.actions.feedback.text() == "", timeout=8000)  # then cleared
    window.shutdown()
    with Store.open(seeded_db) as store:
        rows = store.history(include_withdrawn=True)
    stored = sorted((r.feedback_id, r.verdict, r.prompt_excerpt[:20]) for r in rows)
    assert [(v, q) for _, v, q in stored] == [("accept", QUESTIONS[0][:20]), ("reject", QUESTIONS[1][:20])]
    assert {r.annotator for r in rows} == {ANNOTATOR}  # each stored exactly once, in order


def test_a_slow_save_says_saving_then_saved(qtbot, make_window, seeded_db):
    """The store retries a locked write itself for a while: the page says so until the save returns."""
    window = make_window(db=seeded_db)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    service, saving = window.ctx.store, window.ctx.store.saving
    real = service.call

    async def slow(fn, /, *args, **kwargs):
        if getattr(fn, "__name__", None) == "record_verdict":
            await asyncio.sleep(0.6)
        return await real(fn, *args, **kwargs)

    service.call, saving.busy_hint_s = slow, 0.1
    with qtbot.waitSignal(page.verdict_saved, timeout=10000):
        qtbot.keyClick(page, Qt.Key.Key_A)
        qtbot.waitUntil(lambda: page.actions.feedback.text() == BUSY_TEXT, timeout=5000)
    assert saving.pending == 0 and window.status.message.text() == SAVED_TEXT
    assert page.actions.feedback.text() == "Saved: accepted"
