"""Two answers side by side, unlabelled, and the buttons (with their keys) to say which is better.

Reusable: the Annotate page's compare mode uses them, and so can a blind review of held-out questions.
None of these widgets knows where the answers come from: they never show a version name or a seed, so
the clinician cannot tell which answer is which until the choice is saved.
"""

from __future__ import annotations

import functools

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from medalign_desktop.ui.core.page_parts import box_layout
from medalign_desktop.ui.core.plain import plain
from medalign_desktop.ui.core.widgets import AnswerPanel, key_button

SLOT_CHOICES = ("first", "second")  # Answer 1, Answer 2, as the store names them
CHOICE_LABELS = {
    "first": "Answer 1 better",
    "second": "Answer 2 better",
    "tie": "tie",
    "both_bad": "both bad",
}
BASE_MODEL_TEXT = "Base model"
COMPARE_HINT = "Shown in random order. E, then 1 or 2, corrects the better answer."
PICK_HINT = "Which answer is better? Press 1 or 2 to correct it; Esc cancels."


class TwoAnswerView(QWidget):
    """Answer 1 and Answer 2 side by side, the choice buttons below; either answer can become an editor."""

    save_edit = Signal()
    cancel_edit = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = box_layout(self, spacing=6)
        row = QHBoxLayout()
        row.setSpacing(12)
        self.panels = (AnswerPanel("Answer 1"), AnswerPanel("Answer 2"))
        for panel in self.panels:
            panel.save_edit.connect(self.save_edit)
            panel.cancel_edit.connect(self.cancel_edit)
            row.addWidget(panel, 1)
        layout.addLayout(row, 1)
        self.choices = ChoiceBar()
        layout.addWidget(self.choices)

    def clear(self, placeholder: str = "") -> None:
        for panel in self.panels:
            panel.clear(placeholder)
            panel.status.clear()
            panel.set_marked(False)
        self.show_hint(COMPARE_HINT)

    def append(self, slot: int, piece: str) -> None:
        self.panels[slot].append(piece)

    def set_text(self, slot: int, text: str) -> None:
        self.panels[slot].set_text(text)

    def show_start(self, slot: int) -> None:
        """Scroll an answer back to its beginning (streaming followed its end), ready to be read."""
        self.panels[slot].text.verticalScrollBar().setValue(0)

    def set_status(self, slot: int, text: str) -> None:
        self.panels[slot].status.setText(text)

    def texts(self) -> tuple[str, str]:
        return self.panels[0].edited_text(), self.panels[1].edited_text()

    def mark(self, slot: int | None) -> None:
        """Outline the answer picked as better (None: neither)."""
        for index, panel in enumerate(self.panels):
            panel.set_marked(index == slot)

    def show_hint(self, text: str) -> None:
        self.choices.hint.setText(text)

    # ------------------------------------------------------------------ editing the better answer
    @property
    def editing_slot(self) -> int | None:
        return next((i for i, panel in enumerate(self.panels) if panel.editing), None)

    def begin_edit(self, slot: int) -> None:
        self.mark(slot)
        self.panels[slot].begin_edit()

    def end_edit(self, *, restore: bool) -> None:
        slot = self.editing_slot
        if slot is not None:
            self.panels[slot].end_edit(restore=restore)
        self.mark(None)

    def edited_text(self) -> str:
        slot = self.editing_slot
        return "" if slot is None else self.panels[slot].edited_text()


