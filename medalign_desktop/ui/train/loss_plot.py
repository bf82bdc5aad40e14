"""Live training plots: the loss on top, then the curves that matter for the job's method.

    sft / hitl  learning rate
    dpo         reward accuracy (chosen scored above rejected), reward margin
    reward      pairwise accuracy (training and held-back slice), reward margin
    ppo         mean reward, KL to the reference, policy and value loss, clip fraction, answer length

Every method's evaluation values (``eval_`` + the training name, logged every few steps on a slice of the job's
data held back from training) are dotted curves beside the training ones: the loss; DPO's reward accuracy and
margin; the reward model's accuracy and margin; PPO's mean reward and KL.

Events can arrive far faster than a person can read a plot, so points go into a buffer and the curves
are redrawn by a timer (4 times a second) only when something changed - never once per event.

Past runs can be overlaid (``show_overlay``): each job's curves in its own colour from a fixed palette, on the
panels of the first job's method - the loss always, the other panels only for the metrics every job logged.
"""

from __future__ import annotations

from collections import defaultdict

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QWidget

from medalign_desktop.jobs.job_types import Curve, Panel
from medalign_desktop.jobs.kinds import APP_KINDS
from medalign_desktop.ui.core.page_parts import box_layout
from medalign_desktop.ui.core.style import colour_plot, plot_colours, theme_manager

REDRAW_MS = 250
# one colour per overlaid run, in order; readable on the light and the dark canvas
RUN_COLOURS = ("#2f6fb3", "#d9822b", "#1e7b34", "#b42318", "#7b3fa0", "#0f8b8d", "#8c564b", "#c2185b")
# Each kind's panels are data in its row of jobs/kinds' APP_KINDS (() for a kind that trains nothing:
# evaluate and score draw no plot, their progress bar and log say it all); this module draws them.
PANELS: dict[str, tuple[Panel, ...]] = {name: spec.panels for name, spec in APP_KINDS.items()}
NO_PLOT_TEXT = "This job trains nothing, so it draws no curves: its progress and log are below."


def panels_for(kind: str | None) -> tuple[Panel, ...]:
    return PANELS.get(kind or "", PANELS["hitl"])


def overlay_panels(kind: str | None, metrics: list[set[str]]) -> tuple[Panel, ...]:
    """``kind``'s panels cut to what runs logging ``metrics`` (one set per run) can be compared on: the loss
    panel always (any run's loss curves), the others with the curves every run has, empty panels left out."""
    if not panels_for(kind):
        return ()
    loss, *others = panels_for(kind)
    logged_by_any = set().union(*metrics) if metrics else set()
    shared = set.intersection(*metrics) if metrics else set()
    panels = [
        Panel(loss.title, tuple(c for c in loss.curves if c.metric == "loss" or c.metric in logged_by_any))
    ]
    for panel in others:
        curves = tuple(curve for curve in panel.curves if curve.metric in shared)
        if curves:
            panels.append(Panel(panel.title, curves))
    return tuple(panels)


