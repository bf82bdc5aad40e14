"""The job a JobManager runs now: its process, lock and what its events said; and the steps around it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medalign_desktop.jobs.folder_lock import JobFolderLock
from medalign_desktop.jobs.process import JobProcess
from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.jobs.resume import add_version, version_source
from medalign_desktop.jobs.snapshot import SnapshotRequest, write_snapshot
from medalign_desktop.store import Store
from training import protocol

METRIC_FIELDS = ("loss", "learning_rate", "grad_norm", "tokens_per_s", "eval_loss", "epoch")


@dataclass
class RunningJob:
    """The job whose process runs now, and what its events told so far."""

    job_id: int
    request: JobRequest
    job_dir: Path
    process: JobProcess
    data_size: int
    finished: Any = None  # the `finished` event, when it came
    failed: Any = None  # the `failed` event, when it came
    lock: JobFolderLock | None = None  # held while the process runs: no other instance starts this job
    metric_rows: list = field(default_factory=list)
    ending: bool = False

    def failure_reason(self, exit_code: int, crashed: bool) -> str:
        """The job's error: the program's `failed` event, else how the process ended and its last output."""
        if self.failed is not None:
            advice = getattr(self.failed, "advice", None)
            return self.failed.reason + (f" {advice}" if advice else "")
        tail = " | ".join(list(self.process.stderr_tail)[-3:])
        how = "was killed" if crashed else f"exited with code {exit_code}"
        return f"The training process {how} without finishing." + (f" Last output: {tail}" if tail else "")


def snapshot_request(request: JobRequest, *, seed: int) -> SnapshotRequest:
    """What the snapshot of a new job needs of its request (the seed: the job's id, so a re-run differs)."""
    return SnapshotRequest(
        request.kind, request.base_model, request.system_prompt, parent_adapter=request.parent_adapter,
        seed=seed, overrides=request.overrides, import_batch_ids=tuple(request.import_batch_ids),
        reward_adapter=request.reward_adapter, prompt_scope=request.prompt_scope, max_prompts=request.max_prompts,
        reward_version_id=request.reward_version_id, eval_versions=tuple(request.eval_versions),
    )  # fmt: skip


def prepare_job(store: Store, *, job_id: int, request: SnapshotRequest, job_dir: Path):
    """On the store thread: write the job folder, then mark the job running with its data size."""
    info = write_snapshot(store, request, job_dir)
    store.update_job(job_id, job_dir=job_dir, data_size=info.n_train)
    store.set_job_state(job_id, "running")
    return info


def metric_values(event: protocol.Metric) -> dict[str, float]:
    """The named fields and the program-specific extras (DPO's ``rewards/accuracies``, PPO's ``kl``, ...)."""
    values = {name: getattr(event, name, None) for name in METRIC_FIELDS}
    values.update(event.extra)
    return {
        name: float(value)
        for name, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def register_version(store: Store, running: RunningJob, adapter: Path, version_from: str):
    """On the store thread: the version of a successful job, from its ``version_from`` ("best" or "last")
    checkpoint when it kept checkpoints, else from the `finished` event's adapter."""
    metrics = dict(getattr(running.finished, "metrics", None) or {})
    source = version_source(running.job_dir, version_from)
    if source is not None:
        adapter, extra = source
        metrics.update(extra)
    request = running.request
    return add_version(
        store, request.kind, request.parent_version_id, running.job_id, request.base_model, adapter,
        running.data_size, metrics,
    )  # fmt: skip
