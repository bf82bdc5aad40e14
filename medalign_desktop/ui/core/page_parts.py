"""Pieces every page builds the same way: its layouts, "any date" edits, and filter lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from PySide6.QtCore import QDate
from PySide6.QtWidgets import QBoxLayout, QComboBox, QDateEdit, QLabel, QVBoxLayout, QWidget

PAGE_MARGINS = (24, 18, 24, 18)  # left, top, right, bottom: every page the same
NO_DATE = QDate(2000, 1, 1)  # the date edits' minimum, shown as "any"


def box_layout(
    parent: QWidget,
    layout_class: type[QBoxLayout] = QVBoxLayout,
    margins: tuple[int, int, int, int] = (0, 0, 0, 0),
    spacing: int | None = None,
) -> QBoxLayout:
    """A row or column layout on ``parent``: flush with its edges unless ``margins`` (left, top, right,
    bottom) are given; the style's spacing unless ``spacing`` is."""
    layout = layout_class(parent)
    layout.setContentsMargins(*margins)
    if spacing is not None:
        layout.setSpacing(spacing)
    return layout


def page_layout(page: QWidget, layout_class: type[QBoxLayout] = QVBoxLayout, spacing: int = 12) -> QBoxLayout:
    """The page's outer layout, with the margins every page has."""
    return box_layout(page, layout_class, PAGE_MARGINS, spacing)


def date_edit() -> QDateEdit:
    """A date filter that starts as "any" (NO_DATE) and opens a calendar."""
    edit = QDateEdit()
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("yyyy-MM-dd")
    edit.setMinimumDate(NO_DATE)
    edit.setSpecialValueText("any")
    edit.setDate(NO_DATE)
    return edit


def day(edit: QDateEdit) -> date | None:
    """The date chosen, or None for "any"."""
    return None if edit.date() == NO_DATE else edit.date().toPython()


def add_filters(
    row: QBoxLayout,
    lists: Iterable[QComboBox],
    dates: tuple[QDateEdit, QDateEdit],
    on_change: Callable[[], object],
) -> None:
    """Put a page's filter lists and its From / To date edits in ``row``; any change calls ``on_change``."""
    for combo in lists:
        combo.currentIndexChanged.connect(on_change)
        row.addWidget(combo)
    for caption, edit in zip(("From", "To"), dates, strict=True):
        edit.dateChanged.connect(on_change)
        row.addWidget(QLabel(caption))
        row.addWidget(edit)


def refill_choices(combo: QComboBox, values: Iterable[str]) -> None:
    """Replace a filter list's values after its first item ("any"), keeping the choice if it is still
    there, without announcing the change (the page re-reads once, after all its lists are filled)."""
    current = combo.currentData()
    combo.blockSignals(True)
    while combo.count() > 1:
        combo.removeItem(1)
    for value in values:
        combo.addItem(value, value)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    combo.blockSignals(False)


class RefreshedWhenShown:
    """A page (mixed in before QWidget) that re-reads the database at once when it is on screen, else the
    next time it is shown. The page's ``refresh()`` sets ``_stale = False``; ``mark_stale()`` is called when
    what the page shows changed (a Change it watches, a finished job)."""

    _stale = True

    def mark_stale(self) -> None:
        self._stale = True
        if self.isVisible():  # type: ignore[attr-defined]
            self.refresh()  # type: ignore[attr-defined]

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)  # type: ignore[misc]
        if self._stale and self.ctx.store.is_open:  # type: ignore[attr-defined]
            self.refresh()  # type: ignore[attr-defined]
