"""Model versions and training jobs: simple records for the job runner and the Models page.

Later issues build the training workflow on top; this module only keeps the records consistent (unique
version names, one active version, legal job state changes with their timestamps).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.db import insert, query_one, query_value, require_row, transaction
from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.rows import Job, JobMetric, ModelVersion
from medalign_desktop.store.validation import check_choice, check_id, check_optional_number, check_text
from medalign_desktop.store.vocab import JOB_STATES, JOB_TRANSITIONS, TERMINAL_JOB_STATES


def _json(field: str, value: Any) -> str:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise StoreValidationError(field, f"must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise StoreValidationError(field, f"must be JSON-serialisable: {exc}") from None


def add_model_version(
    db: Database,
    clock: Callable[[], str],
    name: Any,
    kind: Any,
    *,
    parent_id: Any = None,
    job_id: Any = None,
    base_model: Any = None,
    adapter_path: Any = None,
    data_size: Any = None,
    metrics: Any = None,
) -> int:
    row = {
        "name": check_text("name", name),
        "kind": check_text("kind", kind),
        "parent_id": None if parent_id is None else check_id("parent_id", parent_id),
        "job_id": None if job_id is None else check_id("job_id", job_id),
        "base_model": check_text("base_model", base_model, required=False),
        "adapter_path": None if adapter_path is None else check_text("adapter_path", str(adapter_path)),
        "data_size": check_optional_number("data_size", data_size, integer=True),
        "metrics_json": _json("metrics", metrics),
        "created_at": clock(),
        "is_active": 0,
    }
    with transaction(db):
        if query_value(db, "SELECT 1 FROM model_versions WHERE name = ?", [row["name"]]) is not None:
            raise StoreValidationError("name", f"a model version named {row['name']!r} already exists")
        if row["parent_id"] is not None:
            require_row(db, "model_versions", row["parent_id"], "parent_id", "id")
        if row["job_id"] is not None:
            require_row(db, "jobs", row["job_id"], "job_id", "id")
        return insert(db, "model_versions", row)


def list_model_versions(db: Database) -> list[ModelVersion]:
    return [ModelVersion.from_row(r) for r in db.query("SELECT * FROM model_versions ORDER BY id")]


def set_active_model_version(db: Database, version_id: Any) -> None:
    """Mark one version active (None: none active, i.e. the bare base model)."""
    with transaction(db):
        if version_id is not None:
            require_row(db, "model_versions", check_id("version_id", version_id), "version_id", "id")
        db.execute("UPDATE model_versions SET is_active = 0 WHERE is_active = 1")
        if version_id is not None:
            db.execute("UPDATE model_versions SET is_active = 1 WHERE id = ?", [version_id])


def delete_model_version(db: Database, version_id: Any) -> None:
    """Remove a version nobody uses: not active, no child versions, no recorded answers.

    Versions with answers stay forever: verdicts point at them, and training history must stay traceable.
    The adapter files on disk are not touched.
    """
    check_id("version_id", version_id)
    with transaction(db):
        row = require_row(db, "model_versions", version_id, "version_id", "name, is_active")
        name = row["name"]
        if row["is_active"]:
            raise StoreValidationError(
                "version_id", f"{name!r} is the active version; activate another first"
            )
        children = query_value(db, "SELECT count(*) FROM model_versions WHERE parent_id = ?", [version_id])
        if children:
            raise StoreValidationError("version_id", f"{name!r} has {children} derived version(s)")
        answers = query_value(db, "SELECT count(*) FROM generations WHERE model_version_id = ?", [version_id])
        if answers:
            raise StoreValidationError("version_id", f"{name!r} has {answers} recorded answer(s)")
        db.execute("DELETE FROM model_versions WHERE id = ?", [version_id])


def active_model_version(db: Database) -> ModelVersion | None:
    row = query_one(db, "SELECT * FROM model_versions WHERE is_active = 1")
    return ModelVersion.from_row(row) if row else None


def create_job(db: Database, clock: Callable[[], str], kind: Any, config: Any, job_dir: Any = None) -> int:
    row = {
        "kind": check_text("kind", kind),
        "state": "queued",
        "config_json": _json("config", config),
        "job_dir": None if job_dir is None else check_text("job_dir", str(job_dir)),
        "created_at": clock(),
    }
    return insert(db, "jobs", row)


def get_job(db: Database, job_id: Any) -> Job:
    check_id("job_id", job_id)
    return Job.from_row(require_row(db, "jobs", job_id, "job_id"))


def list_jobs(db: Database, *, kind: str | None = None) -> list[Job]:
    if kind is None:
        rows = db.query("SELECT * FROM jobs ORDER BY id")
    else:
        rows = db.query("SELECT * FROM jobs WHERE kind = ? ORDER BY id", [kind])
    return [Job.from_row(r) for r in rows]


def set_job_state(
    db: Database, clock: Callable[[], str], job_id: Any, state: Any, *, error: Any = None
) -> None:
    """Move a job along queued -> running -> succeeded / failed / cancelled, stamping the times."""
    check_choice("state", state, JOB_STATES)
    error = check_text("error", error, required=False)
    with transaction(db):
        current = get_job(db, job_id).state
        if state not in JOB_TRANSITIONS[current]:
            raise StoreValidationError("state", f"job {job_id} cannot go from '{current}' to '{state}'")
        now = clock()
        db.execute(
            "UPDATE jobs SET state = ?, error = coalesce(?, error) WHERE id = ?", [state, error, job_id]
        )
        if state == "running":
            db.execute("UPDATE jobs SET started_at = ? WHERE id = ?", [now, job_id])
        if state in TERMINAL_JOB_STATES:
            db.execute("UPDATE jobs SET finished_at = ? WHERE id = ?", [now, job_id])


RESUMABLE_JOB_STATES = frozenset({"cancelled", "failed"})


def reopen_job(db: Database, job_id: Any, *, keep_through_step: Any) -> int:
    """Put a cancelled or failed job back in the queue to resume it from a checkpoint taken after step
    ``keep_through_step``: state "queued", its error and finish time cleared, and its stored metrics of later
    steps deleted (the resumed run logs them again), so its curve goes on without overlap. One transaction;
    returns how many metric rows were deleted."""
    step = check_optional_number("keep_through_step", keep_through_step, integer=True)
    if step is None:
        raise StoreValidationError("keep_through_step", "is required")
    with transaction(db):
        job = get_job(db, job_id)
        if job.state not in RESUMABLE_JOB_STATES:
            raise StoreValidationError(
                "state", f"job {job_id} is {job.state}; only a cancelled or failed job can be resumed"
            )
        db.execute(
            "UPDATE jobs SET state = 'queued', error = NULL, finished_at = NULL WHERE id = ?", [job_id]
        )
        cursor = db.execute("DELETE FROM job_metrics WHERE job_id = ? AND step > ?", [job_id, step])
        return cursor.rowcount


def update_job(db: Database, job_id: Any, *, job_dir: Any = None, data_size: Any = None) -> None:
    """Fill in what is only known once the job has snapshotted its data."""
    data_size = check_optional_number("data_size", data_size, integer=True)
    job_dir = None if job_dir is None else check_text("job_dir", str(job_dir))
    with transaction(db):
        get_job(db, job_id)
        db.execute(
            "UPDATE jobs SET job_dir = coalesce(?, job_dir), data_size = coalesce(?, data_size) WHERE id = ?",
            [job_dir, data_size, job_id],
        )


def _metric_row(job_id: int, item: Any, now: str) -> tuple[Any, ...]:
    """Accept ``{"step", "name", "value", "time"?}`` mappings or ``(step, name, value)`` tuples."""
    if isinstance(item, dict):
        step, name, value, time = (
            item.get("step"),
            item.get("name"),
            item.get("value"),
            item.get("time") or now,
        )
    elif isinstance(item, list | tuple) and len(item) in (3, 4):
        step, name, value = item[:3]
        time = item[3] if len(item) == 4 else now
    else:
        raise StoreValidationError(
            "rows", f"a metric must be a dict or a (step, name, value) tuple, got {item!r}"
        )
    check_text("rows.name", name)
    if step is not None:
        check_optional_number("rows.step", step, integer=True)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise StoreValidationError("rows.value", f"metric {name!r} value must be a number, got {value!r}")
    return job_id, step, name, value, time


def add_job_metrics(db: Database, clock: Callable[[], str], job_id: Any, rows: Iterable[Any]) -> None:
    check_id("job_id", job_id)
    now = clock()
    values = [_metric_row(job_id, item, now) for item in rows]
    with transaction(db):
        get_job(db, job_id)
        db.conn.executemany(
            "INSERT INTO job_metrics (job_id, step, name, value, time) VALUES (?, ?, ?, ?, ?)", values
        )


def job_metrics(db: Database, job_id: Any, name: str | None = None) -> list[JobMetric]:
    check_id("job_id", job_id)
    sql = "SELECT job_id, step, name, value, time FROM job_metrics WHERE job_id = ?"
    params: list[Any] = [job_id]
    if name is not None:
        sql += " AND name = ?"
        params.append(name)
    return [JobMetric(**row) for row in db.query(sql + " ORDER BY id", params)]
