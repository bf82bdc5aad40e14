"""``python -m training <kind> --job-dir DIR`` (also under ``accelerate launch -m training ...``).

Reads DIR/config.json and DIR/data/, trains, writes DIR/<output_name>/ and DIR/result.json, and reports on
stdout in the event protocol (training/protocol.py): one JSON object per line and nothing else. Library
logs, warnings and tracebacks go to stderr. Exit codes: 0 finished, 1 failed, 2 bad command line,
143 cancelled (SIGTERM / SIGINT); every non-zero exit ends with a `failed` event.

Job folders hold clinical text: the program runs with umask 077 (so under ``torchrun`` / ``accelerate``
every rank's adapters, checkpoints and logs are private) and tightens the job folder it is given to 0700,
its files to 0600, whoever launched it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from training import protocol
from training.cancel import Cancelled, CancelToken
from training.config import ConfigError, load_config
from training.kinds import KINDS
from training.oom import describe_oom, memory_kind

# kind -> "module:function" taking (config, job_dir, cancel) and returning
# {"adapter_path": str, "metrics": dict, "duration_s": float}. To add a kind (dpo, reward, ppo, evaluate):
# give it a config class in training/config.py (CONFIG_CLASSES) and a program module here.

QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # report through the protocol instead of exiting 2 silently
        raise UsageError(f"{self.prog}: {message}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m training", description="MedAlign training programs (LoRA).")
    parser.add_argument("kind", choices=sorted(KINDS), help="which program to run")
    parser.add_argument("--job-dir", required=True, type=Path, help="folder with config.json and data/")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a cancelled or crashed job from its last checkpoint (DIR/checkpoints)",
    )
    return parser.parse_args(argv)


def describe_failure(exc: BaseException, kind: str | None = None, config: Any = None) -> tuple[str, str]:
    """(reason, advice) for an exception, in words a clinician-facing app can show. ``kind`` / ``config``:
    the job's, when known, so out-of-memory advice names that kind's settings and their values."""
    from training.data import DataError
    from training.lora import ModelError

    name = type(exc).__name__
    out_of_memory = describe_oom(exc, kind, config)
    if out_of_memory is not None:
        return out_of_memory
    if isinstance(exc, ConfigError):
        return str(exc), "Fix config.json (the field named above) and start the job again."
    if isinstance(exc, DataError):
        return str(exc), exc.advice or "Fix or remove the example on that line and start the job again."
    if isinstance(exc, ModelError):
        return str(exc), "Check the model / adapter folder (re-import it if files are missing)."
    if isinstance(exc, FileExistsError):
        return str(exc), "Use a new output_name or a new job folder."
    return f"{name}: {exc}", "See the job's log (stderr) for the traceback."


def claim_stdout() -> TextIO:
    """Reserve stdout for events: they go to a duplicate of fd 1, and fd 1 / sys.stdout now point at stderr,
    so prints from libraries (Python or C) cannot break the protocol."""
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)


def _write_failure_result(job_dir: Path | None, status: str, reason: str, advice: str) -> None:
    if job_dir is None or not job_dir.is_dir() or not protocol.is_main_process():
        return
    try:
        from training.job_folder import ended_result
        from training.runner import write_result

        write_result(job_dir, ended_result(status, reason, advice))
    except OSError:
        pass


PRIVATE_UMASK = 0o077


def make_private(job_dir: Path) -> None:
    """The job folder and what is in it to 0700 / 0600 where ours and more open (no symlinks followed)."""
    uid = os.getuid()
    for root, dirs, files in os.walk(job_dir):
        for name, mode in [(root, 0o700)] + [(os.path.join(root, f), 0o600) for f in files]:
            try:
                info = os.lstat(name)
                if info.st_uid == uid and not os.path.islink(name) and info.st_mode & 0o077:
                    os.chmod(name, mode)
            except OSError:
                pass
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]


def main(argv: list[str] | None = None, events: TextIO | None = None) -> int:
    """Run one job; returns the exit code. ``events``: where events go (None: claim the process's stdout)."""
    previous_umask = os.umask(PRIVATE_UMASK)
    try:
        return _main(argv, events)
    finally:
        os.umask(previous_umask)  # in-process callers (tests) get theirs back; a process simply exits


def _main(argv: list[str] | None, events: TextIO | None) -> int:
    if events is None:  # running as the program: quiet libraries, and stdout for events only
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
    stream = events if events is not None else claim_stdout()
    previous = protocol.set_event_stream(stream)
    start = time.monotonic()
    job_dir: Path | None = None
    kind: str | None = None
    config: Any = None
    cancel = CancelToken().install()
    try:
        args = parse_args(argv)
        job_dir = args.job_dir.resolve()  # so reported paths are absolute
        if job_dir.is_dir():
            make_private(job_dir)
        kind = args.kind
        config = load_config(job_dir, kind=kind)
        if args.resume:
            if not hasattr(config, "resume"):
                raise UsageError(
                    f"python -m training: a {kind} job keeps no checkpoints, so it cannot resume."
                )
            config.resume = True
        result = KINDS[kind].run(config, job_dir, cancel)
        protocol.emit(
            protocol.Finished(
                adapter_path=result["adapter_path"],
                metrics=result["metrics"],
                duration_s=round(time.monotonic() - start, 3),
            )
        )
        return protocol.EXIT_OK
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a `failed` event
        cancel.deferred = True  # a second signal must not interrupt the report
        if isinstance(exc, Cancelled | KeyboardInterrupt):
            protocol.emit(protocol.Failed(reason=protocol.CANCELLED_REASON, advice="The job was cancelled."))
            _write_failure_result(job_dir, "cancelled", protocol.CANCELLED_REASON, "")
            return protocol.EXIT_CANCELLED
        if isinstance(exc, UsageError):
            protocol.emit(
                protocol.Failed(
                    reason=str(exc),
                    advice=f"Usage: python -m training {{{','.join(sorted(KINDS))}}} --job-dir DIR",
                )
            )
            return protocol.EXIT_USAGE
        if isinstance(exc, SystemExit):  # argparse --help
            return int(exc.code or 0)
        if memory_kind(exc) is not None:  # the failed frames' tensors fill memory: free them before reporting
            traceback.clear_frames(exc.__traceback__)
        traceback.print_exc(file=sys.stderr)
        reason, advice = describe_failure(exc, kind, config)
        protocol.emit(protocol.Failed(reason=reason, advice=advice))
        _write_failure_result(job_dir, "failed", reason, advice)
        return protocol.EXIT_FAILED
    finally:
        cancel.uninstall()
        protocol.set_event_stream(previous)
        if events is None:
            sys.stdout.flush()
            stream.flush()


if __name__ == "__main__":
    sys.exit(main())
