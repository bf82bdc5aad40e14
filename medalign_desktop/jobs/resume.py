"""Checkpoints seen from the app: resuming a stopped job, and which checkpoint becomes its version.

The training programs keep a job's last and best checkpoints (training/checkpoints.py, the one layout). Here:

- ``resume_plan``: whether a cancelled, failed or interrupted job can continue from its last checkpoint, and
  the request to run it again with (rebuilt from the job's stored config and its folder's config.json, so a
  job of an earlier session resumes too);
- ``version_source``: the adapter folder and metrics of the checkpoint chosen to become the version ("best":
  lowest evaluation loss, or "last"), or None for a job without checkpoints (its `finished` adapter is used);
- ``checkpoint_offer``: for a succeeded job whose best and last differ, which one became its version and the
  other, which the Train page offers to make a version too.

Functions taking a Store run on the store thread (they read the database and a few small files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medalign_desktop.jobs.job_types import JobRequest
from medalign_desktop.jobs.kinds import APP_KINDS, kinds_where
from training import checkpoints
from training.checkpoints import CheckpointInfo
from training.job_folder import CHECKPOINTS_DIR, CONFIG_FILE

if TYPE_CHECKING:
    from medalign_desktop.store import Store

VERSION_PREFIX = {name: spec.version_prefix for name, spec in APP_KINDS.items() if spec.version_prefix}
RESUMABLE_KINDS = kinds_where(resumable=True)  # the kinds whose programs keep checkpoints
VERSION_SOURCES = ("best", "last")
# keys the manager adds to a job's stored config beside the request's overrides
REQUEST_KEYS = (
    "trigger",
    "parent_version_id",
    "import_batch_ids",
    "reward_adapter",
    "reward_version_id",
    "eval_versions",
)
METRIC_NAMES = {"eval_loss": "eval loss", "eval_reward_mean": "eval reward"}


class ResumeError(Exception):
    """The job cannot be resumed; the message says why."""


@dataclass(frozen=True)
class ResumePlan:
    job_id: int
    request: JobRequest
    job_dir: Path
    checkpoint: CheckpointInfo  # the last checkpoint: the run continues after its step
    data_size: int


@dataclass(frozen=True)
class CheckpointOffer:
    """A succeeded job whose best and last checkpoints differ, seen from its versions."""

    version_name: str  # the version registered from ``chosen``
    chosen_which: str  # "best" or "last"
    chosen: CheckpointInfo
    other_which: str
    other: CheckpointInfo
    other_version: str | None  # the other checkpoint's version, once made


def version_name(kind: str, existing: list[str]) -> str:
    """Next free name like ``B-iter-3`` for this kind."""
    prefix = VERSION_PREFIX.get(kind, kind)
    number = sum(1 for name in existing if name.startswith(prefix + "-")) + 1
    while f"{prefix}-{number}" in existing:
        number += 1
    return f"{prefix}-{number}"


def add_version(
    store: Store,
    kind: str,
    parent_id: int | None,
    job_id: int,
    base_model: str | None,
    adapter: Path,
    data_size: int | None,
    metrics: dict[str, Any],
):
    """Register a job's adapter folder as the kind's next version; returns the ModelVersion."""
    names = [v.name for v in store.list_model_versions()]
    version_id = store.add_model_version(
        version_name(kind, names), kind, parent_id=parent_id, job_id=job_id, base_model=base_model,
        adapter_path=str(adapter), data_size=data_size, metrics=metrics,
    )  # fmt: skip
    return next(v for v in store.list_model_versions() if v.id == version_id)


def register_checkpoint_version(store: Store, job_id: int, which: str):
    """Make a succeeded job's ``which`` checkpoint a further version beside the one it made (same parent,
    base model and data; its metrics with the checkpoint's)."""
    job = store.get_job(job_id)
    source = version_source(job.job_dir, which) if job.job_dir else None
    made = [v for v in store.list_model_versions() if v.job_id == job_id]
    if job.state != "succeeded" or source is None or not made:
        raise ResumeError(f"Job #{job_id} has no {which} checkpoint to make a version from.")
    first = min(made, key=lambda v: v.id)
    adapter, extra = source
    metrics = {**first.metrics, **extra}
    return add_version(
        store, job.kind, first.parent_id, job_id, first.base_model, adapter, first.data_size, metrics
    )


def describe(checkpoint: CheckpointInfo) -> str:
    """'step 40, eval loss 1.23' (the metric's short name; 'not evaluated' without a value)."""
    if checkpoint.value is None:
        return f"step {checkpoint.step}, not evaluated"
    name = METRIC_NAMES.get(checkpoint.metric, checkpoint.metric.replace("_", " "))
    return f"step {checkpoint.step}, {name} {checkpoint.value:.3g}"


