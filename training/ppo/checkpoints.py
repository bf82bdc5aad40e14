"""Checkpoints of a PPO run in the shared layout of training/checkpoints.py: ``DIR/checkpoints/step-<n>/``.

A checkpoint holds the policy adapter as a plain peft LoRA folder at its top level (``adapter_config.json``,
``adapter_model.safetensors``: the app can register it as a version as it is), the value head
(``value_head.safetensors``), what resuming needs (training/ppo/resume.py) and, written last,
``checkpoint.json``. The folder is written as ``step-<n>.tmp-<pid>`` and renamed when complete, and an old one
is renamed away before it is deleted, so a folder named ``step-<n>`` is always whole, even after a SIGKILL.

"Best" is judged by ``eval_reward_mean`` (higher is better) when the run evaluates: the score of greedy
answers to the held-back prompts after that step's update; a checkpoint between evaluations has no value.
Without evaluation it is ``reward_mean``: the mean score of the step's rollouts, i.e. of the policy just
before that step's update (the one number such a run has for every step).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.checkpoints import (
    CHECKPOINTS_DIR,
    CheckpointInfo,
    find_best_and_last,
    prune,
    read_info,
    remove_checkpoint,
    write_info,
)

EVAL_METRIC = "eval_reward_mean"
TRAIN_METRIC = "reward_mean"


def write_checkpoint(
    job_dir: Path,
    step: int,
    save: Callable[[Path], None],
    metric: str,
    value: float | None,
    metrics: dict[str, Any],
) -> CheckpointInfo:
    """``save(folder)`` writes adapter, value head and resume state; then checkpoint.json, the rename, and
    pruning to the last and the best. Raises (leaving no half folder) when ``save`` fails."""
    root = job_dir / CHECKPOINTS_DIR
    root.mkdir(exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f"step-{step}.tmp-{os.getpid()}"
    try:
        tmp.mkdir()
        save(tmp)
        write_info(tmp, step, metric, value, higher_is_better=True, metrics=metrics)
        if final.exists():  # an incomplete leftover of the same name (a complete one is never rewritten)
            remove_checkpoint(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(job_dir)
    info = read_info(final)
    assert info is not None  # just written whole
    return info


def remove_leftovers(job_dir: Path) -> None:
    """Delete the temporary and half-deleted folders a killed run left (``*.tmp-<pid>``, ``*.trash-<pid>``)."""
    root = job_dir / CHECKPOINTS_DIR
    for path in root.iterdir() if root.is_dir() else []:
        if path.is_dir() and (".tmp-" in path.name or ".trash-" in path.name):
            shutil.rmtree(path, ignore_errors=True)


def summary(info: CheckpointInfo | None) -> dict[str, Any] | None:
    """result.json's description of a checkpoint: path, step, metric and value."""
    if info is None:
        return None
    return {"path": str(info.path), "step": info.step, "metric": info.metric, "value": info.value}


def best_and_last_summary(job_dir: Path) -> dict[str, Any]:
    best, last = find_best_and_last(job_dir)
    return {"best": summary(best), "last": summary(last)}
