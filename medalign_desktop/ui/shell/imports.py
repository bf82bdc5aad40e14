"""File > Import questions / Import preference pairs: the file dialog, the import on the store thread with a
progress dialog and Cancel, and the report. A mixin of :class:`MainWindow`, which supplies ``ctx``,
``annotate``, ``import_action``, ``import_pairs_action`` and the ``import_finished`` signal.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QProgressDialog

from medalign_desktop.ui.core import dialogs

QUESTION_FILES = "Question files (*.jsonl *.json *.csv *.parquet);;All files (*)"
PAIR_FILES = "Preference pairs (*.jsonl *.json *.parquet);;All files (*)"


class ImportActions:
    """Importing questions and preference pairs, one import at a time."""

    def choose_import_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import questions", "", QUESTION_FILES)
        if path:
            self.import_questions(Path(path))

    def import_questions(self, path: Path) -> asyncio.Task:
        """Import on the store thread with a progress dialog; Cancel stops it (nothing is written)."""
        return self._import(path, "Import questions", self.ctx.store.import_questions, questions=True)

    def choose_pairs_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import preference pairs", "", PAIR_FILES)
        if path:
            self.import_preferences(Path(path))

    def import_preferences(self, path: Path) -> asyncio.Task:
        """Import preference pairs (UltraMedical-Preferences: JSONL, Parquet or a ``datasets`` folder)."""
        return self._import(
            path, "Import preference pairs", self.ctx.store.import_preferences, questions=False
        )

    def _import(self, path: Path, title: str, run_import, *, questions: bool) -> asyncio.Task:
        cancel = self._import_cancel = threading.Event()
        progress = QProgressDialog(f"Importing {path.name}...", "Cancel", 0, 0, self)
        progress.setWindowTitle(title)
        progress.setWindowModality(Qt.WindowModality.NonModal)  # a modal one re-enters the event loop
        progress.setMinimumDuration(0)
        progress.canceled.connect(cancel.set)
        self.import_progress = progress

        # A bound method of this window (a QObject), so progress emitted on the store thread is queued to
        # the GUI thread; a plain closure would run on the store thread and touch widgets from there.
        self.ctx.store.import_progress.connect(self._show_import_progress)
        # One import at a time, whichever kind: they share the progress dialog and the cancel event.
        actions = (self.import_action, self.import_pairs_action)
        for menu_action in actions:
            menu_action.setEnabled(False)
        progress.show()

        async def flow() -> None:
            try:
                report = await run_import(path, cancel)
            finally:
                self.ctx.store.import_progress.disconnect(self._show_import_progress)
                progress.reset()
                progress.close()
                for menu_action in actions:
                    menu_action.setEnabled(True)
            problem = bool(report.errors) or report.cancelled
            self.report_box = dialogs.show_report(self, title, report.summary(), problem=problem)
            self.import_finished.emit(report)
            if report.imported and questions:  # new questions join the queue
                self.annotate.reload_queue()

        return self.ctx.tasks.start(flow(), f"Importing {path.name}")

    def _show_import_progress(self, done: int, total: int) -> None:
        progress = self.import_progress
        progress.setMaximum(max(total, 0))
        progress.setValue(min(done, total) if total else 0)
