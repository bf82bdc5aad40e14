"""The History table's model: verdicts paged in from the store 200 rows at a time, as the view scrolls.

Qt asks ``canFetchMore`` / ``fetchMore`` when the view nears the last loaded row; the page is fetched on the
store thread and inserted when it arrives, so 100,000 verdicts scroll without loading them all or ever
blocking the event loop. A filter change starts a new "epoch": pages still in flight for the old filters
are dropped when they arrive.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont

from medalign_desktop.store import HistoryRow, Store
from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core import operations as ops
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.plain import tip

PAGE_SIZE = 200
COLUMNS = ("Time", "Annotator", "Verdict", "Rating", "Flags", "Version", "Question", "Answer", "Reward")
REWARD_COLUMN = 8  # the answer's score by the scoring reward model (settings), blank when unscored
WITHDRAWN_COLOUR = QColor("#9aa1ab")
Index = QModelIndex | QPersistentModelIndex


def cell_text(row: HistoryRow, column: int) -> str:
    if column == 0:
        return labels.short_time(row.created_at)
    if column == 1:
        return row.annotator
    if column == 2:  # the reject reason is in the tooltip and the detail: the excerpts need the width
        return labels.verdict_label(row.verdict) + (" (withdrawn)" if row.withdrawn else "")
    if column == 3:
        return f"{row.rating} / 5" if row.rating else ""
    if column == 4:
        return ", ".join(labels.code_label(flag) for flag in row.flags)
    if column == 5:
        return row.model_version or ""
    if column == 6:
        return row.prompt_excerpt
    if column == REWARD_COLUMN:
        return "" if row.reward_score is None else f"{row.reward_score:.2f}"
    # An edit's row shows the corrected answer; its tooltip shows the model's original.
    return row.edited_excerpt if row.edited_excerpt is not None else row.answer_excerpt


class HistoryTableModel(QAbstractTableModel):
    total_changed = Signal(int)  # how many verdicts match the filters (not how many are loaded)
    page_loaded = Signal(int)  # rows loaded so far

    def __init__(self, context: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = context
        self.filters: dict[str, Any] = {}
        self.total = 0
        self._rows: list[HistoryRow] = []
        self._epoch = 0
        self._fetching = False
        self._exhausted = True
        self._task: asyncio.Task | None = None
        self.score_version = None  # the reward ModelVersion whose scores fill the Reward column

    # ------------------------------------------------------------------ Qt model API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            if section == REWARD_COLUMN:
                version = self.score_version
                return tip(f"Scores by the reward model {version.name}") if version else "No reward model yet"
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return tip(self._tooltip(row, column))  # Qt renders a tooltip that looks like HTML
        if role == Qt.ItemDataRole.TextAlignmentRole and column == REWARD_COLUMN:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if row.withdrawn:
                return WITHDRAWN_COLOUR
            if column == 2:
                return QColor(labels.VERDICT_COLOURS.get(row.verdict, "#333333"))
        if role == Qt.ItemDataRole.FontRole and (row.withdrawn or column == 2):
            font = QFont()
            font.setStrikeOut(row.withdrawn)
            font.setBold(column == 2 and not row.withdrawn)
            return font
        if role == Qt.ItemDataRole.UserRole:
            return row.feedback_id
        return None

    @staticmethod
    def _tooltip(row: HistoryRow, column: int) -> str | None:
        if column == 0:
            return labels.local_time(row.created_at, seconds=True)
        if column == 7 and row.edited_excerpt is not None:
            return f"Edited:\n{row.edited_excerpt}\n\nModel's original:\n{row.answer_excerpt}"
        if column == 2 and row.reject_reason:
            return f"{cell_text(row, 2)}: {labels.code_label(row.reject_reason).lower()}"
        if column in (2, 4, 5, 6, 7):  # the columns that may be elided
            return cell_text(row, column) or None
        return None

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008, N802
        return not parent.isValid() and not self._exhausted and not self._fetching

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008, N802
        if self.canFetchMore(parent):
            self._fetching = True
            self._task = self.ctx.tasks.start(self._fetch_page(self._epoch), "Loading the history")

    # ------------------------------------------------------------------ loading
    def row_at(self, row: int) -> HistoryRow:
        return self._rows[row]

    @property
    def loading(self) -> bool:
        return self._fetching

    def set_filters(self, filters: dict[str, Any]) -> asyncio.Task:
        self.filters = {key: value for key, value in filters.items() if value not in (None, "")}
        return self.refresh()

    def refresh(self) -> asyncio.Task:
        """Drop the loaded rows and load the first page for the current filters."""
        self._epoch += 1
        self.beginResetModel()
        self._rows = []
        self._exhausted = False
        self._fetching = True  # the first page is on its way; the view must not ask for another
        self.endResetModel()
        self._task = self.ctx.tasks.start(self._load_first_page(self._epoch), "Loading the history")
        return self._task

    async def _load_first_page(self, epoch: int) -> None:
        total = await self.ctx.store.run(Store.history_count, **self.filters)
        version = await self.ctx.store.run(ops.scoring_version, self.ctx.settings.scoring_reward_version)
        if epoch != self._epoch:
            return
        if version != self.score_version:
            self.score_version = version
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, REWARD_COLUMN, REWARD_COLUMN)
        self.total = total
        self.total_changed.emit(total)
        await self._fetch_page(epoch)

    async def _fetch_page(self, epoch: int) -> None:
        try:
            score_version_id = self.score_version.id if self.score_version else None
            rows = await self.ctx.store.run(
                Store.history, **self.filters, limit=PAGE_SIZE, offset=len(self._rows),
                score_version_id=score_version_id,
            )  # fmt: skip
        finally:
            if epoch == self._epoch:
                self._fetching = False
        if epoch != self._epoch:
            return
        if rows:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()
        self._exhausted = len(rows) < PAGE_SIZE
        self.page_loaded.emit(len(self._rows))

    async def wait_idle(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})
