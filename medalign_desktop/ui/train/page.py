"""The Train page: the job list, and for the selected job its live loss plot, progress, ETA and log.

Ctrl- or Shift-clicking two or more finished jobs overlays their stored curves on one plot to compare the
runs; the progress, ETA and log stay those of the job clicked last, and live points only reach a plot that
shows one job.

Buttons: Retrain now (Model B, incremental LoRA on the new feedback), SFT (Model A, on the imported reference
answers), DPO (Model D, on preference pairs), Reward model and PPO (Model C), Cancel, Resume (a stopped job
from its last checkpoint). The page asks for jobs through ``training_requested``; the training controller asks
for the data to use where there is a choice, builds the request (it knows the base model and the system
prompt) and submits it to the JobManager. Cancel, Resume and the checkpoint choices (ui/train/checkpoint_row.py:
which checkpoint new versions come from; making a finished job's other checkpoint a version) go to the
JobManager directly.
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from medalign_desktop.jobs.manager import JobManager
from medalign_desktop.jobs.resume import RESUMABLE_KINDS, ResumeError
from medalign_desktop.store import Store
from medalign_desktop.store.vocab import TERMINAL_JOB_STATES
from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.page_parts import box_layout
from medalign_desktop.ui.core.plain import plain
from medalign_desktop.ui.train.checkpoint_row import (
    CheckpointOfferRow,
    EarlyStoppingChoice,
    VersionSourceChoice,
)
from medalign_desktop.ui.train.job_table import (
    JobTable,
    compare_hint,
    format_duration,
    job_duration,
    run_label,
)
from medalign_desktop.ui.train.loss_plot import LossPlot

LOG_LINES = 5000


class TrainPage(QWidget):
    training_requested = Signal(str)  # job kind: "hitl", "sft", "dpo", "reward" or "ppo"

    def __init__(self, ctx: AppContext, jobs: JobManager, parent=None) -> None:
        super().__init__(parent)
        self.ctx, self.jobs = ctx, jobs
        self.selected_job: int | None = None  # the job whose details show: the one clicked last
        self.compared_jobs: tuple[int, ...] = ()  # two or more finished jobs overlaid, oldest first
        self.jobs_by_id: dict = {}
        self.live_points: dict[int, list[tuple[int, str, float]]] = defaultdict(list)
        self.live_logs: dict[int, deque[str]] = defaultdict(lambda: deque(maxlen=LOG_LINES))
        self.stopped_early: dict[int, int] = {}  # job id -> the step it stopped early at (evaluation)
        self._build()
        jobs.job_changed.connect(lambda _job: self.refresh())
        jobs.metric.connect(self._on_metric)
        jobs.progress.connect(self._on_progress)
        jobs.log.connect(self._on_log)

    # ----------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        self.retrain_button = QPushButton("Retrain now (B)")
        self.retrain_button.setObjectName("primaryButton")
        self.retrain_button.setToolTip(
            "Train a new LoRA adapter on the feedback collected since the last retrain"
        )
        self.sft_button = QPushButton("SFT (A)")
        self.sft_button.setToolTip("Fine-tune the base model on the imported questions' reference answers")
        self.dpo_button = QPushButton("DPO (D)…")
        self.dpo_button.setToolTip(
            "Direct preference optimisation of the active version on pairs of a better and a worse answer"
        )
        self.reward_button = QPushButton("Reward model…")
        self.reward_button.setToolTip("Train a reward model on preference pairs (the first step of Model C)")
        self.ppo_button = QPushButton("PPO (C)…")
        self.ppo_button.setToolTip(
            "Optimise the active version against a reward model with PPO, kept close to it by a KL penalty"
        )
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        for button, kind in (
            (self.retrain_button, "hitl"),
            (self.sft_button, "sft"),
            (self.dpo_button, "dpo"),
            (self.reward_button, "reward"),
            (self.ppo_button, "ppo"),
        ):
            button.clicked.connect(lambda _checked=False, kind=kind: self.training_requested.emit(kind))
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the selected stopped job from its last checkpoint")
        self.resume_button.setEnabled(False)
        self.resume_button.clicked.connect(self.resume_selected)
        self.counter_label = QLabel()
        self.counter_label.setObjectName("metaLabel")
        buttons = QHBoxLayout()
        for widget in (
            self.retrain_button,
            self.sft_button,
            self.dpo_button,
            self.reward_button,
            self.ppo_button,
            self.cancel_button,
            self.resume_button,
        ):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.counter_label)

        self.table = JobTable()
        self.table.itemSelectionChanged.connect(self._on_selection)

        self.title = QLabel("No job selected")
        self.title.setObjectName("positionLabel")
        self.compare_label = plain(QLabel())
        self.compare_label.setObjectName("metaLabel")
        self.compare_label.setWordWrap(True)
        self.compare_label.setVisible(False)
        self.error_label = plain(QLabel())  # job errors quote files and content
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b42318;")
        self.checkpoint_row = CheckpointOfferRow()
        self.checkpoint_row.make_version.connect(self.make_checkpoint_version)
        self.version_source = VersionSourceChoice()
        self.jobs.version_from = self.ctx.settings.version_from  # the choice is kept between sessions
        self.version_source.set_value(self.jobs.version_from)
        self.version_source.changed.connect(self._set_version_from)
        self.early_stopping = EarlyStoppingChoice()
        self.early_stopping.set_value(self.ctx.settings.early_stopping_patience)
        self.early_stopping.changed.connect(
            lambda patience: setattr(self.ctx.settings, "early_stopping_patience", patience)
        )
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.eta_label = QLabel()
        self.eta_label.setObjectName("metaLabel")
        self.plot = LossPlot()
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(LOG_LINES)
        self.log_view.setMaximumHeight(150)
        self.log_view.setPlaceholderText("The training program's log appears here.")

        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.addWidget(self.title)
        detail_layout.addWidget(self.compare_label)
        detail_layout.addWidget(self.error_label)
        detail_layout.addWidget(self.checkpoint_row)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.eta_label)
        detail_layout.addLayout(progress_row)
        detail_layout.addWidget(self.plot, 1)
        detail_layout.addWidget(self.log_view)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(detail)
        splitter.setSizes([700, 580])  # the job table shows every column at 1,280 px (no scroll bar)
        layout = box_layout(self, margins=(16, 16, 16, 16))
        # Under the buttons: how training goes (stop early, which checkpoint becomes a version), then the
        # memory planner's estimate and the GPU choice across the whole width (add_plan_widget).
        choices = QHBoxLayout()
        choices.addWidget(self.early_stopping)
        choices.addSpacing(24)
        choices.addWidget(self.version_source)
        choices.addStretch(1)
        self.plan_row = QHBoxLayout()
        layout.addLayout(buttons)
        layout.addLayout(choices)
        layout.addLayout(self.plan_row)
        layout.addWidget(splitter, 1)

    def add_plan_widget(self, widget: QWidget) -> None:
        """Put a widget in the row under the buttons (the memory planner's estimate and GPU choice)."""
        self.plan_row.addWidget(widget)

    # ----------------------------------------------------------------------------------------- data
    def refresh(self) -> None:
        self.ctx.tasks.start(self._refresh(), "Reading the job list")

    async def _refresh(self) -> None:
        if not self.ctx.store.is_open:
            return
        jobs = await self.ctx.store.run(Store.list_jobs)
        count = await self.ctx.store.run(Store.samples_since_last_retrain)
        self.show_counter(count)
        self.jobs_by_id = {job.id: job for job in jobs}
        now = datetime.now().astimezone()
        chosen = self.table.selected_ids() or ([self.selected_job] if self.selected_job is not None else [])
        self.table.blockSignals(True)
        self.table.show_jobs(jobs, now)
        self.table.select_jobs(chosen, self.selected_job)
        self.table.blockSignals(False)
        if self.selected_job is None and jobs:
            self.table.selectRow(0)
        elif self.selected_job in self.jobs_by_id:
            self._show_job_header(self.jobs_by_id[self.selected_job])
            if len(chosen) > 1:
                self._on_selection()  # a selected job may have finished: it joins the overlay
            elif not self.compared_jobs:
                # a job selected the moment it was submitted is known here first: show its method's panels
                self.plot.set_kind(self.jobs_by_id[self.selected_job].kind)
        self._update_actions()

    def show_counter(self, count: int) -> None:
        self.counter_label.setText(f"{count} new sample{'s' if count != 1 else ''} since the last retrain")

    def _update_actions(self) -> None:
        """Cancel for a queued or running job; Resume, the checkpoint offer and "stopped early" are asked of
        the JobManager off the GUI thread (they read the job's folder)."""
        self.cancel_button.setEnabled(self._selected_is_active())
        job = self.jobs_by_id.get(self.selected_job)
        if job is None:
            self.resume_button.setEnabled(False)
            self.checkpoint_row.show_offer(None, None)
            return
        self.ctx.tasks.start(self._check_job(job), "Reading the job's checkpoints")

    async def _check_job(self, job) -> None:
        stopped = job.state in ("cancelled", "failed") and job.kind in RESUMABLE_KINDS
        resumable = stopped and await self.jobs.resumable(job.id)
        finished = job.state == "succeeded"
        offer = await self.jobs.checkpoint_offer(job.id) if finished else None
        early = await self.jobs.stopped_early(job.id) if finished else None
        if self.selected_job != job.id:
            return  # another job was selected meanwhile: its own check shows
        self.resume_button.setEnabled(resumable)
        self.checkpoint_row.show_offer(job.id, offer)
        if early:
            self.stopped_early[job.id] = early
            self._show_job_header(job)

    def _selected_is_active(self) -> bool:
        job = self.jobs_by_id.get(self.selected_job)
        return job is not None and job.state in ("queued", "running")

    def _job_id(self, row: int) -> int:
        return self.table.job_id(row)

    def _on_selection(self) -> None:
        chosen = self.table.selected_ids()
        if not chosen:
            return
        current = self.table.currentRow()
        clicked = self._job_id(current) if current >= 0 else None
        # the details follow the row clicked last; a Ctrl-click that deselected it leaves them where they were
        job_id = (
            clicked if clicked in chosen else self.selected_job if self.selected_job in chosen else chosen[0]
        )
        finished = sorted(
            j for j in chosen if self.jobs_by_id.get(j) and self.jobs_by_id[j].state in TERMINAL_JOB_STATES
        )
        compared = tuple(finished) if len(finished) > 1 else ()
        if compared != self.compared_jobs:
            self.compared_jobs = compared
            if compared:
                self.ctx.tasks.start(self._load_overlay(compared), "Reading the jobs' metrics")
            else:
                self.selected_job = None  # back to one job: replay it
        if job_id != self.selected_job:
            self.selected_job = job_id
            self.ctx.tasks.start(self._load_job(job_id), "Reading the job's metrics")
        self._show_compare_hint(chosen)
        self._update_actions()

    def _show_compare_hint(self, chosen: list[int]) -> None:
        """Say what the plot shows when several jobs are selected (hidden for one)."""
        text = compare_hint(chosen, self.compared_jobs, self.jobs_by_id)
        self.compare_label.setText(text or "")
        self.compare_label.setVisible(text is not None)

    async def _load_overlay(self, job_ids: tuple[int, ...]) -> None:
        runs = []
        for job_id in job_ids:
            metrics = await self.ctx.store.run(Store.job_metrics, job_id)
            job = self.jobs_by_id[job_id]
            runs.append((run_label(job), job.kind, [(m.step, m.name, m.value) for m in metrics]))
        if self.compared_jobs == job_ids:  # the selection may have changed while reading
            self.plot.show_overlay(runs)

    async def _load_job(self, job_id: int) -> None:
        job = self.jobs_by_id.get(job_id)
        if job is None:
            return
        self._show_job_header(job)
        self.log_view.setPlainText("\n".join(self.live_logs.get(job_id, [])))
        if self.compared_jobs:
            return  # the plot shows the overlay
        if job_id == self.jobs.running_job_id:
            points = list(self.live_points[job_id])
        else:
            points = [(m.step, m.name, m.value) for m in await self.ctx.store.run(Store.job_metrics, job_id)]
        if self.selected_job == job_id and not self.compared_jobs:
            self.plot.show_series(points, kind=job.kind)

    def _show_job_header(self, job) -> None:
        step = self.stopped_early.get(job.id) if job.state == "succeeded" else None
        early = f", stopped early at step {step}" if step else ""
        self.title.setText(f"Job #{job.id}: {labels.method_label(job.kind)} ({job.state}{early})")
        self.error_label.setText(job.error or "")
        self.error_label.setVisible(bool(job.error))
        if job.state == "succeeded":
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.eta_label.setText(f"took {format_duration(job_duration(job, datetime.now().astimezone()))}")
        elif job.state != "running":
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.eta_label.setText("")

    # ----------------------------------------------------------------------------------------- live
    def _on_metric(self, job_id: int, values: dict) -> None:
        step = values.get("step", 0)
        points = [(step, name, value) for name, value in values.items() if name != "step"]
        self.live_points[job_id].extend(points)
        if job_id == self.selected_job and not self.compared_jobs:
            self.plot.add_point(step, {name: value for _, name, value in points})

    def _on_progress(self, job_id: int, step: int, total: int, eta_s: float) -> None:
        if job_id != self.selected_job:
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(step)
        self.progress.setFormat(f"step {step} of {total}")
        self.eta_label.setText(f"about {format_duration(eta_s)} left" if eta_s >= 0 else "estimating...")

    def _on_log(self, job_id: int, text: str) -> None:
        self.live_logs[job_id].append(text)
        if job_id == self.selected_job:
            self.log_view.appendPlainText(text)

    def cancel_selected(self) -> None:
        if self.selected_job is not None:
            self.cancel_button.setEnabled(False)
            self.ctx.tasks.start(self.jobs.cancel(self.selected_job), "Cancelling the job")

    def resume_selected(self) -> None:
        if self.selected_job is not None:
            self.resume_button.setEnabled(False)
            self.ctx.tasks.start(self._resume(self.selected_job), "Resuming the job")

    async def _resume(self, job_id: int) -> None:
        """Resume ``job_id``; its plot goes on from the stored points up to the checkpoint, then live ones."""
        self.live_points[job_id] = []
        try:
            plan = await self.jobs.resume(job_id)
        except ResumeError as exc:
            self.error_label.setText(str(exc))
            self.error_label.setVisible(True)
            return
        stored = await self.ctx.store.run(Store.job_metrics, job_id)
        kept = [(m.step, m.name, m.value) for m in stored if m.step is None or m.step <= plan.checkpoint.step]
        self.live_points[job_id] = kept + self.live_points[job_id]  # live points that came meanwhile last
        if self.selected_job == job_id and not self.compared_jobs:
            self.plot.show_series(list(self.live_points[job_id]), kind=plan.request.kind)

    def _set_version_from(self, value: str) -> None:
        self.jobs.version_from = self.ctx.settings.version_from = value

    def make_checkpoint_version(self, job_id: int, which: str) -> None:
        self.ctx.tasks.start(self.jobs.add_checkpoint_version(job_id, which), "Making a version")

    def select_job(self, job_id: int) -> None:
        """Show ``job_id`` alone (a job just submitted), whatever was selected or overlaid before."""
        listed = any(self._job_id(row) == job_id for row in range(self.table.rowCount()))
        self.table.blockSignals(True)
        self.table.select_jobs([job_id] if listed else [], job_id)
        self.table.blockSignals(False)
        self.selected_job = None if listed else job_id
        if listed:
            self._on_selection()
        else:
            self.compared_jobs = ()
            self._show_compare_hint([])
            self.refresh()
