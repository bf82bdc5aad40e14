"""Live training plots: loss (and evaluation loss) above, learning rate below.

Events can arrive far faster than a person can read a plot, so points go into a buffer and the curves
are redrawn by a timer (4 times a second) only when something changed - never once per event.
"""

from __future__ import annotations

from collections import defaultdict

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

REDRAW_MS = 250
CURVES = {  # metric name -> (plot, colour, legend)
    "loss": ("loss", "#2f6fb3", "training loss"),
    "eval_loss": ("loss", "#d9822b", "evaluation loss"),
    "learning_rate": ("lr", "#5c7080", "learning rate"),
}


class MetricBuffer:
    """Points per metric name, appended as events arrive; ``dirty`` until drawn."""

    def __init__(self) -> None:
        self.series: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        self.dirty = False

    def add(self, step: float, values: dict[str, float]) -> None:
        for name, value in values.items():
            if name in CURVES and value is not None:
                xs, ys = self.series[name]
                xs.append(float(step))
                ys.append(float(value))
                self.dirty = True

    def clear(self) -> None:
        self.series.clear()
        self.dirty = True

    def count(self, name: str) -> int:
        return len(self.series[name][0]) if name in self.series else 0


class LossPlot(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.buffer = MetricBuffer()
        self.redraws = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.loss_plot = pg.PlotWidget(background="w")
        self.loss_plot.setLabel("left", "loss")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.loss_plot.addLegend(offset=(-10, 10))
        self.lr_plot = pg.PlotWidget(background="w")
        self.lr_plot.setLabel("left", "learning rate")
        self.lr_plot.getAxis("left").enableAutoSIPrefix(False)  # 1e-4, not "100" with a hidden (x1e-6)
        self.lr_plot.setXLink(self.loss_plot)
        self.lr_plot.setMaximumHeight(140)
        layout.addWidget(self.loss_plot, 3)
        layout.addWidget(self.lr_plot, 1)
        self.curves = {}
        for name, (where, colour, legend) in CURVES.items():
            plot = self.loss_plot if where == "loss" else self.lr_plot
            self.curves[name] = plot.plot(
                [],
                [],
                pen=pg.mkPen(colour, width=2),
                name=legend,
                symbol="o" if name == "eval_loss" else None,
                symbolSize=5,
            )
        self.timer = QTimer(self, interval=REDRAW_MS)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    def add_point(self, step: float, values: dict[str, float]) -> None:
        self.buffer.add(step, values)

    def show_series(self, points: list[tuple[int, str, float]]) -> None:
        """Replace the curves with stored points (step, name, value): a finished job's replay."""
        self.buffer.clear()
        for step, name, value in points:
            self.buffer.add(step, {name: value})
        self.redraw()

    def redraw(self) -> None:
        if not self.buffer.dirty:
            return
        self.buffer.dirty = False
        self.redraws += 1
        for name, curve in self.curves.items():
            xs, ys = self.buffer.series[name] if name in self.buffer.series else ([], [])
            curve.setData(xs, ys)
