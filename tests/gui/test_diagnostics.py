"""Help > Diagnostics: filled in the background, read-only, and copied as plain text."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractItemView

from medalign_desktop.diagnostics import as_text
from tests.gui.conftest import run


def test_diagnostics_shows_the_report_and_copies_it(qtbot, make_window, db_path):
    window = make_window(start=False)
    action = next(a for a in window.menuBar().actions()[-1].menu().actions() if a.text() == "&Diagnostics...")
    action.trigger()
    dialog = window.diagnostics
    assert dialog.isVisible() and not dialog.copy_button.isEnabled()  # shown before the rows arrive
    rows = run(qtbot, dialog.task, timeout=60000)
    table = dialog.table
    shown = [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]
    assert shown == rows
    values = dict(rows)
    assert values["Database"] == f"{db_path} (not created yet)" and "torch" in values and "TRL" in values
    assert table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == as_text(rows)
    assert dialog.status.text() == "Copied to the clipboard."
