"""The memory planner in the running app: make room for a training job, and bring the answering model back.

    JobManager.before_launch(job N) -> estimate (training/memory.py) for the job's device, free memory
        (engine/devices.py) -> plan (jobs/memory_plan.py) -> unload the answering model if the job needs
        its room -> status bar + job log say what happened
    JobManager.idle -> the model was unloaded for a job -> reload it with the same settings, put the active
        version's adapter back -> "Reloaded <model> with <version> after job #N"

A planning problem (no estimate for this kind, an unreadable config) never stops a job: the job log says
why there is no plan and the job starts as before. The Train page's MemoryPanel shows the estimate for a
Retrain (B) job and the GPU choice; the chosen GPU reaches the jobs as their CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from medalign_desktop.engine import LoadedModel, ReleasedModel
from medalign_desktop.engine.devices import DeviceMemory, visible_device_id
from medalign_desktop.jobs.manager import JobManager
from medalign_desktop.jobs.memory_plan import (
    FITS,
    MAY_NOT_FIT,
    MemoryPlan,
    describe_bytes,
    estimate_job_memory,
    has_memory_estimate,
    job_device,
    job_settings,
    kind_defaults,
    plan_job_memory,
)
from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.train.memory_panel import MemoryPanel

PANEL_KIND, PANEL_TITLE = "hitl", "Retrain (B)"
NO_MODEL_TEXT = "Load a model to see how much memory a training job needs."
Estimate = Callable[..., Any]  # estimate_job_memory(kind, config, model_dir, *, device) -> MemoryEstimate


def model_device_key(device: str) -> str:
    """A LoadPlan device as a DeviceMemory key: "cuda" is torch's current device, cuda:0 in this app."""
    return "cuda:0" if device == "cuda" else device


def plan_on_devices(
    kind: str,
    settings: dict,
    model_dir: str,
    devices: list[DeviceMemory],
    *,
    gpu_index: int,
    loaded: LoadedModel | None,
    estimate: Estimate,
) -> tuple[Any, MemoryPlan]:
    """(estimate, plan) for a job on the device it will run on: the chosen GPU when the job runs on CUDA
    (the first one if that GPU is gone), else the CPU. The answering model counts as room to be had only
    when it lives on that same device."""
    gpus = [d for d in devices if d.is_cuda]
    if job_device(settings, bool(gpus)) == "cuda":
        device = next((g for g in gpus if g.index == gpu_index), gpus[0])
    else:
        device = next(d for d in devices if not d.is_cuda)
    needed = estimate(kind, settings, model_dir, device="cuda" if device.is_cuda else "cpu")
    on_device = loaded is not None and model_device_key(loaded.plan.device) == device.key
    answering = loaded.memory_bytes if on_device else 0
    plan = plan_job_memory(needed.total_bytes, device.free_bytes, answering, device_label=device.label())
    return needed, plan


