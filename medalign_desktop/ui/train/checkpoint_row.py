"""The Train page's checkpoint choices: which checkpoint new versions come from, and for a finished job whose
best and last checkpoints differ, the offer to make the other one a version too.

    [x] Stop early after [3] evaluations without improvement
    New versions from: [best checkpoint (lowest evaluation loss) | last step]
    Version B-iter-3 is the best checkpoint (step 40, eval loss 1.23).
    [Make the last checkpoint (step 60, eval loss 1.3) a version]
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from medalign_desktop.jobs.resume import CheckpointOffer, describe
from medalign_desktop.ui.core.page_parts import box_layout

SOURCES = (("best checkpoint (lowest evaluation loss)", "best"), ("last step", "last"))


class VersionSourceChoice(QWidget):
    """'New versions from:' and its combo; ``changed`` gives "best" or "last"."""

    changed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        for text, value in SOURCES:
            self.combo.addItem(text, value)
        self.combo.setToolTip(
            "Which of a job's checkpoints becomes its new version: the one that did best on the job's "
            "held-back evaluation slice (lowest evaluation loss; for PPO the highest evaluation reward), "
            "or the one after the last training step"
        )
        self.combo.currentIndexChanged.connect(lambda _index: self.changed.emit(self.value))
        label = QLabel("New versions from:")
        label.setBuddy(self.combo)
        layout = box_layout(self, QHBoxLayout)
        layout.addWidget(label)
        layout.addWidget(self.combo)

    @property
    def value(self) -> str:
        return self.combo.currentData()

    def set_value(self, value: str) -> None:
        self.combo.setCurrentIndex(max(0, self.combo.findData(value)))


class EarlyStoppingChoice(QWidget):
    """'Stop early after N evaluations without improvement'; ``changed`` gives the patience (0: off)."""

    changed = Signal(int)
    DEFAULT_PATIENCE = 3

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.check = QCheckBox("Stop early after")
        self.patience = QSpinBox(minimum=1, maximum=50, value=self.DEFAULT_PATIENCE)
        self.patience.setSuffix(" evaluations")
        self.setToolTip(
            "Stop a training job when its evaluation loss (PPO: evaluation reward) on the held-back slice has "
            "not improved for this many evaluations in a row; the best checkpoint so far is kept"
        )
        self.check.toggled.connect(self.patience.setEnabled)
        self.check.toggled.connect(lambda _on: self.changed.emit(self.value))
        self.patience.valueChanged.connect(lambda _n: self.changed.emit(self.value))
        layout = box_layout(self, QHBoxLayout)
        layout.addWidget(self.check)
        layout.addWidget(self.patience)
        layout.addWidget(QLabel("without improvement"))
        self.patience.setEnabled(False)

    @property
    def value(self) -> int:
        return self.patience.value() if self.check.isChecked() else 0

    def set_value(self, patience: int) -> None:
        if patience > 0:
            self.patience.setValue(patience)
        self.check.setChecked(patience > 0)


class CheckpointOfferRow(QWidget):
    """Which checkpoint a finished job's version is, and a button making the other one a version."""

    make_version = Signal(int, str)  # job id, "best" or "last": the checkpoint to make a version of

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.job_id: int | None = None
        self.offer: CheckpointOffer | None = None
        self.label = QLabel()
        self.label.setObjectName("metaLabel")
        self.label.setWordWrap(True)
        self.button = QPushButton()
        self.button.clicked.connect(self._clicked)
        layout = box_layout(self, QHBoxLayout)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self.setVisible(False)

    def show_offer(self, job_id: int | None, offer: CheckpointOffer | None) -> None:
        """Show ``offer`` for ``job_id`` (None: hide the row)."""
        self.job_id, self.offer = job_id, offer
        if offer is None:
            self.setVisible(False)
            return
        text = (
            f"Version {offer.version_name} is the {offer.chosen_which} checkpoint ({describe(offer.chosen)})."
        )
        if offer.other_version:
            text += f" The {offer.other_which} checkpoint is version {offer.other_version}."
        self.label.setText(text)
        self.button.setText(f"Make the {offer.other_which} checkpoint ({describe(offer.other)}) a version")
        self.button.setVisible(offer.other_version is None)
        self.button.setEnabled(True)
        self.setVisible(True)

    def _clicked(self) -> None:
        if self.job_id is not None and self.offer is not None:
            self.button.setEnabled(False)  # once: the job's refresh shows the new version
            self.make_version.emit(self.job_id, self.offer.other_which)
