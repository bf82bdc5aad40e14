"""What the Compare page shows, read in one go on the store thread, and the widgets that show it.

    load_compare_data(store) -> CompareData: answering versions (base first, then in creation order),
    the latest evaluation per version, the blind-review votes and their statistics (win rates with 95 %
    intervals, the Bradley-Terry ranking, safety-flag rates), and how many questions are held out.

The cell texts are plain functions of the stored figures, so a test can compare the table with
``Store.evaluation_results`` digit for digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from medalign_desktop.jobs.kinds import APP_KINDS
from medalign_desktop.jobs.requests import POLICY_KINDS
from medalign_desktop.report.stats import (
    WinRate,
    bradley_terry,
    flag_rates,
    overall_win_rates,
    win_rates,
)
from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core.page_parts import box_layout
from medalign_desktop.ui.core.plain import plain
from medalign_desktop.ui.core.plain import tip as plain_tip
from medalign_desktop.ui.core.style import colour_plot, plot_colours, theme_manager
from medalign_desktop.ui.core.widgets import card

BASE = "base"  # the base model alone, as evaluation results and votes name it
METRIC_COLUMNS = ("Version", "Method", "n", "Accuracy (MCQ)", "ROUGE-L", "BLEU", "Reward", "Length")
METRIC_TIPS = (
    "", "The training method (the research project's model letter)", "Held-out questions answered",
    "Multiple-choice questions answered with the key; an answer whose option cannot be read counts as wrong",
    "ROUGE-L F-measure against the reference answers (0-1)", "Corpus BLEU against the reference answers (0-100)",
    "Mean score of the answers by the scoring reward model", "Mean answer length in tokens",
)  # fmt: skip
METHOD_SHORT = {
    "base": "base model",
    **{name: spec.short_label for name, spec in APP_KINDS.items() if spec.short_label},
}
RANK_COLUMNS = ("#", "Version", "Strength", "Flagged")
DASH = "–"


@dataclass(frozen=True)
class VersionInfo:
    name: str  # "base" for the base model alone
    kind: str  # "base", "sft", "hitl", "dpo", "ppo"
    parent: str | None = None


@dataclass(frozen=True)
class CompareData:
    versions: tuple[VersionInfo, ...] = ()  # answering versions: base first, then in creation order
    results: dict[str, Any] = field(default_factory=dict)  # version -> its latest EvaluationResult
    win_rates: dict[tuple[str, str], WinRate] = field(default_factory=dict)  # both directions
    overall: dict[str, WinRate] = field(default_factory=dict)  # each version against all it met
    ranking: tuple[tuple[str, float], ...] = ()
    flag_rates: dict[str, Any] = field(default_factory=dict)
    n_votes: int = 0
    held_out: int = 0

    def evaluated(self) -> list[str]:
        """Evaluated versions in lineage order (a version evaluated, then deleted, comes last)."""
        order = [v.name for v in self.versions if v.name in self.results]
        return order + sorted(set(self.results) - set(order))

    def reviewed(self) -> list[str]:
        """Versions with blind-review votes, in lineage order."""
        names = {name for pair in self.win_rates for name in pair}
        order = [v.name for v in self.versions if v.name in names]
        return order + sorted(names - set(order))


def load_compare_data(store: Any) -> CompareData:
    """On the store thread: everything the Compare page shows."""
    registered = sorted(store.list_model_versions(), key=lambda v: v.id)
    by_id = {v.id: v.name for v in registered}
    versions = [VersionInfo(BASE, BASE)] + [
        VersionInfo(v.name, v.kind, by_id.get(v.parent_id)) for v in registered if v.kind in POLICY_KINDS
    ]
    votes = store.review_votes()
    return CompareData(
        versions=tuple(versions),
        results={result.version: result for result in store.evaluation_results(latest_only=True)},
        win_rates=dict(win_rates(votes)),
        overall=dict(overall_win_rates(votes)),
        ranking=tuple((name, float(strength)) for name, strength in bradley_terry(votes)),
        flag_rates=dict(flag_rates(votes)),
        n_votes=len(votes),
        held_out=store.held_out_count(),
    )


# ---------------------------------------------------------------------------------------- cell texts
def version_text(name: str) -> str:
    return "Base model" if name == BASE else name


def accuracy_text(metrics: dict) -> str:
    """'67% (4 of 6, 1 unparsed)'; unparsed answers count as wrong and are reported."""
    if metrics.get("accuracy") is None:
        return "no multiple-choice questions"
    unparsed = metrics.get("mcq_unparsed") or 0
    extra = f", {unparsed} unparsed" if unparsed else ""
    return f"{metrics['accuracy']:.0%} ({metrics.get('mcq_correct', 0)} of {metrics.get('n_mcq', 0)}{extra})"


def number_text(value: float | None, digits: int) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def metric_cells(name: str, kind: str, result: Any) -> list[str]:
    m = result.metrics
    return [
        version_text(name),
        METHOD_SHORT.get(kind, kind),
        str(m.get("n_questions", 0)),
        accuracy_text(m),
        number_text(m.get("rouge_l"), 3),
        number_text(m.get("bleu"), 1),
        number_text(m.get("reward_mean"), 3),
        number_text(m.get("mean_length_tokens"), 1),
    ]


def win_rate_text(rate: WinRate) -> str:
    """Two lines: '62%' and '48–75% · n 21' (the 95 % interval and the number of votes)."""
    return f"{rate.rate:.0%}\n{100 * rate.low:.0f}–{rate.high:.0%} · n {rate.n}"


def win_rate_tip(rate: WinRate) -> str:
    return (
        f"{version_text(rate.a)} beats {version_text(rate.b)} in {rate.rate:.0%} of {rate.n} votes "
        f"(wins {rate.wins}, ties {rate.ties}, losses {rate.losses}; ties count half). "
        f"95% interval {rate.low:.0%}–{rate.high:.0%}."
    )


def flag_text(flag_rate: Any | None) -> str:
    if flag_rate is None or not flag_rate.n:
        return DASH
    return f"{flag_rate.flagged} of {flag_rate.n} ({flag_rate.rate:.0%})"


# ---------------------------------------------------------------------------------------- widgets
def read_only(table: QTableWidget, columns: tuple[str, ...] = ()) -> None:
    """The shared look of the page's tables: read-only, no selection, never taking the keyboard."""
    if columns:
        table.setColumnCount(len(columns))
        table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.verticalHeader().setDefaultSectionSize(30)
    table.horizontalHeader().setHighlightSections(False)
    table.setWordWrap(False)


