"""The choices made before a preference job starts.

- DPO (Model D) and the reward model learn from preference pairs: always the pairs derived from the
  clinicians' feedback, plus the imported batches of pairs ticked here.
- PPO (Model C) generates answers to train-split questions and scores them with a reward model: which
  reward model, which questions, and at most how many.

The dialogs only collect choices; the numbers they show are read by the caller beforehand (off the GUI
thread) and passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QVBoxLayout,
)

from medalign_desktop.ui.core import labels


@dataclass(frozen=True)
class ImportedBatch:
    id: int
    source_path: str
    n_pairs: int
    created_at: str

    def label(self) -> str:
        return f"{Path(self.source_path).name}: {self.n_pairs} pairs, imported {labels.short_time(self.created_at)}"


@dataclass(frozen=True)
class RewardChoice:
    id: int
    name: str
    accuracy: float | None  # pairwise accuracy on the held-back slice, when the job reported it

    def label(self) -> str:
        return self.name + (f" (held-back accuracy {self.accuracy:.0%})" if self.accuracy is not None else "")


def _buttons(dialog: QDialog, ok_text: str) -> QDialogButtonBox:
    box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    box.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    box.accepted.connect(dialog.accept)
    box.rejected.connect(dialog.reject)
    return box


class PreferenceJobDialog(QDialog):
    """DPO or reward model: which imported pair batches to learn from besides the feedback pairs."""

    def __init__(self, kind: str, n_feedback_pairs: int, batches: list[ImportedBatch], parent=None) -> None:
        super().__init__(parent)
        self.kind = kind
        what = "DPO (Model D)" if kind == "dpo" else "the reward model (Model C, step 1)"
        self.setWindowTitle("Train with DPO" if kind == "dpo" else "Train a reward model")
        self.intro = intro = QLabel(
            f"Train {what} on preference pairs: a better and a worse answer to the same question.\n"
            f"From the clinicians' feedback: {n_feedback_pairs} pair{'s' if n_feedback_pairs != 1 else ''} "
            "(edits, comparisons, rejects with a better answer). Held-out questions are never used."
        )
        intro.setWordWrap(True)
        self.batch_list = QListWidget()
        for batch in batches:
            item = QListWidgetItem(batch.label())
            item.setData(Qt.ItemDataRole.UserRole, batch.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.batch_list.addItem(item)
        self.batch_list.setVisible(bool(batches))
        batches_label = QLabel(
            "Also learn from these imported pairs:" if batches else "No imported preference pairs."
        )
        self.buttons = _buttons(self, "Start training")
        self.batch_list.itemChanged.connect(lambda _item: self._update(n_feedback_pairs))
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(batches_label)
        layout.addWidget(self.batch_list)
        layout.addWidget(self.buttons)
        self._update(n_feedback_pairs)

    def _update(self, n_feedback_pairs: int) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(n_feedback_pairs > 0 or bool(self.import_batch_ids()))

    def import_batch_ids(self) -> tuple[int, ...]:
        items = (self.batch_list.item(i) for i in range(self.batch_list.count()))
        return tuple(
            item.data(Qt.ItemDataRole.UserRole)
            for item in items
            if item.checkState() == Qt.CheckState.Checked
        )

    def options(self) -> dict:
        return {"import_batch_ids": self.import_batch_ids()}


class PPOJobDialog(QDialog):
    """PPO: the reward model that scores the answers, and the questions the policy answers."""

    def __init__(self, rewards: list[RewardChoice], n_all: int, n_unannotated: int, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train with PPO (Model C)")
        intro = QLabel(
            "PPO lets the active version answer training questions, scores each answer with the reward "
            "model, and moves the answers towards higher scores while a KL penalty keeps it close to the "
            "version it started from. Held-out questions are never used."
        )
        intro.setWordWrap(True)
        self.reward_combo = QComboBox()
        for reward in rewards:
            self.reward_combo.addItem(reward.label(), reward.id)
        self.scope_combo = QComboBox()
        self.scope_combo.addItem(f"All training questions ({n_all})", "all")
        self.scope_combo.addItem(f"Questions without a verdict yet ({n_unannotated})", "unannotated")
        self.limit_check = QCheckBox("At most")
        self.limit_spin = QSpinBox(minimum=1, maximum=100_000, value=min(max(n_all, 1), 256))
        self.limit_spin.setSuffix(" questions (a random sample)")
        self.limit_check.setChecked(n_all > 256)
        self.limit_spin.setEnabled(self.limit_check.isChecked())
        self.limit_check.toggled.connect(self.limit_spin.setEnabled)
        form = QFormLayout()
        form.addRow("Reward model", self.reward_combo)
        form.addRow("Questions", self.scope_combo)
        form.addRow(self.limit_check, self.limit_spin)
        self.buttons = _buttons(self, "Start training")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(rewards) and n_all > 0)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        if not rewards:
            missing = QLabel("No reward model yet: train one first (Reward model).")
            missing.setStyleSheet("color: #b42318;")
            layout.addWidget(missing)
        layout.addWidget(self.buttons)

    def options(self) -> dict:
        return {
            "reward_version_id": self.reward_combo.currentData(),
            "prompt_scope": self.scope_combo.currentData(),
            "max_prompts": self.limit_spin.value() if self.limit_check.isChecked() else None,
        }
