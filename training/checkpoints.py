"""Where a job's checkpoints live and how the app finds its last and best one. Standard library only.

Every program that keeps checkpoints (sft, hitl, dpo, reward, ppo) writes them as

    DIR/checkpoints/<name>/            written to a temporary name and renamed when complete (ppo), or
                                       in place by the trainer with checkpoint.json last (sft, hitl, dpo, reward)
        adapter_config.json            a plain peft adapter folder: the checkpoint can become a version as is
        adapter_model.safetensors
        checkpoint.json                {"step": n, "metric": "eval_loss", "value": x | null,
                                        "higher_is_better": false, "metrics": {...that step's numbers...}}
        ...                            whatever the program needs to resume (optimiser, scheduler, RNG, data order)

A folder without ``checkpoint.json`` (half written, half deleted, a temporary name) is not a checkpoint.
"Best" is the checkpoint with the best ``value`` (lowest eval loss, highest eval reward, ...); a checkpoint
without a value (no evaluation yet) is never best unless none has one, then the last is also the best.
The app (jobs/) reads this module to offer "resume" and "best or last"; the programs write through it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.job_folder import CHECKPOINT_INFO_FILE as INFO_FILE
from training.job_folder import CHECKPOINTS_DIR


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path  # the checkpoint folder (also a loadable adapter folder)
    step: int  # optimiser step (trainer kinds) or PPO step after which it was saved
    metric: str  # the number "best" is judged by, e.g. "eval_loss"
    value: float | None  # that number at this step (None: not evaluated)
    higher_is_better: bool
    metrics: dict[str, Any]

    def describe(self) -> str:
        shown = "not evaluated" if self.value is None else f"{self.metric} {self.value:.4g}"
        return f"step {self.step} ({shown})"


def read_info(folder: Path) -> CheckpointInfo | None:
    """The checkpoint in ``folder``, or None when it is not a complete one."""
    info_file = folder / INFO_FILE
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
        value = info.get("value")
        return CheckpointInfo(
            path=folder,
            step=int(info["step"]),
            metric=str(info.get("metric") or ""),
            value=None if value is None or not math.isfinite(float(value)) else float(value),
            higher_is_better=bool(info.get("higher_is_better", False)),
            metrics=dict(info.get("metrics") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_info(
    folder: Path, step: int, metric: str, value: float | None, higher_is_better: bool, metrics: dict[str, Any]
) -> None:
    """Write ``checkpoint.json`` into a checkpoint folder (last, so its presence means complete)."""
    data = {
        "step": step,
        "metric": metric,
        "value": value,
        "higher_is_better": higher_is_better,
        "metrics": metrics,
    }
    tmp = folder / f"{INFO_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(data, indent=2, default=float), encoding="utf-8")
    os.replace(tmp, folder / INFO_FILE)


def list_checkpoints(job_dir: str | Path) -> list[CheckpointInfo]:
    """Complete checkpoints of a job, oldest (lowest step) first."""
    root = Path(job_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [
        info
        for path in root.iterdir()
        # a checkpoint renamed away for deletion still holds checkpoint.json until the delete ends
        if path.is_dir() and not _is_temporary(path) and (info := read_info(path)) is not None
    ]
    return sorted(found, key=lambda c: c.step)


def _is_temporary(path: Path) -> bool:
    return ".tmp-" in path.name or ".trash-" in path.name


def best_and_last(checkpoints: list[CheckpointInfo]) -> tuple[CheckpointInfo | None, CheckpointInfo | None]:
    """(best, last) of a job's checkpoints; a tie in value goes to the later step."""
    if not checkpoints:
        return None, None
    last = checkpoints[-1]
    scored = [c for c in checkpoints if c.value is not None]
    if not scored:
        return last, last

    def goodness(c: CheckpointInfo) -> tuple[float, int]:
        return (c.value if c.higher_is_better else -c.value, c.step)  # type: ignore[operator]

    return max(scored, key=goodness), last


def find_best_and_last(job_dir: str | Path) -> tuple[CheckpointInfo | None, CheckpointInfo | None]:
    return best_and_last(list_checkpoints(job_dir))


def remove_checkpoint(folder: Path) -> None:
    """Rename away first (so a half-deleted folder is never taken for a checkpoint), then delete."""
    trash = folder.with_name(f"{folder.name}.trash-{os.getpid()}")
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def prune(job_dir: str | Path) -> None:
    """Delete every complete checkpoint but the last and the best."""
    checkpoints = list_checkpoints(job_dir)
    keep = {c.path for c in best_and_last(checkpoints) if c is not None}
    for checkpoint in checkpoints:
        if checkpoint.path not in keep:
            remove_checkpoint(checkpoint.path)
