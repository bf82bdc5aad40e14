"""The Compare page: model versions measured on the clinicians' held-out questions, side by side.

    tick versions -> Evaluate on held-out questions -> an `evaluate` job (progress on the Train page)
    -> results stored -> table of versions x metrics, plots over the retrain iterations
    choose A and B -> Start blind review -> votes -> win-rate matrix, Bradley-Terry ranking, flag rates
    Export report... -> the whole comparison as HTML (report.document) or as an A4 PDF drawn by Qt

Everything shown is read on the store thread in one call (:func:`compare_results.load_compare_data`) and
re-read after an evaluation job's results are stored, after each blind-review vote, and when the page is
shown after the store changed.
"""

from __future__ import annotations

import asyncio
import random
from datetime import date
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from medalign_desktop.report.document import ReportError, render_html, report_data, write_report
from medalign_desktop.ui.compare.report_pdf import write_pdf
from medalign_desktop.ui.compare.results import (
    BASE,
    CompareData,
    MetricsTable,
    RankingTable,
    Section,
    VersionPlots,
    WinRateMatrix,
    load_compare_data,
    version_text,
)
from medalign_desktop.ui.compare.review_flow import BlindReview
from medalign_desktop.ui.compare.review_widgets import BlindReviewView
from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.errors import EXPECTED_ERRORS, readable_message
from medalign_desktop.ui.core.operations import Change, query
from medalign_desktop.ui.core.page_parts import RefreshedWhenShown, box_layout, page_layout
from medalign_desktop.ui.core.plain import plain
from medalign_desktop.ui.core.widgets import card

REPORT_FILTERS = "HTML report (*.html);;PDF report, A4 (*.pdf)"
REPORT_NOTE = (
    "Writes the whole comparison: settings, metrics, win rates, ranking, flag rates and plots. Choose "
    "HTML (opens in any browser, prints well) or PDF (A4, drawn by Qt from the same report)."
)
NO_HELD_OUT = (
    "No held-out questions yet. Mark questions as held out: press H on the Annotate page, or use "
    "File > Hold out a share of an import... Then evaluate versions here."
)
NOT_EVALUATED = "Tick the versions to compare and press Evaluate on held-out questions."
TOO_FEW = "Evaluate at least two versions, then start a blind review to see win rates and a ranking."
REVIEW_TIP = (
    "One held-out question at a time, A's and B's answers in random order and unlabelled: "
    "1 / 2 / T / B to vote, S to skip, Esc to end"
)
NO_VOTES = "No blind-review votes yet: choose two evaluated versions and press Start blind review."
# What the page's figures are made of: held-out questions, reviews and comparisons, versions and results.
SHOWN = Change.QUESTIONS | Change.COMPARISONS | Change.VERSIONS | Change.EVALUATIONS


def report_html(store) -> str:
    """On the store thread: the report's HTML, for the PDF."""
    return render_html(report_data(store))


LOAD_DATA, REPORT_HTML, WRITE_REPORT = query(load_compare_data), query(report_html), query(write_report)


