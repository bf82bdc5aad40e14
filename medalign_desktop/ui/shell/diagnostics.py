"""Help > Diagnostics: versions, the GPU, the database and folders, for a support ticket.

The rows come from :func:`medalign_desktop.diagnostics.collect`, run on a worker thread (it imports torch,
which takes seconds); the table fills in when they arrive. "Copy to clipboard" copies the same plain text
that ``medalign info`` prints.
"""

from __future__ import annotations

import asyncio

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medalign_desktop.diagnostics import Rows, as_text, collect
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.plain import tip


class DiagnosticsDialog(QDialog):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.rows: Rows = []
        self.setObjectName("diagnosticsDialog")
        self.setWindowTitle("Diagnostics")
        self.resize(760, 560)
        self.status = QLabel("Collecting versions and devices\u2026")
        self.status.setObjectName("hintLabel")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Item", "Value"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        self.copy_button = QPushButton("&Copy to clipboard")
        self.copy_button.setObjectName("primaryButton")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

    async def load(self) -> Rows:
        """Collect the rows off the GUI thread and show them."""
        db_path = self.ctx.store.path
        rows = await asyncio.get_running_loop().run_in_executor(None, collect, db_path)
        self.show_rows(rows)
        return rows

    def show_rows(self, rows: Rows) -> None:
        self.rows = list(rows)
        self.table.setRowCount(len(self.rows))
        for row, (name, value) in enumerate(self.rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            item = QTableWidgetItem(value)
            item.setToolTip(tip(value) or "")  # long paths are cut at the column's edge
            self.table.setItem(row, 1, item)
        self.status.setText("Copy these into a support ticket.")
        self.copy_button.setEnabled(True)
        self.copy_button.setFocus()

    def copy(self) -> str:
        """Put the report on the clipboard as plain text; returns it."""
        text = as_text(self.rows)
        QGuiApplication.clipboard().setText(text)
        self.status.setText("Copied to the clipboard.")
        return text


def open_diagnostics(ctx: AppContext, parent: QWidget | None = None) -> DiagnosticsDialog:
    """Show the dialog at once (non-blocking) and fill it in the background."""
    dialog = DiagnosticsDialog(ctx, parent)
    dialog.open()
    dialog.task = ctx.tasks.start(dialog.load(), "Diagnostics")
    return dialog
