"""Thousands of repaints through Python overrides of Qt virtuals, so a PySide6 ref-count regression shows.

PySide6 6.12.0 on CPython 3.11 drops a reference to None/True on every call into a Python ``paintEvent``
(pyqtgraph's ``paint`` too) and aborts with ``Fatal Python error: none_dealloc`` after ~100 pyqtgraph
updates or ~2,600 widget repaints (see the shared FACTS). The pin is PySide6-Essentials==6.11.3; if a
dependency bump brings the bad version back, this test kills the test process instead of passing.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QApplication, QWidget

PLOT_UPDATES = 3000
WIDGET_REPAINTS = 4000


class CountingWidget(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.paints = 0

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.drawText(10, 20, str(self.paints))
        painter.end()
        self.paints += 1


def test_pyqtgraph_plot_survives_thousands_of_updates(qtbot):
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(240, 160)
    plot.show()
    qtbot.waitExposed(plot)
    # Fixed axes: auto-ranging on every update costs 4 ms here, and the paints are what matter.
    plot.setXRange(0, 200)
    plot.setYRange(-1, 1)
    plot.disableAutoRange()
    curve = plot.plot()
    xs = np.arange(200, dtype=float)
    for step in range(PLOT_UPDATES):
        curve.setData(xs, np.sin(xs / 20 + step / 50))
        plot.repaint()
        QApplication.processEvents()
    assert curve.getData()[0].shape == (200,)


def test_plain_widget_survives_thousands_of_repaints(qtbot):
    widget = CountingWidget()
    qtbot.addWidget(widget)
    widget.resize(200, 60)
    widget.show()
    qtbot.waitExposed(widget)
    start = widget.paints
    for _ in range(WIDGET_REPAINTS):
        widget.repaint()
        QApplication.processEvents()
    assert widget.paints - start >= WIDGET_REPAINTS