class ComparePage(RefreshedWhenShown, QWidget):
    evaluation_requested = Signal(list)  # version names ("base" for the base model)
    refreshed = Signal(object)  # CompareData, after each reload
    report_written = Signal(object)  # the report's Path

    def __init__(
        self, context: AppContext, parent: QWidget | None = None, *, rng: random.Random | None = None
    ) -> None:
        super().__init__(parent)
        self.ctx = context
        self.data = CompareData()
        self.unticked: set[str] = set()  # versions the user unticked (new versions come ticked)
        self._stale = True
        self._loading: asyncio.Task | None = None
        self._build()
        self.review = BlindReview(context, self.review_view, rng)
        self.review.vote_saved.connect(lambda _id: self.refresh())
        self.review.ended.connect(self._review_ended)
        context.store.changed.connect(self._store_changed)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = page_layout(self, QHBoxLayout, spacing=16)
        layout.addWidget(self._build_controls())
        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_results())
        self.review_view = BlindReviewView()
        self.stack.addWidget(self.review_view)
        layout.addWidget(self.stack, 1)

    def _build_controls(self) -> QWidget:
        column = QWidget()
        column.setFixedWidth(290)
        layout = box_layout(column, spacing=12)
        frame, body, _ = card("Versions")
        self.version_list = QListWidget()
        self.version_list.setObjectName("versionList")
        self.version_list.itemChanged.connect(self._version_ticked)
        self.evaluate_button = QPushButton("Evaluate on held-out questions")
        self.evaluate_button.setObjectName("primaryButton")
        self.evaluate_button.setStyleSheet("padding: 9px 8px;")  # the whole label fits the column
        self.evaluate_button.setToolTip(
            "Answer every held-out question with each ticked version (greedy, fixed settings) and measure "
            "the answers; answers generated before with the same settings are reused"
        )
        self.evaluate_button.clicked.connect(self.evaluate_clicked)
        self.held_out_label = QLabel()
        self.held_out_label.setObjectName("metaLabel")
        self.held_out_label.setWordWrap(True)
        for widget in (self.version_list, self.held_out_label, self.evaluate_button):
            body.addWidget(widget)
        layout.addWidget(frame, 1)
        layout.addWidget(self._build_review_controls())
        frame, body, _ = card("Report")
        self.export_button = QPushButton("Export report...")
        self.export_button.clicked.connect(self.choose_report_file)
        note = QLabel(REPORT_NOTE)
        note.setObjectName("metaLabel")
        note.setWordWrap(True)
        body.addWidget(self.export_button)
        body.addWidget(note)
        layout.addWidget(frame)
        self.status = plain(QLabel())
        self.status.setObjectName("feedbackLabel")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        return column

    def _build_review_controls(self) -> QWidget:
        frame, body, _ = card("Blind review")
        grid = QGridLayout()
        self.version_a, self.version_b = QComboBox(), QComboBox()
        for row, (caption, combo) in enumerate((("A", self.version_a), ("B", self.version_b))):
            grid.addWidget(QLabel(caption), row, 0)
            grid.addWidget(combo, row, 1)
        grid.setColumnStretch(1, 1)
        body.addLayout(grid)
        self.review_button = QPushButton("Start blind review")
        self.review_button.setObjectName("secondaryButton")
        self.review_button.setToolTip(REVIEW_TIP)
        self.review_button.clicked.connect(self.start_review)
        body.addWidget(self.review_button)
        return frame

    def _build_results(self) -> QWidget:
        panel = QWidget()
        layout = box_layout(panel, spacing=12)
        self.metrics = MetricsTable()
        self.metrics_section = Section("Metrics on held-out questions", self.metrics)
        self.matrix = WinRateMatrix()
        self.matrix_section = Section("Blind review: win rate, row beats column", self.matrix)
        self.ranking = RankingTable()
        self.ranking_section = Section("Ranking and safety flags", self.ranking)
        self.plots = VersionPlots()
        self.plots_section = Section("Over the retrain iterations", self.plots)
        self.settings_label = plain(QLabel())
        self.settings_label.setObjectName("metaLabel")
        self.metrics_section.caption.addWidget(self.settings_label)
        row = QHBoxLayout()
        row.setSpacing(12)
        row.addWidget(self.matrix_section, 1)
        row.addWidget(self.ranking_section, 1)
        layout.addWidget(self.metrics_section, 3)
        layout.addLayout(row, 3)
        layout.addWidget(self.plots_section, 3)
        return panel

    # ------------------------------------------------------------------ reading and showing
    def refresh(self) -> asyncio.Task | None:
        """Read everything again on the store thread, then show it."""
        if not self.ctx.store.is_open:
            return None
        self._stale = False
        self._loading = self.ctx.tasks.start(self._reload(), "Loading the comparison")
        return self._loading

    async def _reload(self) -> None:
        data = await self.ctx.store.run(LOAD_DATA)
        self.show_data(data)

    def show_data(self, data: CompareData) -> None:
        self.data = data
        self._fill_versions(data)
        self._fill_review_choices(data)
        n = data.held_out
        self.held_out_label.setText(
            f"{n:,} held-out question{'s' if n != 1 else ''}" if n else "No held-out questions yet."
        )
        evaluated = data.evaluated()
        if evaluated:
            self.metrics.show_data(data)
            self.metrics_section.show_content()
            self.settings_label.setText(self._settings_text(data))
        else:
            self.metrics_section.show_message(NO_HELD_OUT if not n else NOT_EVALUATED)
            self.settings_label.setText("")
        if data.win_rates:
            self.matrix.show_data(data)
            self.ranking.show_data(data)
            self.matrix_section.show_content()
            self.ranking_section.show_content()
        else:
            message = TOO_FEW if len(evaluated) < 2 else NO_VOTES
            self.matrix_section.show_message(message)
            self.ranking_section.show_message("The ranking appears with the first votes.")
        self.plots.show_data(data)
        if evaluated or data.win_rates:
            self.plots_section.show_content()
        else:
            self.plots_section.show_message("The plots appear once versions are evaluated.")
        self.refreshed.emit(data)

    @staticmethod
    def _settings_text(data: CompareData) -> str:
        settings = next(iter(data.results.values())).settings
        tokens = settings.get("max_new_tokens")
        return f"greedy · up to {tokens} tokens · seed {settings.get('seed', 0)}" if tokens else ""

    def _fill_versions(self, data: CompareData) -> None:
        self.version_list.blockSignals(True)
        self.version_list.clear()
        for version in data.versions:
            text = version_text(version.name)
            if version.kind != BASE:
                text += f"  ·  {labels.method_label(version.kind).split('  ')[-1]}"
            result = data.results.get(version.name)
            if result is not None:
                text += f"\nevaluated {labels.short_time(result.created_at)}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, version.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked = version.name not in self.unticked
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            self.version_list.addItem(item)
        self.version_list.blockSignals(False)

    def _version_ticked(self, item: QListWidgetItem) -> None:
        name = item.data(Qt.ItemDataRole.UserRole)
        if item.checkState() == Qt.CheckState.Checked:
            self.unticked.discard(name)
        else:
            self.unticked.add(name)

    def ticked_versions(self) -> list[str]:
        items = (self.version_list.item(i) for i in range(self.version_list.count()))
        return [i.data(Qt.ItemDataRole.UserRole) for i in items if i.checkState() == Qt.CheckState.Checked]

    def set_ticked(self, names: list[str]) -> None:
        for i in range(self.version_list.count()):
            item = self.version_list.item(i)
            ticked = item.data(Qt.ItemDataRole.UserRole) in names
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)

    def _fill_review_choices(self, data: CompareData) -> None:
        evaluated = data.evaluated()
        defaults = (evaluated[-1], evaluated[0]) if len(evaluated) >= 2 else ("", "")
        for combo, default in zip((self.version_a, self.version_b), defaults, strict=True):
            current = combo.currentData() or default
            combo.clear()
            for name in evaluated:
                combo.addItem(version_text(name), name)
            combo.setCurrentIndex(max(0, combo.findData(current)))
        self.review_button.setEnabled(len(evaluated) >= 2)
        self.review_button.setToolTip(REVIEW_TIP if len(evaluated) >= 2 else TOO_FEW)

    # ------------------------------------------------------------------ evaluation
    def evaluate_clicked(self) -> None:
        names = self.ticked_versions()
        if not self.data.held_out:
            self.show_status(NO_HELD_OUT, problem=True)
        elif not names:
            self.show_status("Tick at least one version to evaluate.", problem=True)
        else:
            self.show_status(f"Starting the evaluation of {', '.join(version_text(n) for n in names)}...")
            self.evaluation_requested.emit(names)

    def on_results_ready(self, job_id: int, kind: str) -> None:
        """A job's results are stored: an evaluation's figures are now in the store."""
        if kind == "evaluate":
            self.show_status(f"Evaluation finished (job #{job_id}).")
            self.refresh()

    # ------------------------------------------------------------------ blind review
    def start_review(self) -> asyncio.Task | None:
        a, b = self.version_a.currentData(), self.version_b.currentData()
        if not a or not b:
            self.show_status(TOO_FEW, problem=True)
            return None
        if a == b:
            self.show_status("Choose two different versions for A and B.", problem=True)
            return None
        self.stack.setCurrentWidget(self.review_view)
        self.setFocusProxy(self.review_view)  # Ctrl+6 and clicks give the keys to the review
        task = self.review.start(a, b)
        if task is None:
            self._review_ended()
        return task

    def _review_ended(self) -> None:
        self.setFocusProxy(None)
        self.stack.setCurrentIndex(0)
        self.setFocus()
        self.refresh()

    # ------------------------------------------------------------------ report
    def choose_report_file(self) -> None:
        folder = Path(str(self.ctx.settings.qsettings.value("export/folder", str(Path.home()), type=str)))
        default = folder / f"comparison-report-{date.today().isoformat()}.html"
        path, chosen_filter = QFileDialog.getSaveFileName(self, "Export report", str(default), REPORT_FILTERS)
        if path:
            path = Path(path)
            if not path.suffix:
                path = path.with_suffix(".pdf" if "PDF" in chosen_filter else ".html")
            self.export_report(path)

    def export_report(self, path: str | Path) -> asyncio.Task:
        """Write the report: PDF for a .pdf path, else HTML. Both are written atomically."""
        path = Path(path)
        self.export_button.setEnabled(False)
        self.show_status(f"Writing the report to {path}...")

        async def flow() -> None:
            try:
                if path.suffix.lower() == ".pdf":
                    write_pdf(await self.ctx.store.run(REPORT_HTML), path)
                else:
                    await self.ctx.store.run(WRITE_REPORT, path)
            except (ReportError, *EXPECTED_ERRORS) as exc:
                self.show_status(f"The report was not written: {readable_message(exc)[0]}", problem=True)
                return
            finally:
                self.export_button.setEnabled(True)
            self.ctx.settings.qsettings.setValue("export/folder", str(path.parent))
            self.show_status(f"Report written to {path}.")
            self.report_written.emit(path)

        return self.ctx.tasks.start(flow(), "Exporting the report")

    def show_status(self, text: str, *, problem: bool = False) -> None:
        self.status.setText(text)
        self.status.setProperty("problem", problem)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    # ------------------------------------------------------------------ staying current
    def _store_changed(self, changes: Change) -> None:
        if changes & SHOWN and not self.review.active:  # a review refreshes after each vote itself
            self.mark_stale()

    async def wait_loaded(self) -> None:
        while self._loading is not None and not self._loading.done():
            await asyncio.wait({self._loading})
