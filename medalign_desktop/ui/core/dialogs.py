"""Small dialogs: generation settings, the annotator's name, confirmations, the import report.

Blocking helpers (``ask_annotator_name``, ``confirm``) run a nested event loop, so they are only ever
called from plain slots, before a coroutine starts, never from inside one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from medalign_desktop.engine import DEFAULT_SYSTEM_PROMPT, SamplingSettings

RANDOM_SEED_TEXT = "random"


def describe_sampling(settings: SamplingSettings) -> str:
    """One line for the Annotate page, e.g. 'Temperature 0.7 · top-p 0.90 · up to 384 tokens'."""
    mode = "greedy" if settings.temperature == 0 else f"temperature {settings.temperature:g}"
    seed = f" · seed {settings.seed}" if settings.seed is not None else ""
    return f"{mode.capitalize()} · top-p {settings.top_p:g} · up to {settings.max_new_tokens} tokens{seed}"


class SamplingDialog(QDialog):
    """Temperature, top-p, max new tokens, seed and system prompt for the next answers."""

    def __init__(self, settings: SamplingSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Generation settings")
        self.setMinimumWidth(520)
        form = QFormLayout()
        form.setVerticalSpacing(10)
        self.temperature = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=2.0, singleStep=0.1)
        self.temperature.setValue(settings.temperature)
        self.temperature.setToolTip("0 = always the most likely answer (greedy); higher = more varied")
        self.top_p = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=1.0, singleStep=0.05)
        self.top_p.setValue(settings.top_p)
        self.max_new_tokens = QSpinBox(minimum=1, maximum=8192, singleStep=64)
        self.max_new_tokens.setValue(settings.max_new_tokens)
        self.seed = QSpinBox(minimum=-1, maximum=2**31 - 1)
        self.seed.setSpecialValueText(RANDOM_SEED_TEXT)  # shown for -1, the minimum
        self.seed.setValue(-1 if settings.seed is None else settings.seed)
        self.system_prompt = QPlainTextEdit(settings.system_prompt)
        self.system_prompt.setMinimumHeight(110)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Max new tokens", self.max_new_tokens)
        form.addRow("Seed", self.seed)
        form.addRow("System prompt", self.system_prompt)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        restore = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.clicked.connect(lambda: self._show(SamplingSettings()))
        note = QLabel("Settings apply to the next answer and are recorded with every generation.")
        note.setObjectName("hintLabel")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def _show(self, settings: SamplingSettings) -> None:
        self.temperature.setValue(settings.temperature)
        self.top_p.setValue(settings.top_p)
        self.max_new_tokens.setValue(settings.max_new_tokens)
        self.seed.setValue(-1 if settings.seed is None else settings.seed)
        self.system_prompt.setPlainText(settings.system_prompt or DEFAULT_SYSTEM_PROMPT)

    def settings(self) -> SamplingSettings:
        seed = self.seed.value()
        return SamplingSettings(
            temperature=round(self.temperature.value(), 2),
            top_p=round(self.top_p.value(), 2),
            max_new_tokens=self.max_new_tokens.value(),
            seed=None if seed < 0 else seed,
            system_prompt=self.system_prompt.toPlainText().strip(),
        ).validated()


def ask_annotator_name(parent: QWidget | None) -> str | None:
    """Ask once who is annotating; None if the clinician cancels."""
    name, ok = QInputDialog.getText(
        parent,
        "Who is annotating?",
        "Your name or initials. It is saved with every verdict you give:",
    )
    return name.strip() if ok and name.strip() else None


def confirm(parent: QWidget | None, title: str, text: str, action: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    yes = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is yes


def show_report(parent: QWidget | None, title: str, summary: str, *, problem: bool) -> QMessageBox:
    """A non-blocking message box whose first line is the headline and the rest the details."""
    head, _, details = summary.partition("\n")
    icon = QMessageBox.Icon.Warning if problem else QMessageBox.Icon.Information
    box = QMessageBox(icon, title, head, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("reportMessage")
    box.setTextFormat(Qt.TextFormat.PlainText)  # reports quote file names and imported fields
    if details:
        box.setInformativeText(details)
        for label in box.findChildren(QLabel):
            label.setTextFormat(Qt.TextFormat.PlainText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.open()
    return box
