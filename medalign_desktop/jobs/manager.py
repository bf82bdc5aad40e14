"""The training job queue: one job at a time, from snapshot to registered model version.

    submit() -> job row "queued" -> snapshot into the job folder -> "running" (QProcess) -> events parsed:
    metrics stored (batched, once a second) and forwarded -> "succeeded" + a new model version, or
    "failed" with a readable reason, or "cancelled".

A stopped job of a kind that keeps checkpoints can be resumed (``resume``): it is queued again and its program
runs with ``--resume``. A successful job's version comes from its best or its last checkpoint (``version_from``)
and the other can become a version too (``add_checkpoint_version``); jobs/resume.py holds those rules.

A kind with ``store_results`` in jobs/kinds' APP_KINDS (``score``, ``evaluate``) makes no model version: on
success its result files are stored instead and ``results_ready`` is emitted.

Every database call goes through ``store_call`` (the app's single store thread), so the GUI thread never
waits on SQLite. QtCore only: no widgets, so the queue runs in tests without a window.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from medalign_desktop.jobs.command import DEFAULT_LAUNCHER, build_command, build_environment
from medalign_desktop.jobs.folder_lock import JobFolderLock, JobLockedError
from medalign_desktop.jobs.kinds import APP_KINDS
from medalign_desktop.jobs.process import JobProcess
from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.jobs.resume import (
    CheckpointOffer,
    ResumeError,
    ResumePlan,
    checkpoint_offer,
    register_checkpoint_version,
    reopen_for_resume,
    resume_plan,
    stopped_early_step,
    version_name,  # noqa: F401 - re-exported: the name rule lived here first
)
from medalign_desktop.jobs.running import (
    RunningJob,
    metric_values,
    prepare_job,
    register_version,
    snapshot_request,
)
from medalign_desktop.jobs.snapshot import SnapshotError
from medalign_desktop.store import Store
from training import protocol

T = TypeVar("T")
StoreCall = Callable[[Callable[[Store], T]], Awaitable[T]]

FLUSH_INTERVAL_MS = 1000
INTERRUPTED = "Interrupted: the app closed or crashed while this job was running."
# kind -> what stores a successful job's results (on the store thread) instead of registering a version
RESULT_KINDS: dict[str, Callable[..., Any]] = {
    name: spec.store_results for name, spec in APP_KINDS.items() if spec.store_results is not None
}
RESULT_ERRORS = tuple(s.result_error for s in APP_KINDS.values() if s.result_error)  # fail the job with it


class JobManager(QObject):
    job_changed = Signal(int)  # a job's state or data changed: re-read it
    metric = Signal(int, dict)  # job id, {"step", "loss", "learning_rate", ...}
    progress = Signal(int, int, int, float)  # job id, step, total, eta seconds (-1 unknown)
    log = Signal(int, str)
    version_ready = Signal(object)  # the ModelVersion registered by a successful job
    results_ready = Signal(int, str)  # job id, kind: a successful RESULT_KINDS job's results are stored
    idle = Signal()  # the queue is empty and nothing runs
    event = Signal(int, object)  # job id, every protocol event as parsed (timings, benchmarks)

    def __init__(
        self,
        store_call: StoreCall,
        jobs_root: str | Path,
        *,
        launcher: str = DEFAULT_LAUNCHER,
        env_extra: dict[str, str] | None = None,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.store_call = store_call
        self.jobs_root = Path(jobs_root)
        self.launcher = launcher
        self.env_extra = dict(env_extra or {})
        # waiting jobs: a new one (snapshot first) or a resumed one (its plan: folder and checkpoint)
        self._queue: list[tuple[int, JobRequest, ResumePlan | None]] = []
        self._running: RunningJob | None = None
        self._tasks: set[asyncio.Task] = set()
        # Awaited before every job's process starts (a new job or a resumed one): the memory planner makes
        # room there (unloads the answering model). Its exception fails the job with its message.
        self.before_launch: Callable[[int, JobRequest, Path], Awaitable[None]] | None = None
        # which checkpoint a successful job's version is made from: "best" (by evaluation) or "last"
        self.version_from = "best"
        self._flush_timer = QTimer(self, interval=FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(lambda: self._spawn(self._flush_metrics()))

    # ------------------------------------------------------------------------------------------ public
    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._queue)

    @property
    def running_job_id(self) -> int | None:
        return self._running.job_id if self._running else None

    async def recover(self, *, include_queued: bool = True) -> list[int]:
        """Mark jobs left queued or running by a crash as failed; returns their ids. A job whose folder lock
        another process holds (the app or a terminal on the same workspace) is running there and is left
        alone. A terminal passes ``include_queued=False``: a queued job may be waiting in the app's queue."""
        states = ("queued", "running") if include_queued else ("running",)

        def mark(store: Store) -> list[int]:
            stale = [
                j.id
                for j in store.list_jobs()
                if j.state in states and not JobFolderLock.held_elsewhere(self._folder_of(j))
            ]
            for job_id in stale:
                store.set_job_state(job_id, "failed", error=INTERRUPTED)
            return stale

        return await self.store_call(mark)

    async def submit(self, request: JobRequest) -> int:
        config = {
            "trigger": request.trigger,
            "parent_version_id": request.parent_version_id,
            **({"import_batch_ids": list(request.import_batch_ids)} if request.import_batch_ids else {}),
            **({"reward_adapter": request.reward_adapter} if request.reward_adapter else {}),
            **({"reward_version_id": request.reward_version_id} if request.reward_version_id else {}),
            **({"eval_versions": list(request.eval_versions)} if request.eval_versions else {}),
            **request.overrides,
        }
        job_id = await self.store_call(lambda store: store.create_job(request.kind, config))
        self._queue.append((job_id, request, None))
        self.job_changed.emit(job_id)
        if self._running is None:
            await self._start_next()
        return job_id

    async def cancel(self, job_id: int) -> None:
        if self._running and self._running.job_id == job_id:
            self._running.process.cancel()
            return
        if any(queued_id == job_id for queued_id, *_ in self._queue):
            self._queue = [entry for entry in self._queue if entry[0] != job_id]
            await self.store_call(lambda store: store.set_job_state(job_id, "cancelled"))
            self.job_changed.emit(job_id)

    async def resumable(self, job_id: int) -> bool:
        """Whether ``job_id`` (cancelled, failed or interrupted, of a kind that keeps checkpoints) can go on
        from its last checkpoint now."""
        if self._is_active(job_id):
            return False
        try:
            await self.store_call(lambda store: resume_plan(store, job_id))
        except ResumeError:
            return False
        return True

    async def resume(self, job_id: int) -> ResumePlan:
        """Continue a stopped job from its last checkpoint (queued behind a running job, as ``submit``): its
        metrics after that step are deleted so the curve goes on, and the program runs with ``--resume``.
        ResumeError says why a job cannot be resumed."""
        if self._is_active(job_id):
            raise ResumeError(f"Job #{job_id} is already queued or running.")
        plan = await self.store_call(lambda store: reopen_for_resume(store, job_id))
        self._queue.append((job_id, plan.request, plan))
        self.job_changed.emit(job_id)
        if self._running is None:
            await self._start_next()
        return plan

    async def checkpoint_offer(self, job_id: int) -> CheckpointOffer | None:
        """For a succeeded job whose best and last checkpoints differ: its version's and the other one."""
        return await self.store_call(lambda store: checkpoint_offer(store, job_id))

    async def add_checkpoint_version(self, job_id: int, which: str):
        """Make the ``which`` ("best" or "last") checkpoint of a succeeded job a version too (same parent
        and job), announced through ``version_ready`` (which activates it)."""
        version = await self.store_call(lambda store: register_checkpoint_version(store, job_id, which))
        self.job_changed.emit(job_id)
        self.version_ready.emit(version)
        return version

    async def stopped_early(self, job_id: int) -> int | None:
        """The step at which ``job_id`` stopped early (evaluation loss no longer improving), or None."""
        return await self.store_call(lambda store: stopped_early_step(store, job_id))

    def _folder_of(self, job) -> Path:
        return Path(job.job_dir) if job.job_dir else self.jobs_root / f"job-{job.id:05d}"

    def _is_active(self, job_id: int) -> bool:
        running = self._running is not None and self._running.job_id == job_id
        return running or any(queued_id == job_id for queued_id, *_ in self._queue)

    async def shutdown(self, grace_ms: int = 3000) -> None:
        """Cancel everything (used when the app closes)."""
        for job_id, *_ in list(self._queue):
            await self.cancel(job_id)
        if self._running:
            self._running.process.cancel(grace_ms)
            self._running.process.wait(grace_ms + 2000)

    # ------------------------------------------------------------------------------------------ starting
    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_next(self) -> None:
        while self._queue and self._running is None:
            job_id, request, plan = self._queue.pop(0)
            if plan is not None:
                await self._start_resumed(plan)
                continue
            if await self.store_call(lambda store, j=job_id: store.get_job(j).state) != "queued":
                continue  # cancelled from a terminal (`medalign jobs cancel`) while it waited here
            job_dir = self.jobs_root / f"job-{job_id:05d}"
            lock = self._lock(job_dir)
            snapshot = snapshot_request(request, seed=job_id)

            try:
                info = await self.store_call(
                    functools.partial(prepare_job, job_id=job_id, request=snapshot, job_dir=job_dir)
                )
            except (SnapshotError, OSError) as exc:
                lock.release()
                await self._end_job(job_id, "failed", str(exc))
                continue
            if not await self._before_launch(job_id, request, job_dir, lock):
                continue
            self._launch(job_id, request, job_dir, info.n_train, lock)
        if self._running is None:
            self.idle.emit()

    async def _start_resumed(self, plan: ResumePlan) -> None:
        try:
            lock = self._lock(plan.job_dir)
        except JobLockedError as exc:  # resumed in another window meanwhile: that one owns the job now
            self.log.emit(plan.job_id, str(exc))
            return
        await self.store_call(lambda store: store.set_job_state(plan.job_id, "running"))
        if await self._before_launch(plan.job_id, plan.request, plan.job_dir, lock):
            self._launch(plan.job_id, plan.request, plan.job_dir, plan.data_size, lock, resume=True)

    @staticmethod
    def _lock(job_dir: Path) -> JobFolderLock:
        """The job folder's lock, taken; JobLockedError when another process holds it."""
        lock = JobFolderLock(job_dir)
        lock.acquire()
        return lock

    async def _before_launch(
        self, job_id: int, request: JobRequest, job_dir: Path, lock: JobFolderLock
    ) -> bool:
        """Run the ``before_launch`` hook; False (the job failed with the hook's message) if it raised."""
        if self.before_launch is None:
            return True
        try:
            await self.before_launch(job_id, request, job_dir)
        except Exception as exc:  # noqa: BLE001 - the hook's message is the job's error
            lock.release()
            await self._end_job(job_id, "failed", str(exc) or type(exc).__name__)
            return False
        return True

    def _launch(
        self,
        job_id: int,
        request: JobRequest,
        job_dir: Path,
        data_size: int,
        lock: JobFolderLock,
        *,
        resume: bool = False,
    ) -> None:
        argv = build_command(request.kind, job_dir, launcher=self.launcher, resume=resume)
        env = build_environment(os.environ, extra=self.env_extra)
        process = JobProcess(argv, env, str(job_dir), parent=self)
        running = RunningJob(job_id, request, job_dir, process, data_size, lock=lock)
        process.event.connect(lambda event: self._on_event(running, event))
        process.log.connect(lambda text: self.log.emit(job_id, text))
        process.ended.connect(lambda code, crashed: self._spawn(self._on_ended(running, code, crashed)))
        process.started.connect(lock.record_process)
        process.start_failed.connect(lambda reason: self._spawn(self._on_start_failed(running, reason)))
        self._running = running
        self.job_changed.emit(job_id)
        self._flush_timer.start()
        process.start()

    # ------------------------------------------------------------------------------------------ events
    def _on_event(self, running: RunningJob, event: protocol.Event) -> None:
        self.event.emit(running.job_id, event)
        kind = event.EVENT
        if kind == "metric":
            values = metric_values(event)
            running.metric_rows += [(event.step, name, value) for name, value in values.items()]
            self.metric.emit(running.job_id, {"step": event.step, **values})
        elif kind == "progress":
            eta = event.eta_s if event.eta_s is not None else -1.0
            self.progress.emit(running.job_id, event.step, event.total, float(eta))
        elif kind == "log":
            self.log.emit(running.job_id, event.message)
        elif kind == "finished":
            running.finished = event
        elif kind == "failed":
            running.failed = event
        elif kind == "started":
            self.log.emit(
                running.job_id,
                f"Started: {event.n_train} examples, {event.total_steps} steps on {event.device}",
            )

    async def _flush_metrics(self) -> None:
        running = self._running
        if running is None or not running.metric_rows:
            return
        rows, running.metric_rows = running.metric_rows, []
        await self.store_call(lambda store: store.add_job_metrics(running.job_id, rows))

    # ------------------------------------------------------------------------------------------ ending
    async def _on_start_failed(self, running: RunningJob, reason: str) -> None:
        if self._running is running:
            await self._finish(running, "failed", reason)

    async def _on_ended(self, running: RunningJob, exit_code: int, crashed: bool) -> None:
        if self._running is not running:
            return
        await self._flush_metrics()
        adapter = Path(running.finished.adapter_path) if running.finished else None
        cancelled_elsewhere = (
            running.failed is not None and running.failed.reason == protocol.CANCELLED_REASON
        )
        if running.process.cancel_requested or cancelled_elsewhere:  # elsewhere: `medalign jobs cancel`
            await self._finish(running, "cancelled", "Cancelled by the user.")
        elif exit_code == 0 and not crashed and running.finished and running.request.kind in RESULT_KINDS:
            await self._store_results(running)
        elif exit_code == 0 and not crashed and adapter is not None and adapter.is_dir():
            version = await self.store_call(
                lambda store: register_version(store, running, adapter, self.version_from)
            )
            await self._finish(running, "succeeded", None)
            self.version_ready.emit(version)
        else:
            await self._finish(running, "failed", running.failure_reason(exit_code, crashed))

    async def _store_results(self, running: RunningJob) -> None:
        store_results = RESULT_KINDS[running.request.kind]
        call = functools.partial(store_results, job_id=running.job_id, job_dir=running.job_dir)
        try:
            await self.store_call(call)
        except RESULT_ERRORS as exc:
            await self._finish(running, "failed", str(exc))
            return
        await self._finish(running, "succeeded", None)
        self.results_ready.emit(running.job_id, running.request.kind)

    async def _finish(self, running: RunningJob, state: str, error: str | None) -> None:
        if running.ending:  # a start failure can be followed by a `finished` signal: end once
            return
        running.ending = True
        self._flush_timer.stop()
        if running.lock is not None:
            running.lock.release()
        await self._end_job(running.job_id, state, error)  # stored before the queue reports not busy
        self._running = None
        running.process.deleteLater()
        await self._start_next()

    async def _end_job(self, job_id: int, state: str, error: str | None) -> None:
        await self.store_call(lambda store: store.set_job_state(job_id, state, error=error))
        self.job_changed.emit(job_id)
