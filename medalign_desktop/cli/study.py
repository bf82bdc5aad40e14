"""`medalign study run STUDY.toml`: the research comparison (A SFT, B HITL, C reward + PPO, D DPO), its
evaluation and report on one workspace; a re-run skips what is done (jobs/study_run.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from medalign_desktop import paths
from medalign_desktop.cli.progress import TerminalReporter

EXIT_STEP_FAILED = 1


def cmd_study_run(args: argparse.Namespace) -> int:
    from medalign_desktop.cli.jobs import base_model
    from medalign_desktop.engine import DEFAULT_SYSTEM_PROMPT
    from medalign_desktop.jobs.headless import HeadlessWorkspace
    from medalign_desktop.jobs.study_config import load_study
    from medalign_desktop.jobs.study_run import run_study

    study = load_study(args.file)
    args.model = args.model or study.model
    model = base_model(args)
    reporter = TerminalReporter(json_lines=args.json, verbose=args.verbose)
    tell = (lambda text: reporter.json({"study": text})) if args.json else reporter.note_out
    db = Path(args.db).expanduser() if args.db else paths.default_database_path()

    def go(ws: HeadlessWorkspace):
        return run_study(ws, study, model, args.system_prompt or DEFAULT_SYSTEM_PROMPT, reporter, tell)

    result = HeadlessWorkspace(db, launcher=args.launcher).run(go)
    if result.failed:
        tell(f"The study stopped at {result.failed}. Run it again to continue from there.")
        return EXIT_STEP_FAILED
    from medalign_desktop.cli.versions import write_report_file

    report = write_report_file(db, db.parent / study.report)
    tell(f"Done: {', '.join(result.versions.values())}; the report is {report}")
    return 0


def add_parsers(sub: Any) -> None:
    from medalign_desktop.cli.jobs import add_job_options

    study = sub.add_parser("study", help="run the research comparison from a STUDY.toml")
    actions = study.add_subparsers(dest="study_command", required=True)
    run = actions.add_parser("run", help="train A, B, C, D, evaluate them and write the report")
    run.add_argument("file", help="the study file, e.g. resources/sample_study.toml")
    add_job_options(run)
    run.set_defaults(func=cmd_study_run)