def run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


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
        self.panels: tuple[Panel, ...] = ()
        # overlay of past runs: a buffer per run label ("#3 A SFT") and its curves by (label, metric)
        self.run_buffers: dict[str, MetricBuffer] = {}
        self.run_curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        layout = box_layout(self)
        self.canvas = pg.GraphicsLayoutWidget()
        layout.addWidget(self.canvas)
        self.no_plot_note = QLabel(NO_PLOT_TEXT)
        self.no_plot_note.setObjectName("hintLabel")
        self.no_plot_note.setWordWrap(True)
        self.no_plot_note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.no_plot_note.setVisible(False)
        layout.addWidget(self.no_plot_note)
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

    @property
    def comparing(self) -> bool:
        return bool(self.run_buffers)

    def set_kind(self, kind: str | None) -> None:
        """Lay out the panels of ``kind``'s method for one job (leaving an overlay, if one is shown)."""
        if kind == self.kind and self.plots and not self.comparing:
            return
        self.kind = kind
        self.run_buffers = {}
        self._lay_out(panels_for(kind), legends=False)
        for plot, panel in zip(self.plots, self.panels, strict=True):
            for curve in panel.curves:
                self.curves[curve.metric] = plot.plot(
                    [], [], pen=pg.mkPen(curve.colour, width=2), name=curve.legend,
                    symbol="o" if curve.dots else None, symbolSize=5, symbolBrush=curve.colour,
                )  # fmt: skip
        self.buffer.dirty = True

    def _lay_out(self, panels: tuple[Panel, ...], *, legends: bool) -> None:
        """Empty panels: the loss across the top, the others two by two (``legends``: on every panel)."""
        # The plots taken off the canvas stay referenced until the next layout: destroyed at once, a repaint
        # of the page soon after (another widget on it updating as a job of another kind started) crashed
        # in QGraphicsView.paintEvent (segfault; tests/gui/test_preference_training.py at the PPO step).
        self._retired_plots = self.plots
        self.canvas.clear()
        self.curves, self.run_curves, self.plots, self.panels = {}, {}, [], panels
        self.canvas.setVisible(bool(panels))
        self.no_plot_note.setVisible(not panels)
        for index, panel in enumerate(panels):
            row, col = (0, 0) if index == 0 else (1 + (index - 1) // 2, (index - 1) % 2)
            plot = self.canvas.addPlot(row=row, col=col, colspan=2 if index == 0 else 1)
            self._style(plot, panel, first=index == 0, legend=legends or len(panel.curves) > 1)
            self.plots.append(plot)
        self.canvas.ci.layout.setRowStretchFactor(0, 3 if len(panels) <= 3 else 2)

    def apply_theme(self, _theme: str | None = None) -> None:
        """The canvas, titles and axes in the current theme's colours (the curves keep theirs)."""
        colours = plot_colours()
        self.canvas.setBackground(colours.background)
        for plot, panel in zip(self.plots, self.panels, strict=True):
            self._colour(plot, panel)

    def _colour(self, plot: pg.PlotItem, panel: Panel) -> None:
        colour_plot(plot, panel.title)

    def _style(self, plot: pg.PlotItem, panel: Panel, *, first: bool, legend: bool) -> None:
        self._colour(plot, panel)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.getAxis("left").enableAutoSIPrefix(False)  # 1e-4, not "100" with a hidden (x1e-6)
        plot.setLabel("bottom", "step")
        if legend:
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

    def show_overlay(self, runs: list[tuple[str, str | None, list[tuple[int, str, float]]]]) -> None:
        """Overlay finished runs, each ``(label, kind, points)`` with points (step, name, value) as stored:
        the panels of the first run's kind (``overlay_panels``), each run's curves in its own colour."""
        if not runs:
            self.show_series([], kind=self.kind)  # nothing to compare: an empty one-job view
            return
        self.buffer.clear()  # the one-job view's points: a replay is read again when one job is selected
        self.run_buffers = {}
        for label, _kind, points in runs:
            buffer = self.run_buffers.setdefault(label, MetricBuffer())
            for step, name, value in points:
                buffer.add(step, {name: value})
        self.kind = runs[0][1]
        metrics = [set(buffer.series) for buffer in self.run_buffers.values()]
        self._lay_out(overlay_panels(self.kind, metrics), legends=True)
        for plot, panel in zip(self.plots, self.panels, strict=True):
            for index, (label, buffer) in enumerate(self.run_buffers.items()):
                for position, curve in enumerate(panel.curves):
                    if curve.metric in buffer.series or curve.metric == "loss":
                        legend = label if position == 0 else f"{label} {curve.legend}"
                        self.run_curves[(label, curve.metric)] = self._run_curve(
                            plot, curve, run_colour(index), legend
                        )
        for buffer in self.run_buffers.values():
            buffer.dirty = True
        self.redraw()

    @staticmethod
    def _run_curve(plot: pg.PlotItem, curve: Curve, colour: str, legend: str) -> pg.PlotDataItem:
        # a run's evaluation values: dashed with dots, so the run's two curves share its colour yet differ
        style = Qt.PenStyle.DashLine if curve.dots else Qt.PenStyle.SolidLine
        return plot.plot(
            [], [], pen=pg.mkPen(colour, width=2, style=style), name=legend,
            symbol="o" if curve.dots else None, symbolSize=5, symbolBrush=colour,
        )  # fmt: skip

    def redraw(self) -> None:
        buffers = (self.buffer, *self.run_buffers.values())
        if not any(buffer.dirty for buffer in buffers):
            return
        for buffer in buffers:
            buffer.dirty = False
        self.redraws += 1
        for name, curve in self.curves.items():
            curve.setData(*self._points(self.buffer, name))
        for (label, name), curve in self.run_curves.items():
            curve.setData(*self._points(self.run_buffers[label], name))

    @staticmethod
    def _points(buffer: MetricBuffer, name: str) -> tuple[list[float], list[float]]:
        return buffer.series[name] if name in buffer.series else ([], [])
