"""Snapshot what a training job needs from SQLite into its own folder.

The training process reads only this folder, so the database keeps one writer (the app), and a job can be
re-run or audited later from exactly the data it saw:

    <job_dir>/config.json       the training program's config (training/README.md)
    <job_dir>/data/...          the kind's data files, written by its row of jobs/kinds' APP_KINDS:
                                sft / hitl train.jsonl (examples), dpo / reward train.jsonl (pairs), ppo
                                prompts.jsonl, score answers.jsonl, evaluate questions.jsonl + cached.jsonl
    <job_dir>/snapshot.json     provenance: which verdicts, pairs and questions went in, and why

The file names are training/job_folder.py's. The folder is private whatever the umask: 0700 folders, 0600
files (they hold clinicians' questions and answers; jobs/job_files.py).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from medalign_desktop.jobs.job_files import private_dir, write_json
from medalign_desktop.jobs.job_types import (  # noqa: F401 - re-exported: the snapshot's types lived here
    DEFAULT_REPLAY_FRACTION,
    SnapshotError,
    SnapshotInfo,
    SnapshotRequest,
)
from medalign_desktop.jobs.kinds import APP_KINDS
from medalign_desktop.store import Store
from training.job_folder import CONFIG_FILE, SNAPSHOT_FILE


def job_config(request: SnapshotRequest, provenance: dict | None = None) -> dict:
    """config.json for the training program (training/README.md); score and evaluate jobs train nothing."""
    return APP_KINDS[request.kind].config(request, provenance or {})


def write_snapshot(store: Store, request: SnapshotRequest, job_dir: str | Path) -> SnapshotInfo:
    """Write config.json, the data files and snapshot.json into ``job_dir`` (created, must be new/empty)."""
    job_dir = Path(job_dir)
    spec = APP_KINDS.get(request.kind)
    if spec is None:
        raise SnapshotError(f"Snapshots for '{request.kind}' jobs are not supported yet.")
    private_dir(job_dir)
    info, provenance = spec.write_snapshot(store, request, job_dir)
    write_json(job_dir / CONFIG_FILE, job_config(request, provenance))
    write_json(
        job_dir / SNAPSHOT_FILE,
        {**asdict(info), "kind": request.kind, "seed": request.seed, **provenance},
    )
    return info
