"""Jobs from a terminal through the app's own path: the JobManager on a QCoreApplication event loop (no window),
the Store on one thread of its own, as the app's StoreService keeps it.

    workspace = HeadlessWorkspace(db_path)
    outcome = workspace.run(lambda ws: ws.run_job(request, reporter))   # Ctrl+C cancels the running job

``run_job`` submits a JobRequest (snapshot -> job folder -> program -> version registered or results stored),
waits until the queue is idle and returns the JobOutcome. A job of another process on the same workspace is
left alone (jobs/folder_lock.py); SQLite's busy timeout makes the two writers wait for each other.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from medalign_desktop.jobs.command import DEFAULT_LAUNCHER
from medalign_desktop.jobs.job_files import jobs_folder
from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.store import Store

T = TypeVar("T")
SIGNAL_POLL_MS = 100  # Qt's loop runs in C: a timer lets Python see Ctrl+C this often


class JobReporter(Protocol):
    """What a terminal shows of a job (medalign_desktop/cli/progress.py)."""

    def progress(self, job_id: int, step: int, total: int, eta_s: float) -> None: ...
    def metric(self, job_id: int, values: dict) -> None: ...
    def log(self, job_id: int, text: str) -> None: ...
    def event(self, job_id: int, event: Any) -> None: ...
    def interrupted(self) -> None: ...


@dataclass(frozen=True)
class JobOutcome:
    job_id: int
    state: str  # succeeded, failed, cancelled
    error: str | None
    version: Any = None  # the ModelVersion a successful training job registered

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"


class HeadlessWorkspace:
    def __init__(self, db_path: str | Path, *, launcher: str = DEFAULT_LAUNCHER) -> None:
        self.db_path = Path(db_path)
        self.launcher = launcher
        self.jobs: Any = None  # the JobManager, made inside run() (it needs the Qt application)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._store: Store | None = None
        self._on_interrupt: Callable[[], Awaitable[None]] | None = None
        self._main: asyncio.Task | None = None

    async def store_call(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the store thread (the JobManager's StoreCall)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self._store)

    def run(self, main: Callable[[HeadlessWorkspace], Awaitable[T]]) -> T:
        """Open the workspace, run ``main(self)`` on a Qt event loop, close everything; Ctrl+C cancels."""
        import qasync
        from PySide6.QtCore import QCoreApplication, QTimer

        from medalign_desktop.jobs.manager import JobManager

        app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
        loop = qasync.QEventLoop(app, already_running=False)
        asyncio.set_event_loop(loop)
        self._store = self._executor.submit(Store.open, self.db_path).result()
        self.jobs = JobManager(self.store_call, jobs_folder(self.db_path), launcher=self.launcher)
        ticker = QTimer(interval=SIGNAL_POLL_MS)
        ticker.timeout.connect(lambda: None)
        ticker.start()
        previous = signal.signal(signal.SIGINT, lambda *_: loop.call_soon_threadsafe(self._interrupt))
        try:
            self._main = loop.create_task(self._guarded(main))
            try:
                return loop.run_until_complete(self._main)
            except asyncio.CancelledError:
                raise KeyboardInterrupt from None  # Ctrl+C between jobs: the command stops as any does
        finally:
            signal.signal(signal.SIGINT, previous)
            ticker.stop()
            self._executor.submit(self._store.close).result()
            self._executor.shutdown()
            loop.close()
            asyncio.set_event_loop(None)

    async def _guarded(self, main: Callable[[HeadlessWorkspace], Awaitable[T]]) -> T:
        try:
            return await main(self)
        finally:
            await self.jobs.shutdown(grace_ms=5000)  # nothing outlives the command

    def _interrupt(self) -> None:
        if self._on_interrupt is None:  # no job runs (a snapshot, a study between steps): stop the command
            if self._main is not None:
                self._main.cancel()
            return
        asyncio.ensure_future(self._on_interrupt())

    async def recover(self) -> list[int]:
        """Jobs a crashed app or terminal left "running" (none held by another process) become failed."""
        return await self.jobs.recover(include_queued=False)

    async def run_job(self, request: JobRequest, reporter: JobReporter) -> JobOutcome:
        """Submit ``request``, show it on ``reporter`` until the queue is idle; Ctrl+C cancels the job."""
        await self.recover()
        return await self._follow(reporter, lambda: self.jobs.submit(request))

    async def resume_job(self, job_id: int, reporter: JobReporter) -> JobOutcome:
        """Resume a stopped job from its last checkpoint (ResumeError says why not) and follow it."""
        await self.recover()

        async def start() -> int:
            await self.jobs.resume(job_id)
            return job_id

        return await self._follow(reporter, start)

    async def _follow(self, reporter: JobReporter, start: Callable[[], Awaitable[int]]) -> JobOutcome:
        idle, versions = asyncio.Event(), []
        jobs = self.jobs
        wiring = [
            (jobs.idle, idle.set), (jobs.version_ready, versions.append), (jobs.progress, reporter.progress),
            (jobs.metric, reporter.metric), (jobs.log, reporter.log), (jobs.event, reporter.event),
        ]  # fmt: skip
        for signal_, slot in wiring:
            signal_.connect(slot)
        try:
            job_id = await start()

            async def cancel() -> None:
                reporter.interrupted()
                await jobs.cancel(job_id)

            self._on_interrupt = cancel
            if jobs.busy:
                await idle.wait()
        finally:
            self._on_interrupt = None
            for signal_, slot in wiring:  # the next job of this workspace (a study) reports once
                signal_.disconnect(slot)
        job = await self.store_call(lambda store: store.get_job(job_id))
        version = next((v for v in versions if v.job_id == job_id), None)
        return JobOutcome(job_id, job.state, job.error, version)
