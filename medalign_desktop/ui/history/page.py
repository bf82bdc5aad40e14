"""The History page: every verdict, newest first, searchable and filterable; open one to see or correct it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontMetrics, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from medalign_desktop.store import Store
from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.operations import Change
from medalign_desktop.ui.core.page_parts import (
    NO_DATE,
    RefreshedWhenShown,
    add_filters,
    date_edit,
    day,
    page_layout,
    refill_choices,
)
from medalign_desktop.ui.core.plain import plain
from medalign_desktop.ui.history.detail_dialog import FeedbackDetailDialog, keep_open
from medalign_desktop.ui.history.model import COLUMNS, REWARD_COLUMN, HistoryTableModel

SEARCH_DEBOUNCE_MS = 300
# the date edits' minimum, shown as "any"
# Widths of the short columns as sample texts; the question and answer columns share the rest, so at
# 1,280 px they are the widest. Long names, flags and versions, and "(withdrawn)" (also struck out), are
# elided (tooltips show them whole).
COLUMN_SAMPLES = ("24 Sep 19:02", "Dr Lindqvist", "Accepted", "Rating", "Missing red", "B-iter-12")


class HistoryTable(QTableView):
    """A table whose Enter key opens the selected row, like a double-click."""

    open_requested = Signal(QModelIndex)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.open_requested.emit(self.currentIndex())
        else:
            super().keyPressEvent(event)


class HistoryPage(RefreshedWhenShown, QWidget):
    detail_opened = Signal(object)  # the FeedbackDetailDialog

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = context
        self.model = HistoryTableModel(context, self)
        self._stale = True
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.apply_filters)
        self._build()
        context.store.changed.connect(self._store_changed)
        self.model.total_changed.connect(self._show_count)

    def _build(self) -> None:
        layout = page_layout(self)
        layout.addLayout(self._build_filters())
        self.table = HistoryTable()
        self.table.setObjectName("historyTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.verticalHeader().hide()
        # Fixed row heights: the view never measures 100,000 rows to lay them out.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(30)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        bold = QFont(self.table.font())
        bold.setBold(True)  # the verdict and the header are bold: measure the way they are drawn
        metrics = QFontMetrics(bold)
        for column, sample in enumerate(COLUMN_SAMPLES):  # the sample or the header, whichever is wider
            width = max(metrics.horizontalAdvance(sample), metrics.horizontalAdvance(COLUMNS[column]))
            self.table.setColumnWidth(column, width + 26)
        self.table.setColumnWidth(REWARD_COLUMN, metrics.horizontalAdvance("Reward") + 22)
        for column in (6, 7):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self.open_detail)
        self.table.open_requested.connect(self.open_detail)
        layout.addWidget(self.table, 1)

    def _build_filters(self) -> QVBoxLayout:
        rows = QVBoxLayout()
        top, bottom = QHBoxLayout(), QHBoxLayout()
        top.setSpacing(10)
        bottom.setSpacing(10)
        self.search = QLineEdit()
        self.search.setObjectName("searchBox")
        self.search.setPlaceholderText("Search questions and answers")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda: self._search_timer.start())
        self.count = plain(QLabel())
        self.count.setObjectName("metaLabel")
        self.clear_button = QPushButton("Clear filters")
        self.clear_button.setObjectName("secondaryButton")
        self.clear_button.clicked.connect(self.clear_filters)
        top.addWidget(self.search, 1)
        top.addWidget(self.count)
        top.addWidget(self.clear_button)
        self.verdict = self._combo("All verdicts", labels.verdicts())
        self.annotator = self._combo("All annotators", [])
        self.model_version = self._combo("All model versions", [])
        self.flag = self._combo("Any flag", labels.safety_flags())
        self.date_from, self.date_to = date_edit(), date_edit()
        self.withdrawn = QCheckBox("Show withdrawn")
        lists = (self.verdict, self.annotator, self.model_version, self.flag)
        add_filters(bottom, lists, (self.date_from, self.date_to), self.apply_filters)
        self.withdrawn.toggled.connect(self.apply_filters)
        bottom.addWidget(self.withdrawn)
        bottom.addStretch(1)
        rows.addLayout(top)
        rows.addLayout(bottom)
        return rows

    @staticmethod
    def _combo(everything: str, choices: list[tuple[str, str]]) -> QComboBox:
        combo = QComboBox()
        combo.addItem(everything, None)
        for code, text in choices:
            combo.addItem(text, code)
        return combo

    # ------------------------------------------------------------------ filters
    def filters(self) -> dict[str, Any]:
        return {
            "search": self.search.text().strip() or None,
            "verdict": self.verdict.currentData(),
            "annotator": self.annotator.currentData(),
            "model_version": self.model_version.currentData(),
            "flag": self.flag.currentData(),
            "date_from": day(self.date_from),
            "date_to": day(self.date_to),
            "include_withdrawn": self.withdrawn.isChecked(),
        }

    def clear_filters(self):
        widgets = (self.search, self.verdict, self.annotator, self.model_version, self.flag,
                   self.date_from, self.date_to, self.withdrawn)  # fmt: skip
        for widget in widgets:
            widget.blockSignals(True)
        self.search.clear()
        for combo in (self.verdict, self.annotator, self.model_version, self.flag):
            combo.setCurrentIndex(0)
        self.date_from.setDate(NO_DATE)
        self.date_to.setDate(NO_DATE)
        self.withdrawn.setChecked(False)
        for widget in widgets:
            widget.blockSignals(False)
        return self.apply_filters()

    def apply_filters(self):
        self._search_timer.stop()
        self._stale = False
        return self.model.set_filters(self.filters())

    def refresh(self):
        """Reload the choices of the filter lists and the rows."""
        self.ctx.tasks.start(self._refresh_choices(), "Loading the history filters")
        return self.apply_filters()

    async def _refresh_choices(self) -> None:
        names = await self.ctx.store.run(Store.annotators)
        versions = await self.ctx.store.run(Store.model_version_names)
        refill_choices(self.annotator, names)
        refill_choices(self.model_version, versions)

    def _show_count(self, total: int) -> None:
        self.count.setText(f"{total:,} verdict{'s' if total != 1 else ''}")

    def _store_changed(self, changes: Change) -> None:
        # Reload now if the clinician is looking at the page, else when it is next shown.
        if changes & (Change.VERDICTS | Change.SCORES):
            self.mark_stale()

    def scores_changed(self) -> None:
        """Answers were scored (a score job finished) or the scoring reward model changed: reload."""
        self.mark_stale()

    # ------------------------------------------------------------------ details
    def open_detail(self, index: QModelIndex) -> FeedbackDetailDialog | None:
        if not index.isValid():
            return None
        feedback_id = self.model.row_at(index.row()).feedback_id
        dialog = FeedbackDetailDialog(self.ctx, feedback_id, self)
        keep_open(dialog)
        dialog.load()
        self.detail_opened.emit(dialog)
        return dialog
