"""`medalign jobs list|show|resume|cancel`: the workspace's jobs, whichever window or terminal ran them.

``cancel`` reaches a job run by another process through its folder lock (jobs/folder_lock.py): the lock file
names the training process, which gets SIGTERM and stops at its next step; its own queue then records it
cancelled. A queued job is marked cancelled and its queue skips it.
"""

from __future__ import annotations

import argparse
import os
import signal
from dataclasses import asdict
from typing import Any

from medalign_desktop.cli.common import existing_db, say
from medalign_desktop.cli.progress import TerminalReporter

EXIT_JOB_FAILED = 1


def _job_summary(store, job) -> dict[str, Any]:
    versions = [v.name for v in store.list_model_versions() if v.job_id == job.id]
    last: dict[str, float] = {}
    for metric in store.job_metrics(job.id):
        if metric.value is not None:
            last[metric.name] = metric.value
    return {**asdict(job), "versions": versions, "last_metrics": last}


def cmd_list(args: argparse.Namespace, store) -> int:
    jobs = store.list_jobs()
    if args.json:
        for job in jobs:
            TerminalReporter().json(_job_summary(store, job))
        return 0
    if not jobs:
        say("No jobs yet.")
    for job in jobs:
        made = ", ".join(v.name for v in store.list_model_versions() if v.job_id == job.id)
        trigger = job.config.get("trigger", "")
        say(f"#{job.id:<4} {job.kind:<8} {job.state:<10} {job.created_at:<26} {trigger:<7} {made}")
    return 0


def cmd_show(args: argparse.Namespace, store) -> int:
    summary = _job_summary(store, store.get_job(args.job_id))
    if args.json:
        TerminalReporter().json(summary)
        return 0
    for key in (
        "id",
        "kind",
        "state",
        "created_at",
        "started_at",
        "finished_at",
        "data_size",
        "job_dir",
        "error",
    ):
        if summary.get(key) is not None:
            say(f"{key:<12} {summary[key]}")
    say(f"{'versions':<12} {', '.join(summary['versions']) or '-'}")
    for name, value in sorted(summary["last_metrics"].items()):
        say(f"{'last ' + name:<24} {value:.6g}")
    say("config       " + ", ".join(f"{k}={v}" for k, v in sorted(summary["config"].items())))
    return 0


def cmd_cancel(args: argparse.Namespace, store) -> int:
    from medalign_desktop.jobs.folder_lock import JobFolderLock

    job = store.get_job(args.job_id)
    if job.state == "queued":
        store.set_job_state(job.id, "cancelled")
        say(f"Job #{job.id} was waiting; it is cancelled.")
        return 0
    if job.state != "running":
        raise ValueError(f"Job #{job.id} is {job.state}; only a queued or running job can be cancelled.")
    pid = JobFolderLock.process_of(job.job_dir) if job.job_dir else None
    if not (job.job_dir and JobFolderLock.held_elsewhere(job.job_dir)) or pid is None:
        store.set_job_state(job.id, "failed", error="Interrupted: no process was running it any more.")
        say(f"Job #{job.id} was not running anywhere (its app or terminal had stopped); marked failed.")
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise ValueError(f"Job #{job.id}'s training process ({pid}) has already ended.") from None
    say(f"Cancel sent to job #{job.id} (process {pid}); it stops at its next step.")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from medalign_desktop.jobs.headless import HeadlessWorkspace

    reporter = TerminalReporter(json_lines=args.json, verbose=args.verbose, label=f"job #{args.job_id}")
    workspace = HeadlessWorkspace(existing_db(args), launcher=args.launcher)
    outcome = workspace.run(lambda ws: ws.resume_job(args.job_id, reporter))
    reporter.outcome(outcome)
    return 0 if outcome.succeeded else EXIT_JOB_FAILED


def run(args: argparse.Namespace) -> int:
    if args.jobs_command == "resume":
        return cmd_resume(args)
    from medalign_desktop.store import Store

    command = {"list": cmd_list, "show": cmd_show, "cancel": cmd_cancel}[args.jobs_command]
    with Store.open(existing_db(args), create=False) as store:
        return command(args, store)
