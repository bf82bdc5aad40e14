"""The command line and environment of a training job. Pure functions, unit-tested exactly.

The launcher is a setting: by default the app's own interpreter runs ``-m training``; on a multi-GPU node
it can be ``accelerate launch --multi_gpu -m training``. The training program's arguments are always
``<kind> --job-dir DIR``.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

DEFAULT_LAUNCHER = "python -m training"
JOB_KINDS = ("sft", "hitl", "dpo", "reward", "ppo", "evaluate", "score")

# Variables passed through from the app's environment; everything else is dropped so a job never
# depends on what happened to be set in the shell that started the app.
PASSTHROUGH = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "CUDA_VISIBLE_DEVICES",
    "MEDALIGN_HOME",
    "HF_HOME",
    "LD_LIBRARY_PATH",
    "SYSTEMROOT",
    "OMP_NUM_THREADS",
    "VIRTUAL_ENV",
)


def build_command(
    kind: str, job_dir: str | Path, *, launcher: str = DEFAULT_LAUNCHER, python: str = sys.executable
) -> list[str]:
    """argv for one job. A launcher starting with ``python`` runs the app's own interpreter."""
    if kind not in JOB_KINDS:
        raise ValueError(f"Unknown job kind '{kind}' (known: {', '.join(JOB_KINDS)}).")
    try:
        words = shlex.split(launcher)
    except ValueError as exc:
        raise ValueError(f"The launcher setting '{launcher}' cannot be parsed ({exc}).") from exc
    if not words:
        raise ValueError("The launcher setting is empty.")
    if words[0] in ("python", "python3"):
        words[0] = python
    return [*words, kind, "--job-dir", str(job_dir)]


def build_environment(parent: Mapping[str, str], *, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The job's environment, set explicitly: offline, unbuffered, one JSON event per stdout line."""
    env = {key: parent[key] for key in PASSTHROUGH if key in parent}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",  # events must reach the app as they happen
            "PYTHONIOENCODING": "utf-8",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "TQDM_DISABLE": "1",
            # Library deprecation notices are for developers; the Train page's log is read by clinicians.
            "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",
        }
    )
    env.update(extra or {})
    return env
