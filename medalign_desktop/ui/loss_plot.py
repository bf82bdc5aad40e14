"""Live training plots: the loss on top, then the curves that matter for the job's method.

    sft / hitl  learning rate
    dpo         reward accuracy (chosen scored above rejected), reward margin
    reward      pairwise accuracy (training and held-back slice), reward margin
    ppo         mean reward, KL to the reference, policy and value loss, clip fraction, answer length

Events can arrive far faster than a person can read a plot, so points go into a buffer and the curves
are redrawn by a timer (4 times a second) only when something changed - never once per event.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from medalign_desktop.ui.style import colour_plot, plot_colours, theme_manager

REDRAW_MS = 250


@dataclass(frozen=True)
class Curve:
    metric: str  # the name in the job's metric events (TRL's names are kept: "rewards/accuracies")
    colour: str
    legend: str
    dots: bool = False  # evaluation values come every few steps: show the points


@dataclass(frozen=True)
class Panel:
    title: str
    curves: tuple[Curve, ...]


LOSS = Panel(
    "loss", (Curve("loss", "#2f6fb3", "training"), Curve("eval_loss", "#d9822b", "evaluation", True))
)
LEARNING_RATE = Panel("learning rate", (Curve("learning_rate", "#5c7080", "learning rate"),))
PANELS: dict[str, tuple[Panel, ...]] = {
    "sft": (LOSS, LEARNING_RATE),
    "hitl": (LOSS, LEARNING_RATE),
    "dpo": (
        LOSS,
        Panel("reward accuracy", (
            Curve("rewards/accuracies", "#1e7b34", "training"),
            Curve("eval_rewards/accuracies", "#d9822b", "evaluation", True),
        )),
        Panel("reward margin", (
            Curve("rewards/margins", "#7b3fa0", "training"),
            Curve("eval_rewards/margins", "#d9822b", "evaluation", True),
        )),
    ),
    "reward": (
        LOSS,
        Panel("pairwise accuracy", (
            Curve("accuracy", "#1e7b34", "training"),
            Curve("eval_accuracy", "#d9822b", "held-back slice", True),
        )),
        Panel("reward margin", (
            Curve("margin", "#7b3fa0", "training"),
            Curve("eval_margin", "#d9822b", "held-back slice", True),
        )),
    ),
    "ppo": (
        LOSS,
        Panel("mean reward", (Curve("reward_mean", "#1e7b34", "mean reward"),)),
        Panel("KL to reference", (Curve("kl", "#b42318", "KL"),)),
        Panel("policy / value loss", (
            Curve("policy_loss", "#2f6fb3", "policy"),
            Curve("value_loss", "#d9822b", "value"),
        )),
        Panel("clip fraction", (Curve("clip_fraction", "#5c7080", "clip fraction"),)),
        Panel("answer length", (Curve("answer_length", "#7b3fa0", "tokens"),)),
    ),
}  # fmt: skip


def panels_for(kind: str | None) -> tuple[Panel, ...]:
    return PANELS.get(kind or "", PANELS["hitl"])


class MetricBuffer:
    """Points per metric name, appended as events arrive; ``dirty`` until drawn."""

    def __init__(self) -> None:
        self.series: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        self.dirty = False

    def add(self, step: float, values: dict[str, float]) -> None:
        for name, value in values.items():
            if value is not None:
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
    """The plots of one job. ``set_kind`` chooses the panels; the buffer keeps every metric it is given."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.buffer = MetricBuffer()
        self.redraws = 0
        self.kind: str | None = None
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.plots: list[pg.PlotItem] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.canvas = pg.GraphicsLayoutWidget()
        layout.addWidget(self.canvas)
        self.set_kind("hitl")
        self.apply_theme()
        if (themes := theme_manager()) is not None:
            themes.changed.connect(self.apply_theme)  # light / dark while the window is open
        self.timer = QTimer(self, interval=REDRAW_MS)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    @property
    def loss_plot(self) -> pg.PlotItem:
        return self.plots[0]

    def set_kind(self, kind: str | None) -> None:
        """Lay out the panels of ``kind``'s method (the loss across the top, the others two by two)."""
        if kind == self.kind and self.plots:
            return
        self.kind = kind
        self.canvas.clear()
        self.curves, self.plots = {}, []
        panels = panels_for(kind)
        for index, panel in enumerate(panels):
            row, col = (0, 0) if index == 0 else (1 + (index - 1) // 2, (index - 1) % 2)
            plot = self.canvas.addPlot(row=row, col=col, colspan=2 if index == 0 else 1)
            self._style(plot, panel, first=index == 0)
            for curve in panel.curves:
                self.curves[curve.metric] = plot.plot(
                    [], [], pen=pg.mkPen(curve.colour, width=2), name=curve.legend,
                    symbol="o" if curve.dots else None, symbolSize=5, symbolBrush=curve.colour,
                )  # fmt: skip
            self.plots.append(plot)
        self.canvas.ci.layout.setRowStretchFactor(0, 3 if len(panels) <= 3 else 2)
        self.buffer.dirty = True

    def apply_theme(self, _theme: str | None = None) -> None:
        """The canvas, titles and axes in the current theme's colours (the curves keep theirs)."""
        colours = plot_colours()
        self.canvas.setBackground(colours.background)
        for plot, panel in zip(self.plots, panels_for(self.kind), strict=True):
            self._colour(plot, panel)

    def _colour(self, plot: pg.PlotItem, panel: Panel) -> None:
        colour_plot(plot, panel.title)

    def _style(self, plot: pg.PlotItem, panel: Panel, *, first: bool) -> None:
        self._colour(plot, panel)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.getAxis("left").enableAutoSIPrefix(False)  # 1e-4, not "100" with a hidden (x1e-6)
        plot.setLabel("bottom", "step")
        if len(panel.curves) > 1:
            plot.addLegend(offset=(-10, 10))
        if not first:
            plot.setXLink(self.plots[0])

    def add_point(self, step: float, values: dict[str, float]) -> None:
        self.buffer.add(step, values)

    def show_series(self, points: list[tuple[int, str, float]], kind: str | None = None) -> None:
        """Replace the curves with stored points (step, name, value): a finished job's replay."""
        if kind is not None:
            self.set_kind(kind)
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
