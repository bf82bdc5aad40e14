"""The one table of job kinds on the training side: a kind's config class and the program that runs it.

    python -m training <kind> --job-dir DIR  ->  KINDS[kind].config_class (read from DIR/config.json)
                                              ->  KINDS[kind].run(config, job_dir, cancel) -> result dict

Adding a kind: its config (a dataclass registered in training/config.py's CONFIG_CLASSES, standard library
only so the app can import it), its program module with ``run`` (heavy imports inside it), and one row here.
The programs share training/runner.py and never import each other; only training/__main__.py imports this
table. The app's side of the same kind: its row of medalign_desktop/jobs/kinds' APP_KINDS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import dpo, evaluate, reward, score, sft
from training.config import CONFIG_CLASSES
from training.ppo import program as ppo

Program = Callable[[Any, Path, Any], dict[str, Any]]  # run(config, job_dir, cancel) -> result


@dataclass(frozen=True)
class JobKind:
    name: str
    config_class: type
    run: Program


_PROGRAMS: dict[str, Program] = {
    "sft": sft.run,
    "hitl": sft.run,  # the same program as sft, with HITL's defaults and a parent adapter
    "dpo": dpo.run,
    "reward": reward.run,
    "ppo": ppo.run,
    "score": score.run,
    "evaluate": evaluate.run,
}
KINDS: dict[str, JobKind] = {
    name: JobKind(name, CONFIG_CLASSES[name], program) for name, program in _PROGRAMS.items()
}
