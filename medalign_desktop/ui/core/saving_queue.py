"""Verdicts are never lost to a busy database: a save refused with "database is locked" waits here.

The store retries a locked write for a while itself (an import holding the write lock, another process);
when it gives up, a verdict save (accept / edit / reject / comparison) is queued in memory and retried with
backoff, in the order given, until it is stored. Meanwhile the clinician moves on: a queued save returns at
once, and later saves queue behind it so the order is kept. ``state_changed`` carries what the page and the
status bar show: BUSY_TEXT while anything waits, SAVED_TEXT once everything is stored.

Closing the window with saves still waiting does not drop them: :func:`hold_close` keeps the window open
until they are stored (or the clinician chooses to close without them).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMessageBox, QWidget

from medalign_desktop.store import StoreError, StoreValidationError
from medalign_desktop.ui.core.operations import Operation

log = logging.getLogger(__name__)

BUSY_TEXT = "Saving… (the database is busy)"
SAVED_TEXT = "Saved"
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # then every 8 s, until stored
BUSY_HINT_S = 1.0  # a save still running after this (the store retrying a locked write) shows BUSY_TEXT
BUSY_WORDS = ("locked", "busy")


class _Store(Protocol):
    async def run(self, op: Operation, /, *args: Any, **kwargs: Any) -> Any: ...


def is_busy_error(exc: BaseException) -> bool:
    """True for a write refused because another writer holds the database (worth retrying)."""
    if isinstance(exc, StoreValidationError):
        return False
    # sqlite3.OperationalError, recognised without importing sqlite3 (the UI never touches the database)
    sqlite_error = type(exc).__module__ == "sqlite3" and type(exc).__name__ == "OperationalError"
    if isinstance(exc, StoreError) or sqlite_error:
        text = str(exc).lower()
        return any(word in text for word in BUSY_WORDS)
    return False


@dataclass
class PendingSave:
    op: Operation
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    description: str
    on_saved: Callable[[Any], None] | None = None
    attempts: int = field(default=1)


class SavingQueue(QObject):
    """Store writes that must not be lost; owned by the StoreService."""

    state_changed = Signal(str)  # BUSY_TEXT, SAVED_TEXT
    saved = Signal(str, object)  # (description, result) of a queued save once stored
    failed = Signal(object, str)  # (exception, description): a queued save refused for another reason
    drained = Signal()  # nothing waits any more

    def __init__(self, store: _Store, parent: QObject | None = None, *, backoff: Sequence[float] = BACKOFF_S):
        super().__init__(parent)
        self._store = store
        self.backoff = tuple(backoff)
        self.busy_hint_s = BUSY_HINT_S
        self._pending: deque[PendingSave] = deque()
        self._worker: asyncio.Task | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def save(
        self, op: Operation, /, *args: Any, description: str = "the verdict",
        on_saved: Callable[[Any], None] | None = None, **kwargs: Any,
    ) -> tuple[bool, Any]:  # fmt: skip
        """Run the store write ``op``: (True, result) when stored now, (False, None) when the database is
        busy and the write was queued (``on_saved(result)`` runs once it is stored). Other errors raise."""
        if not self._pending:  # behind a queued save, a new one waits its turn (the order is kept)
            call = asyncio.ensure_future(self._store.run(op, *args, **kwargs))
            done, _ = await asyncio.wait({call}, timeout=self.busy_hint_s)
            slow = not done  # the store is retrying a locked write itself: say so meanwhile
            if slow:
                self.state_changed.emit(BUSY_TEXT)
            try:
                result = await call
            except Exception as exc:
                if not is_busy_error(exc):
                    if slow:
                        self.state_changed.emit("")
                    raise
                log.warning("The database is busy; %s will be saved when it is free: %s", description, exc)
            else:
                if slow:
                    self.state_changed.emit(SAVED_TEXT)
                return True, result
        self._pending.append(PendingSave(op, args, dict(kwargs), description, on_saved))
        self.state_changed.emit(BUSY_TEXT)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._drain())
        return False, None

    async def _drain(self) -> None:
        failures = 0
        while self._pending:
            await asyncio.sleep(self.backoff[min(failures, len(self.backoff) - 1)])
            item = self._pending[0]
            try:
                result = await self._store.run(item.op, *item.args, **item.kwargs)
            except Exception as exc:
                if is_busy_error(exc):
                    failures += 1
                    item.attempts += 1
                    continue
                self._pending.popleft()  # refused for good (e.g. the database was closed): say so
                self.failed.emit(exc, f"Saving {item.description}")
                continue
            self._pending.popleft()
            failures = 0
            if item.on_saved is not None:
                try:
                    item.on_saved(result)
                except Exception as exc:  # the verdict is stored; only its follow-up failed
                    self.failed.emit(exc, f"After saving {item.description}")
            self.saved.emit(item.description, result)
        self.state_changed.emit(SAVED_TEXT)
        self.drained.emit()

    async def wait_saved(self) -> None:
        """Wait until nothing is queued (tests and shutdown)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.wait({self._worker})


WAITING_CLOSE = (
    "{n} verdict{s} could not be saved yet: the database is busy (an import or another program is writing "
    "to it). The window will close by itself once {they} saved.\n\nClose now and lose {them}?"
)


def hold_close(window: QWidget, queue: SavingQueue, event: QCloseEvent) -> bool:
    """In ``closeEvent``: with saves waiting, refuse the close, close again once they are stored, and offer
    to close without them. True when the close was held (the caller returns at once)."""
    if not queue.pending or getattr(window, "_discard_unsaved", False):
        return False
    event.ignore()
    if getattr(window, "_close_box", None) is not None:
        return True
    n = queue.pending
    text = WAITING_CLOSE.format(n=n, s="s" if n != 1 else "", they="they are" if n != 1 else "it is",
                                them="them" if n != 1 else "it")  # fmt: skip
    box = QMessageBox(QMessageBox.Icon.Warning, "Saving verdicts", text, QMessageBox.StandardButton.NoButton,
                      window)  # fmt: skip
    box.setObjectName("unsavedVerdicts")
    discard = box.addButton("Close without saving", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton("Keep waiting", QMessageBox.ButtonRole.RejectRole)
    window._close_box = box

    def finished() -> None:
        window._close_box = None
        if box.clickedButton() is discard:
            log.warning("Closing with %d verdict(s) unsaved, as the clinician chose", queue.pending)
            window._discard_unsaved = True
            queue.drained.disconnect(drained)
            window.close()

    def drained() -> None:
        queue.drained.disconnect(drained)
        if window._close_box is not None:
            window._close_box.done(0)  # `finished` runs; Keep-waiting semantics: no discard
        window.close()

    box.finished.connect(finished)
    queue.drained.connect(drained)
    box.open()
    return True
