"""Checkpoints of a PPO run: ``DIR/checkpoints/step-<n>/``, written whole or not at all; the last and the best kept.

A checkpoint holds the policy adapter as a plain peft LoRA folder (``adapter_config.json``,
``adapter_model.safetensors``), the value head (``value_head.safetensors``) and ``checkpoint.json`` (step and
that step's metrics). It is written to ``step-<n>.tmp-<pid>`` and renamed when complete; an old one is
renamed to ``step-<n>.trash-<pid>`` before it is deleted. So a folder named ``step-<n>`` is always whole, even
after a SIGKILL. "Best" is the highest ``reward_mean``: the mean score of the rollouts of that step, i.e. of
the policy just before the step's update (the one number a run has for every checkpoint without extra passes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKPOINTS_DIR = "checkpoints"
INFO_FILE = "checkpoint.json"
_NAME = re.compile(r"step-(\d+)")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    reward_mean: float


def list_checkpoints(job_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints of a job, oldest first (temporary and half-deleted folders are not listed)."""
    root = job_dir / CHECKPOINTS_DIR
    found = []
    for path in root.iterdir() if root.is_dir() else []:
        match = _NAME.fullmatch(path.name)
        if match and (path / INFO_FILE).is_file():
            info = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
            found.append(Checkpoint(path, int(match.group(1)), float(info["metrics"]["reward_mean"])))
    return sorted(found, key=lambda c: c.step)


def best_and_last(checkpoints: list[Checkpoint]) -> tuple[Checkpoint | None, Checkpoint | None]:
    if not checkpoints:
        return None, None
    best = max(checkpoints, key=lambda c: (c.reward_mean, c.step))  # a tie goes to the later one
    return best, checkpoints[-1]


def write_checkpoint(job_dir: Path, step: int, models: Any, metrics: dict[str, float]) -> Checkpoint:
    """Save the policy adapter, value head and metrics of ``step``; then drop all but the last and the best."""
    root = job_dir / CHECKPOINTS_DIR
    root.mkdir(exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f"step-{step}.tmp-{os.getpid()}"
    try:
        models.save_policy(tmp, with_value_head=True)
        info = {"step": step, "metrics": metrics}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(job_dir)
    return Checkpoint(final, step, float(metrics["reward_mean"]))


def prune(job_dir: Path) -> None:
    """Delete every complete checkpoint but the last and the best (renamed away first, then removed)."""
    checkpoints = list_checkpoints(job_dir)
    keep = {c.path for c in best_and_last(checkpoints) if c is not None}
    for checkpoint in checkpoints:
        if checkpoint.path not in keep:
            trash = checkpoint.path.with_name(f"{checkpoint.path.name}.trash-{os.getpid()}")
            os.rename(checkpoint.path, trash)
            shutil.rmtree(trash, ignore_errors=True)