def cell(text: str, tip: str = "", *, align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if tip:
        item.setToolTip(plain_tip(tip) or "")  # version names and texts are content
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class Section(QWidget):
    """A card with a title whose body is either its content or a sentence saying what to do first."""

    def __init__(self, title: str, content: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        frame, body, self.caption = card(title)
        layout = box_layout(self)
        layout.addWidget(frame)
        self.stack = QStackedWidget()
        self.content = content
        self.message = plain(QLabel())
        self.message.setObjectName("hintLabel")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(content)
        self.stack.addWidget(self.message)
        body.addWidget(self.stack, 1)

    def show_content(self) -> None:
        self.stack.setCurrentWidget(self.content)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    @property
    def showing_message(self) -> bool:
        return self.stack.currentWidget() is self.message


class MetricsTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        read_only(self, METRIC_COLUMNS)
        self.verticalHeader().hide()
        for column, tip in enumerate(METRIC_TIPS):
            if tip:
                self.horizontalHeaderItem(column).setToolTip(tip)

    def show_data(self, data: CompareData) -> None:
        kinds = {v.name: v.kind for v in data.versions}
        names = data.evaluated()
        self.setRowCount(len(names))
        for row, name in enumerate(names):
            result = data.results[name]
            evaluated = f"Evaluated {labels.local_time(result.created_at)} (job #{result.job_id})"
            for column, text in enumerate(metric_cells(name, kinds.get(name, "removed"), result)):
                self.setItem(row, column, cell(text, evaluated, align_right=column >= 2))
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def texts(self) -> list[list[str]]:
        return [[self.item(r, c).text() for c in range(self.columnCount())] for r in range(self.rowCount())]


class WinRateMatrix(QTableWidget):
    """Row beats column: the rate (ties half), its 95 % interval and the number of votes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        read_only(self)
        self.verticalHeader().setDefaultSectionSize(46)  # two lines: the rate, then interval and n

    def show_data(self, data: CompareData) -> None:
        names = data.reviewed()
        self.clear()
        self.setRowCount(len(names))
        self.setColumnCount(len(names))
        heads = [version_text(n) for n in names]
        self.setHorizontalHeaderLabels(heads)
        self.setVerticalHeaderLabels(heads)  # the section's title says "row beats column"
        for row, a in enumerate(names):
            for column, b in enumerate(names):
                rate = None if a == b else data.win_rates.get((a, b))
                text = win_rate_text(rate) if rate else DASH
                item = cell(text, win_rate_tip(rate) if rate else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.setItem(row, column, item)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

    def rate_text(self, a: str, b: str) -> str | None:
        heads = [self.horizontalHeaderItem(c).text() for c in range(self.columnCount())]
        if version_text(a) not in heads or version_text(b) not in heads:
            return None
        return self.item(heads.index(version_text(a)), heads.index(version_text(b))).text()


class RankingTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        read_only(self, RANK_COLUMNS)
        self.verticalHeader().hide()
        self.setToolTip(
            "Bradley-Terry strength from the blind-review votes (higher is preferred; ties count half), "
            "and how many of each version's reviewed answers a clinician flagged"
        )

    def show_data(self, data: CompareData) -> None:
        ranked = [name for name, _ in data.ranking]
        flagged_only = [n for n in data.reviewed() if n not in ranked]
        self.setRowCount(len(ranked) + len(flagged_only))
        strengths = dict(data.ranking)
        for row, name in enumerate(ranked + flagged_only):
            values = (
                str(row + 1) if name in strengths else DASH,
                version_text(name),
                f"{strengths[name]:.2f}" if name in strengths else DASH,
                flag_text(data.flag_rates.get(name)),
            )
            for column, text in enumerate(values):
                self.setItem(row, column, cell(text, align_right=column in (0, 2)))
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)


class VersionPlots(QWidget):
    """Accuracy and win rate per version, in lineage order (the retrain iterations along the x axis)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = box_layout(self, QHBoxLayout)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.titles: dict[str, str] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for key, title, colour in (("accuracy", "accuracy (multiple choice)", "#1e7b34"),
                                   ("win_rate", "win rate in blind review", "#2f6fb3")):  # fmt: skip
            plot = pg.PlotWidget()
            self.titles[key] = title
            plot.showGrid(x=False, y=True, alpha=0.2)
            plot.setYRange(0, 100, padding=0.05)
            plot.setLabel("left", "%")
            plot.setMouseEnabled(x=False, y=False)
            plot.setMinimumHeight(150)
            self.curves[key] = plot.plot(
                [], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=7, symbolBrush=colour
            )
            self.plots[key] = plot
            layout.addWidget(plot, 1)
        self.apply_theme()
        if (themes := theme_manager()) is not None:
            themes.changed.connect(self.apply_theme)  # light / dark while the window is open

    def apply_theme(self, _theme: str | None = None) -> None:
        for key, plot in self.plots.items():
            plot.setBackground(plot_colours().background)
            colour_plot(plot, self.titles[key])

    def show_data(self, data: CompareData) -> None:
        names = [v.name for v in data.versions]
        series = {
            "accuracy": [
                (data.results[n].metrics.get("accuracy") if n in data.results else None) for n in names
            ],
            "win_rate": [data.overall[n].rate if n in data.overall else None for n in names],
        }
        for key, values in series.items():
            points = [(i, 100 * v) for i, v in enumerate(values) if v is not None]
            self.curves[key].setData([x for x, _ in points], [y for _, y in points])
            axis = self.plots[key].getAxis("bottom")
            axis.setTicks([[(i, version_text(n)) for i, n in enumerate(names)]])
            self.plots[key].setXRange(-0.5, max(len(names) - 0.5, 0.5), padding=0)

    def points(self, key: str) -> list[tuple[float, float]]:
        xs, ys = self.curves[key].getData()
        return [] if xs is None else list(zip(xs.tolist(), ys.tolist(), strict=True))
