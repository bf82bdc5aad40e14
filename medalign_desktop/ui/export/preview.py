"""The Export page's preview: the first matching pairs or SFT answers as a read-only table of short texts.

A preference pair made by an edit usually differs from its original only near the end, so both answers are
shown from a few words before they first differ; tooltips hold the whole texts.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core.plain import tip

EXCERPT_CHARS = 160
SHARED_OPENING_MIN = 48  # answers sharing a longer opening are previewed from where they differ
DIVERGENCE_CONTEXT = 24  # characters of the shared opening kept before the difference
TOOLTIP_CHARS = 1500


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def from_divergence(chosen: str, rejected: str) -> tuple[str, str]:
    """Both answers from a few words before they first differ, so a one-row preview of an edit that
    changed only its end shows the change rather than the same opening twice."""
    shared = len(os.path.commonprefix([chosen, rejected]))
    if shared < SHARED_OPENING_MIN:
        return chosen, rejected
    cut = chosen.rfind(" ", 0, shared - DIVERGENCE_CONTEXT) + 1
    return "…" + chosen[cut:], "…" + rejected[cut:]


class PreviewModel(QAbstractTableModel):
    """The first matching records as read-only rows of short texts; tooltips hold the whole texts."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.columns: tuple[str, ...] = ()
        self._rows: list[tuple[str, ...]] = []
        self._shown: list[tuple[str, ...]] = []

    def set_rows(self, columns: tuple[str, ...], rows: list[tuple[str, ...]], shown=None) -> None:
        """``rows`` hold the whole texts; ``shown(row)`` (optional) gives the texts to show in the cells."""
        self.beginResetModel()
        self.columns, self._rows = columns, rows
        self._shown = [tuple(map(excerpt, shown(row) if shown else row)) for row in rows]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        text, shown = self._rows[index.row()][index.column()], self._shown[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return shown
        if role == Qt.ItemDataRole.ToolTipRole and shown != text:
            return tip(text[:TOOLTIP_CHARS])  # content: escaped, or Qt would render its HTML
        return None

    def row_texts(self, row: int) -> tuple[str, ...]:
        """The whole texts of a row."""
        return self._rows[row]

    def shown_texts(self, row: int) -> tuple[str, ...]:
        return self._shown[row]


PAIR_COLUMNS = ("Prompt", "Chosen", "Rejected", "Source", "Annotator")
SFT_COLUMNS = ("Question", "Answer", "Verdict", "Annotator", "Model version")


def pair_row(pair: Any) -> tuple[str, ...]:
    return (pair.prompt, pair.chosen, pair.rejected, labels.code_label(pair.source), pair.annotator or "")


def shown_pair(row: tuple[str, ...]) -> tuple[str, ...]:
    prompt, chosen, rejected, *rest = row
    return (prompt, *from_divergence(chosen, rejected), *rest)


def sft_row(example: Any) -> tuple[str, ...]:
    return (example.question, example.answer, labels.verdict_label(example.source),
            example.annotator or "", example.model_version or "")  # fmt: skip
