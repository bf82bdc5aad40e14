"""File > Hold out a share of an import: which imported batch of questions, what share, which seed.

The dialog only collects the choice; the batches are read by the caller beforehand (off the GUI thread)
and the move itself is ``Store.hold_out_share`` on the store thread. The same seed picks the same
questions again, so a share can be reproduced on another workstation from the same import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from medalign_desktop.store import Store
from medalign_desktop.ui.core import dialogs, labels
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.errors import EXPECTED_ERRORS, readable_message

DEFAULT_PERCENT = 20


def batch_label(batch: Any) -> str:
    return f"{Path(batch.source_path).name}: {batch.n_imported:,} questions, imported {labels.short_time(batch.created_at)}"


class HoldOutDialog(QDialog):
    """Choose an import batch of questions, a percentage and a seed."""

    moved = Signal(int)  # questions moved to held out, once the store has done it

    def __init__(self, batches: list[Any], held_out: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Hold out a share of an import")
        self.setMinimumWidth(520)
        intro = QLabel(
            "Held-out questions are kept for evaluating model versions: they can still be answered and "
            "reviewed, but no training job ever learns from them. A question that already has feedback "
            "is held out too, and its feedback is left out of every later training job.\n"
            f"Held out now: {held_out:,} question{'s' if held_out != 1 else ''}."
        )
        intro.setWordWrap(True)
        self.batch = QComboBox()
        for batch in batches:
            self.batch.addItem(batch_label(batch), batch.id)
        self.percent = QSpinBox(minimum=1, maximum=100, value=DEFAULT_PERCENT)
        self.percent.setSuffix(" %")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.seed.setToolTip("The same seed holds out the same questions of the same import")
        form = QFormLayout()
        form.addRow("Imported questions", self.batch)
        form.addRow("Share to hold out", self.percent)
        form.addRow("Random seed", self.seed)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Hold out")
        ok.setEnabled(bool(batches))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        if not batches:
            missing = QLabel(
                "No imported questions yet: import a question file first (File > Import questions...)."
            )
            missing.setWordWrap(True)
            missing.setStyleSheet("color: #b42318;")
            layout.addWidget(missing)
        layout.addWidget(self.buttons)

    def batch_name(self) -> str:
        return self.batch.currentText().split(":")[0]

    def options(self) -> tuple[int, float, int]:
        """(import batch id, fraction 0..1, seed)."""
        return self.batch.currentData(), self.percent.value() / 100, self.seed.value()


def moved_message(moved: int, percent: int, batch_name: str) -> str:
    if moved == 0:
        return f"No question of {batch_name} moved: that share is held out already."
    return f"{moved:,} question{'s' if moved != 1 else ''} of {batch_name} moved to held out ({percent} % share)."


async def open_hold_out_dialog(ctx: AppContext, parent: QWidget) -> HoldOutDialog:
    """Read the question batches on the store thread, then ask (the dialog is modal but never blocks);
    accepting it moves the share on the store thread and says how many questions moved."""
    batches = await ctx.store.run(Store.import_batches, "questions")
    dialog = HoldOutDialog(batches, await ctx.store.run(Store.held_out_count), parent)
    dialog.accepted.connect(lambda: ctx.tasks.start(_hold_out(ctx, dialog), "Holding out questions"))
    dialog.open()
    return dialog


async def _hold_out(ctx: AppContext, dialog: HoldOutDialog) -> None:
    batch_id, fraction, seed = dialog.options()
    title = "Hold out a share of an import"
    try:
        moved = await ctx.store.run(Store.hold_out_share, batch_id, fraction, seed)
    except EXPECTED_ERRORS as exc:
        dialog.report_box = dialogs.show_report(
            dialog.parentWidget(), title, readable_message(exc)[0], problem=True
        )
        return
    text = moved_message(moved, dialog.percent.value(), dialog.batch_name())
    dialog.report_box = dialogs.show_report(dialog.parentWidget(), title, text, problem=False)
    dialog.moved.emit(moved)
