"""The Models page: every registered version as a lineage tree, the active one marked.

Activate hot-swaps the version's adapter into the loaded base model (no reload); "Base model only"
answers without any adapter; Roll back activates the active version's parent; Delete removes a version
nobody uses (not active, no children, no recorded answers); "Score answers with this reward model" makes
a reward version the one whose scores History shows and scores the answers it has not scored yet.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from medalign_desktop.jobs.requests import POLICY_KINDS
from medalign_desktop.store import Store
from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.page_parts import box_layout
from medalign_desktop.ui.core.plain import plain

COLUMNS = ("Version", "Method", "Created", "Examples", "Final loss", "Adapter")


def final_loss(metrics: dict) -> str:
    for key in ("train_loss", "loss", "final_loss"):
        if isinstance(metrics.get(key), int | float):
            return f"{metrics[key]:.3f}"
    return ""


class ModelsPage(QWidget):
    activate_requested = Signal(object)  # a ModelVersion, or None for the base model alone
    score_requested = Signal(object)  # a reward ModelVersion: score the answers with it

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.versions: dict[int, object] = {}
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setAlternatingRowColors(True)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(lambda *_: self.activate_selected())
        self.activate_button = QPushButton("Activate")
        self.activate_button.setObjectName("primaryButton")
        self.base_button = QPushButton("Base model only")
        self.rollback_button = QPushButton("Roll back to parent")
        self.delete_button = QPushButton("Delete")
        self.score_button = QPushButton("Score answers with this reward model")
        self.score_button.clicked.connect(self.score_selected)
        self.activate_button.clicked.connect(self.activate_selected)
        self.base_button.clicked.connect(lambda: self.activate_requested.emit(None))
        self.rollback_button.clicked.connect(self.roll_back)
        self.delete_button.clicked.connect(self.delete_selected)
        self.active_label = plain(QLabel())  # a version name
        self.active_label.setObjectName("positionLabel")
        buttons = QHBoxLayout()
        for button in (self.activate_button, self.base_button, self.rollback_button, self.delete_button,
                       self.score_button):  # fmt: skip
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = box_layout(self, margins=(16, 16, 16, 16))
        layout.addWidget(self.active_label)
        layout.addLayout(buttons)
        layout.addWidget(self.tree, 1)
        self._update_buttons()

    def refresh(self) -> None:
        self.ctx.tasks.start(self._refresh(), "Reading the model versions")

    async def _refresh(self) -> None:
        if not self.ctx.store.is_open:
            return
        versions = await self.ctx.store.run(Store.list_model_versions)
        self.versions = {v.id: v for v in versions}
        active = self.active_version()
        self.active_label.setText(f"Answering with: {active.name if active else 'the base model only'}")
        self.tree.clear()
        items: dict[int, QTreeWidgetItem] = {}
        for version in sorted(versions, key=lambda v: v.id):
            cells = (
                version.name + ("   (active)" if version.is_active else ""),
                labels.method_label(version.kind),
                labels.local_time(version.created_at),
                "" if version.data_size is None else str(version.data_size),
                final_loss(version.metrics),
                version.adapter_path or "",
            )
            item = QTreeWidgetItem(list(cells))
            item.setData(0, Qt.ItemDataRole.UserRole, version.id)
            if version.is_active:
                font = QFont(item.font(0))
                font.setBold(True)
                item.setFont(0, font)
            parent = items.get(version.parent_id)
            (parent.addChild(item) if parent else self.tree.addTopLevelItem(item))
            items[version.id] = item
        self.tree.expandAll()
        self._update_buttons()

    def active_version(self):
        return next((v for v in self.versions.values() if v.is_active), None)

    def selected_version(self):
        items = self.tree.selectedItems()
        return self.versions.get(items[0].data(0, Qt.ItemDataRole.UserRole)) if items else None

    def _update_buttons(self) -> None:
        version = self.selected_version()
        active = self.active_version()
        answers = version is not None and version.kind in POLICY_KINDS  # a reward model only scores
        self.activate_button.setEnabled(answers and not version.is_active)
        self.activate_button.setToolTip(
            "A reward model scores answers; it does not answer questions itself"
            if version is not None and not answers
            else ""
        )
        self.delete_button.setEnabled(version is not None and not version.is_active)
        self.score_button.setEnabled(version is not None and version.kind == "reward")
        self.rollback_button.setEnabled(active is not None)
        self.base_button.setEnabled(active is not None)

    def activate_selected(self) -> None:
        version = self.selected_version()
        if version is not None and not version.is_active and version.kind in POLICY_KINDS:
            self.activate_requested.emit(version)

    def score_selected(self) -> None:
        version = self.selected_version()
        if version is not None and version.kind == "reward":
            self.score_requested.emit(version)

    def roll_back(self) -> None:
        active = self.active_version()
        if active is not None:
            self.activate_requested.emit(self.versions.get(active.parent_id))

    def delete_selected(self) -> None:
        version = self.selected_version()
        if version is None:
            return
        answer = QMessageBox.question(
            self, "Delete version", f"Delete {version.name}? Its adapter files stay on disk."
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.ctx.tasks.start(self._delete(version.id), f"Deleting {version.name}")

    async def _delete(self, version_id: int) -> None:
        await self.ctx.store.run(Store.delete_model_version, version_id)
        self.refresh()
