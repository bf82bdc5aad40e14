"""The command line and environment of a training job. Pure functions, unit-tested exactly.

The launcher is a setting: by default the app's own interpreter runs ``-m training``; on a multi-GPU node
it can be ``torchrun --nproc_per_node 2 -m training``, ``python -m torch.distributed.run --nproc_per_node 2
-m training`` (torchrun under the app's own interpreter) or ``accelerate launch --multi_gpu -m training``
(sft, hitl, dpo and reward train data-parallel; ppo refuses more than one process). The training program's
arguments are always ``<kind> --job-dir DIR``, plus ``--resume`` to continue a stopped job from its last
checkpoint.

In the desktop bundle (PyInstaller, ``sys.frozen``) there is no ``python`` to run: ``sys.executable`` is the
app itself, which runs the training programs when its first argument is ``--run-training`` (app.py).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

DEFAULT_LAUNCHER = "python -m training"
# The bundled executable's first argument that makes it a training program instead of the GUI.
FROZEN_TRAINING_FLAG = "--run-training"

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
    kind: str,
    job_dir: str | Path,
    *,
    launcher: str = DEFAULT_LAUNCHER,
    python: str = sys.executable,
    frozen: bool | None = None,
    resume: bool = False,
) -> list[str]:
    """argv for one job; ``resume``: go on from the job folder's last checkpoint (``--resume`` last). A
    launcher starting with ``python`` runs the app's own interpreter; in the bundle (``frozen``; None:
    whether this process is one) that is the app's executable with ``--run-training``."""
    if frozen is None:
        frozen = bool(getattr(sys, "frozen", False))
    from medalign_desktop.jobs.kinds import APP_KINDS  # here: app.py imports this module, and stays light

    if kind not in APP_KINDS:
        raise ValueError(f"Unknown job kind '{kind}' (known: {', '.join(APP_KINDS)}).")
    try:
        words = shlex.split(launcher)
    except ValueError as exc:
        raise ValueError(f"The launcher setting '{launcher}' cannot be parsed ({exc}).") from exc
    if not words:
        raise ValueError("The launcher setting is empty.")
    if words[0] in ("python", "python3"):
        words = _bundled_launcher(words, python) if frozen else [python, *words[1:]]
    return [*words, kind, "--job-dir", str(job_dir), *(["--resume"] if resume else [])]


def _bundled_launcher(words: list[str], executable: str) -> list[str]:
    # The bundle has no interpreter options to pass on, so only the plain form has a frozen equivalent.
    if words[1:] != ["-m", "training"]:
        raise ValueError(
            f"The launcher setting '{shlex.join(words)}' needs a Python interpreter, which the desktop "
            f"bundle does not have; use '{DEFAULT_LAUNCHER}' (runs the bundled training programs)."
        )
    return [executable, FROZEN_TRAINING_FLAG]


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