def version_source(job_dir: str | Path, which: str) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint folder ``which`` ("best" or "last") of a job and the metrics recording it, or None
    when the job kept no checkpoints."""
    if which not in VERSION_SOURCES:
        raise ValueError(f"A version comes from the 'best' or the 'last' checkpoint, not {which!r}.")
    best, last = checkpoints.find_best_and_last(job_dir)
    chosen = best if which == "best" else last
    if chosen is None:
        return None
    return chosen.path, checkpoint_metrics(which, chosen)


def checkpoint_metrics(which: str, checkpoint: CheckpointInfo) -> dict[str, Any]:
    return {
        "checkpoint": which,
        "checkpoint_step": checkpoint.step,
        "checkpoint_metric": checkpoint.metric,
        "checkpoint_value": checkpoint.value,
    }


def request_from_job(job, job_config: dict[str, Any]) -> JobRequest:
    """The request a stored job was started with, as far as a resumed run needs it (the data is already
    in its folder): ``job.config`` holds the overrides beside the manager's keys; config.json the paths."""

    stored = dict(job.config)
    overrides = {key: value for key, value in stored.items() if key not in REQUEST_KEYS}
    return JobRequest(
        job.kind,
        str(job_config.get("base_model") or ""),
        "",  # the system prompt is already in the snapshot's data files
        parent_version_id=stored.get("parent_version_id"),
        parent_adapter=job_config.get("parent_adapter"),
        overrides=overrides,
        trigger=str(stored.get("trigger") or "manual"),
        import_batch_ids=tuple(stored.get("import_batch_ids") or ()),
        reward_adapter=stored.get("reward_adapter") or job_config.get("reward_adapter"),
    )


def resume_plan(store: Store, job_id: int) -> ResumePlan:
    """How to resume ``job_id``; ResumeError saying why not (kind, state, folder, no checkpoint)."""
    job = store.get_job(job_id)
    if job.kind not in RESUMABLE_KINDS:
        raise ResumeError(f"Job #{job_id} ({job.kind}) keeps no checkpoints, so it cannot be resumed.")
    if job.state not in ("cancelled", "failed"):
        raise ResumeError(f"Job #{job_id} is {job.state}; only a cancelled or failed job can be resumed.")
    if not job.job_dir or not Path(job.job_dir).is_dir():
        raise ResumeError(f"Job #{job_id} has no job folder any more, so it cannot be resumed.")
    _best, last = checkpoints.find_best_and_last(job.job_dir)
    if last is None:
        raise ResumeError(
            f"Job #{job_id} stopped before its first checkpoint ({Path(job.job_dir) / CHECKPOINTS_DIR} has "
            "none), so there is nothing to resume from; start a new job instead."
        )
    config_file = Path(job.job_dir) / CONFIG_FILE
    try:
        job_config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResumeError(f"Job #{job_id}: {config_file} cannot be read ({exc}).") from None
    if not isinstance(job_config, dict):
        raise ResumeError(f"Job #{job_id}: {config_file} is not a JSON object.")
    return ResumePlan(job_id, request_from_job(job, job_config), Path(job.job_dir), last, job.data_size or 0)


def reopen_for_resume(store: Store, job_id: int) -> ResumePlan:
    """The job's resume plan, and the job queued again with its metrics after the checkpoint deleted."""
    plan = resume_plan(store, job_id)
    store.reopen_job(job_id, keep_through_step=plan.checkpoint.step)
    return plan


def checkpoint_offer(store: Store, job_id: int) -> CheckpointOffer | None:
    """For a succeeded job with a version made from one of two different checkpoints: that and the other."""
    job = store.get_job(job_id)
    if job.state != "succeeded" or not job.job_dir:
        return None
    best, last = checkpoints.find_best_and_last(job.job_dir)
    if best is None or last is None or best.path == last.path:
        return None
    versions = [v for v in store.list_model_versions() if v.job_id == job_id]
    by_which = {v.metrics.get("checkpoint"): v for v in versions if v.metrics.get("checkpoint")}
    first = min(by_which.values(), key=lambda v: v.id, default=None)
    if first is None:
        return None
    chosen_which = first.metrics["checkpoint"]
    other_which = "last" if chosen_which == "best" else "best"
    found = {"best": best, "last": last}
    other_version = by_which.get(other_which)
    return CheckpointOffer(
        first.name,
        chosen_which,
        found[chosen_which],
        other_which,
        found[other_which],
        other_version.name if other_version else None,
    )


def stopped_early_step(store: Store, job_id: int) -> int | None:
    """The step an early-stopped job stopped at, or None: its version's ``stopped_early`` metric (a step, or
    true with ``global_step``), else a ``stopped_early`` metric event's step."""
    for version in store.list_model_versions():
        if version.job_id == job_id and (step := _stopped_step(version.metrics)) is not None:
            return step
    logged = [m for m in store.job_metrics(job_id, "stopped_early") if m.value]
    return logged[-1].step if logged else None


def _stopped_step(metrics: dict[str, Any]) -> int | None:
    value = metrics.get("stopped_early")
    if value is True:
        value = metrics.get("global_step")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None
