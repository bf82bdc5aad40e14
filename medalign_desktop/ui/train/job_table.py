"""The Train page's job list: one row a job, newest first, the state coloured; several rows can be selected
(finished jobs overlay their curves on the page's plot).

Every column fits the width it is given: the short ones take their contents' width and "Method", the
longest text, takes what is left, so no horizontal scroll bar hides a column at the default window size.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from medalign_desktop.ui.core import labels

COLUMNS = ("Job", "Method", "State", "Started", "Duration", "Examples")
STRETCH_COLUMN = COLUMNS.index("Method")
STATE_COLOURS = {"succeeded": "#1e7b34", "failed": "#b42318", "cancelled": "#6b7785", "running": "#1565c0"}


def run_label(job) -> str:
    """A job's name in an overlay's legend: "#3 A SFT"."""
    return f"#{job.id} {' '.join(labels.method_label(job.kind).split())}"


def compare_hint(chosen: list[int], compared: tuple[int, ...], jobs_by_id: dict) -> str | None:
    """What the plot shows when several jobs are selected (``compared``: the finished ones overlaid); None
    for one job."""
    if len(chosen) < 2:
        return None
    if not compared:
        return "Compare selected runs: select two or more finished jobs to overlay their plots."
    runs = ", ".join(run_label(jobs_by_id[j]) for j in compared)
    text = (
        f"Compare selected runs: {runs} overlaid, one colour per job, on the panels of "
        f"{run_label(jobs_by_id[compared[0]])} (the loss, and the other curves every run logged)."
    )
    left_out = [f"#{j}" for j in sorted(chosen) if j not in compared]
    if left_out:
        text += f" Not finished, so not shown: {', '.join(left_out)}."
    return text


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def job_duration(job, now: datetime) -> float | None:
    started = _parse_time(job.started_at)
    if started is None:
        return None
    finished = _parse_time(job.finished_at) or now
    return (finished - started).total_seconds()


class JobTable(QTableWidget):
    """The jobs, with each row's job id kept in its first cell."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setToolTip("Ctrl- or Shift-click two or more finished jobs to overlay their plots")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(STRETCH_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(40)
        self.setTextElideMode(
            Qt.TextElideMode.ElideRight
        )  # a narrow window elides "Method", never hides columns

    def show_jobs(self, jobs: list, now: datetime) -> None:
        """Fill the rows, newest job first (signals of the selection are the caller's to block)."""
        self.setRowCount(len(jobs))
        for row, job in enumerate(sorted(jobs, key=lambda j: j.id, reverse=True)):
            cells = (
                f"#{job.id}",
                labels.method_label(job.kind),
                job.state,
                labels.short_time(job.started_at or job.created_at),
                format_duration(job_duration(job, now)),
                "" if job.data_size is None else str(job.data_size),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, job.id)
                if column == 2 and job.state in STATE_COLOURS:
                    item.setForeground(QBrush(QColor(STATE_COLOURS[job.state])))
                self.setItem(row, column, item)

    def job_id(self, row: int) -> int:
        return self.item(row, 0).data(Qt.ItemDataRole.UserRole)

    def selected_ids(self) -> list[int]:
        return [self.job_id(index.row()) for index in self.selectionModel().selectedRows()]

    def select_jobs(self, job_ids: list[int], current: int | None) -> None:
        """Select the rows of ``job_ids`` (nothing else) and make ``current``'s row the current one."""
        selection = QItemSelection()
        for row in range(self.rowCount()):
            job_id = self.job_id(row)
            if job_id in job_ids:
                selection.select(self.model().index(row, 0), self.model().index(row, 0))
            if job_id == current:
                self.selectionModel().setCurrentIndex(
                    self.model().index(row, 0), QItemSelectionModel.SelectionFlag.NoUpdate
                )
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.selectionModel().select(selection, flags)