class MemoryPlanner(QObject):
    status_message = Signal(str)  # one sentence for the status bar
    model_released = Signal(str)  # the answering model was unloaded for a job: why, for the Annotate page
    model_restored = Signal(object)  # LoadedModel: the answering model is back after the jobs

    def __init__(
        self,
        ctx: AppContext,
        jobs: JobManager,
        *,
        restore_version: Callable[[], Awaitable[str | None]],
        settings_for: Callable[[str], dict] = lambda _kind: {},
        estimate: Estimate = estimate_job_memory,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.ctx, self.jobs = ctx, jobs
        self.restore_version = restore_version  # puts the workspace's active version back on the model
        self.settings_for = settings_for  # the overrides a job of this kind would get
        self.estimate = estimate
        # the devices and their free memory; tests put in figures of their own
        self.read_devices: Callable[[], Awaitable[list[DeviceMemory]]] = ctx.engine.device_memory
        self.gpu_index = 0  # torch's index in this process; jobs see it as their cuda:0
        self.released: ReleasedModel | None = None  # the answering model while unloaded for a job
        self.released_for: int | None = None  # the job it was unloaded for
        self.notes: dict[int, str] = {}  # job id -> the plan's sentence when it is worth saying
        self._reload: asyncio.Task | None = None
        self.panel = MemoryPanel()
        self.panel.shown.connect(self.refresh_panel)
        self.panel.gpu_chosen.connect(self.choose_gpu)
        self._panel_timer = QTimer(self, singleShot=True, interval=100)  # one refresh for a burst of causes
        self._panel_timer.timeout.connect(self._start_panel_update)
        jobs.before_launch = self.before_launch
        jobs.idle.connect(self._on_idle)
        ctx.engine.model_loaded.connect(lambda _loaded: self.refresh_panel())

    # ------------------------------------------------------------------------------------- planning
    def base_model_path(self) -> str | None:
        """The base model jobs start from: the loaded one, or the one unloaded to make room."""
        loaded = self.ctx.engine.loaded
        if loaded is not None:
            return str(loaded.folder.path)
        return str(self.released.request.model_dir) if self.released else None

    def plan(
        self, kind: str, settings: dict, model_dir: str, devices: list[DeviceMemory]
    ) -> tuple[Any, MemoryPlan]:
        """(estimate, plan) for a job on the device it will run on (blocking: reads the model's config)."""
        return plan_on_devices(
            kind, settings, model_dir, devices, gpu_index=self.gpu_index, loaded=self.ctx.engine.loaded,
            estimate=self.estimate,
        )  # fmt: skip

    async def before_launch(self, job_id: int, request: JobRequest, job_dir: Path) -> None:
        """JobManager's hook: estimate, compare, and unload the answering model when the job needs room."""
        await self.wait_reloaded()  # a reload under way finishes first, so the plan sees the model
        if not has_memory_estimate(request.kind):
            return  # evaluate, score: nothing a clinician could act on to say; the job starts as before

        def work():
            kind, settings, model_dir = job_settings(job_dir)
            return self.plan(kind, settings, model_dir, devices)

        try:
            devices = await self.read_devices()
            estimate, plan = await asyncio.get_running_loop().run_in_executor(None, work)
        except (ValueError, OSError, KeyError, RuntimeError) as exc:
            self.jobs.log.emit(job_id, f"Memory: no estimate for this job ({exc}); it starts without a plan.")
            return
        sentence = plan.status_message(job_id)
        self.jobs.log.emit(job_id, f"Memory: the estimate is {estimate.describe()}. {sentence}")
        if plan.unload and self.ctx.engine.loaded is not None:
            await self._unload_for(job_id, plan)
        if plan.decision != FITS:
            self.notes[job_id] = sentence
            self.status_message.emit(sentence)

    async def _unload_for(self, job_id: int, plan: MemoryPlan) -> None:
        released = await self.ctx.engine.release()
        if released is not None and self.released is None:
            self.released, self.released_for = released, job_id
        self.model_released.emit(
            f"The answering model is unloaded while training job #{job_id} runs; it comes back when the job ends."
        )
        # Say what the job really has now: the figure the next reading of the device gives.
        after = [d for d in await self.read_devices() if d.label() == plan.device_label]
        if after:
            self.jobs.log.emit(
                job_id,
                f"Memory: {describe_bytes(after[0].free_bytes)} free on {plan.device_label} with the answering "
                "model unloaded.",
            )

    # ------------------------------------------------------------------------------------- reloading
    def _on_idle(self) -> None:
        self.refresh_panel()
        if self.released is None or self._reload is not None:
            return
        self._reload = self.ctx.tasks.start(self._restore(), "Reloading the answering model")

    async def _restore(self) -> None:
        released, job_id = self.released, self.released_for
        try:
            if self.ctx.engine.loaded is not None:  # a model was loaded by hand meanwhile: keep that one
                return
            self.status_message.emit(f"Reloading {released.label} after job #{job_id}...")
            try:
                loaded: LoadedModel = await self.ctx.engine.restore(released)
            except Exception as exc:  # the folder moved, memory still taken...: say so where it shows
                reason = (
                    f"The answering model could not be loaded again after job #{job_id} ({exc}). "
                    "Open it with File > Open model folder."
                )
                self.status_message.emit(reason)
                self.model_released.emit(reason)
                raise
            try:  # the workspace's active version (it may have changed while the model was away)
                version = await self.restore_version() or self.ctx.engine.adapter_name
            finally:
                self.model_restored.emit(loaded)  # after the version: the next answer is written with it
            self.status_message.emit(
                f"Reloaded {loaded.label} with {version or 'the base model only'} after job #{job_id}."
            )
        finally:
            self.released = self.released_for = self._reload = None

    async def wait_reloaded(self) -> None:
        """Wait for a reload under way (activating a new version waits, so it lands on the reloaded model)."""
        task = self._reload
        if task is not None and not task.done() and task is not asyncio.current_task():
            await asyncio.wait({task})

    # ------------------------------------------------------------------------------------- the panel
    def refresh_panel(self) -> None:
        self._panel_timer.start()

    def _start_panel_update(self) -> None:
        try:
            self.ctx.tasks.start(self.update_panel(), "Memory estimate")
        except RuntimeError:  # the event loop is gone: the app is closing
            pass

    def choose_gpu(self, index: int) -> None:
        """Jobs run on this GPU from now on (it is their cuda:0); the estimate compares with its memory."""
        self.gpu_index = index
        self.jobs.env_extra["CUDA_VISIBLE_DEVICES"] = visible_device_id(index)
        self.refresh_panel()

    async def update_panel(self) -> None:
        devices = await self.read_devices()
        self.panel.show_devices(devices, self.gpu_index)
        model_dir = self.base_model_path()
        if model_dir is None:
            self.panel.show_text(NO_MODEL_TEXT)
            return
        settings = {**kind_defaults(PANEL_KIND), **self.settings_for(PANEL_KIND), "base_model": model_dir}
        work = lambda: self.plan(PANEL_KIND, settings, model_dir, devices)  # noqa: E731
        try:
            _estimate, plan = await asyncio.get_running_loop().run_in_executor(None, work)
        except (ValueError, OSError, KeyError) as exc:
            self.panel.show_text(f"No memory estimate: {exc}", problem=True)
            return
        self.panel.show_text(plan.panel_text(PANEL_TITLE), problem=plan.decision == MAY_NOT_FIT)