class ChoiceBar(QWidget):
    """The choice buttons, keys written on them: 1, 2, T (tie), B (both bad), E (correct the better one)."""

    chosen = Signal(str)  # one of "first", "second", "tie", "both_bad"
    edit_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = box_layout(self, QHBoxLayout, margins=(0, 4, 0, 0), spacing=8)
        button = functools.partial(key_button, layout)

        self.buttons = {
            "first": button("Answer 1  [1]", "acceptButton", "Answer 1 is the better one"),
            "second": button("Answer 2  [2]", "acceptButton", "Answer 2 is the better one"),
            "tie": button("Tie  [T]", "secondaryButton", "Both answers are equally good"),
            "both_bad": button("Both bad  [B]", "rejectButton", "Neither answer is acceptable"),
        }
        self.edit = button("Correct  [E]", "editButton", "Say which answer is better (1 or 2) and correct it")
        layout.addSpacing(8)
        self.hint = plain(QLabel(COMPARE_HINT))
        self.hint.setObjectName("hintLabel")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint, 1)
        for choice, made in self.buttons.items():
            made.clicked.connect(lambda _checked=False, c=choice: self.chosen.emit(c))
        self.edit.clicked.connect(self.edit_requested)

    def set_live(self, *, ready: bool, picking: bool) -> None:
        """Ready: every choice is live. Picking (after E): only 1 and 2, to say which answer to correct."""
        for choice, made in self.buttons.items():
            made.setEnabled(ready or (picking and choice in SLOT_CHOICES))
        self.edit.setEnabled(ready)


class CompareOptions(QWidget):
    """One answer or two to compare (``mode``) and, for two, where they come from: two samples of the
    active version, or one answer from each of two chosen versions."""

    changed = Signal()  # the source or a version changed (``mode`` has its own signal)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = box_layout(self, QHBoxLayout, spacing=8)
        self.mode = QComboBox()
        self.mode.addItem("Single answer", "single")
        self.mode.addItem("Compare two answers", "compare")
        self.mode.setToolTip("One answer to accept, edit or reject, or two to compare  [C switches]")
        self.source = QComboBox()
        self.source.addItem("Two samples (different seeds)", "seeds")
        self.source.addItem("Two model versions", "versions")
        self.source.setToolTip("Two answers of the active version, or one answer from each of two versions")
        self.version_x, self.version_y = QComboBox(), QComboBox()
        self.versus = QLabel("versus")
        for widget in (self.mode, self.source, self.version_x, self.version_y):
            widget.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # single-letter keys stay with the page
        key = QLabel("[C]")
        key.setObjectName("hintLabel")
        key.setToolTip("C switches between one answer and two")
        layout.addWidget(self.mode)
        layout.addWidget(key)
        layout.addSpacing(8)
        layout.addWidget(self.source)
        layout.addWidget(self.version_x)
        layout.addWidget(self.versus)
        layout.addWidget(self.version_y)
        layout.addStretch(1)
        self.mode.currentIndexChanged.connect(self._show_versions)
        self.source.currentIndexChanged.connect(self._source_changed)
        self.version_x.currentIndexChanged.connect(self.changed)
        self.version_y.currentIndexChanged.connect(self.changed)
        self.set_versions([], ("", ""))

    def set_mode(self, mode: str) -> None:
        """Show ``mode`` ("single" or "compare") without emitting ``mode.currentIndexChanged``."""
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(max(0, self.mode.findData(mode)))
        self.mode.blockSignals(False)
        self._show_versions()

    def set_source(self, source: str) -> None:
        self.source.blockSignals(True)
        self.source.setCurrentIndex(max(0, self.source.findData(source)))
        self.source.blockSignals(False)
        self._show_versions()

    def set_versions(self, names: list[str], chosen: tuple[str, str]) -> None:
        """Fill both version lists (the base model first) and select ``chosen`` where it still exists."""
        for box, name in zip((self.version_x, self.version_y), chosen, strict=True):
            box.blockSignals(True)
            box.clear()
            box.addItem(BASE_MODEL_TEXT, "")
            for version in names:
                box.addItem(version, version)
            box.setCurrentIndex(max(0, box.findData(name)))
            box.blockSignals(False)
        self._show_versions()

    def current_source(self) -> str:
        return self.source.currentData()

    def versions(self) -> tuple[str, str]:
        return self.version_x.currentData() or "", self.version_y.currentData() or ""

    def _source_changed(self) -> None:
        self._show_versions()
        self.changed.emit()

    def _show_versions(self) -> None:
        compare = self.mode.currentData() == "compare"
        self.source.setVisible(compare)
        for widget in (self.version_x, self.versus, self.version_y):
            widget.setVisible(compare and self.current_source() == "versions")
