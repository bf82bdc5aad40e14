"""What a PPO checkpoint holds besides the adapter, so ``--resume`` continues as if the run had not stopped.

Next to the policy adapter and ``value_head.safetensors`` (training/ppo/model.py) a checkpoint folder holds

    optimizer.pt   AdamW's state (moments and step counts of the policy LoRA and the value head)
    rng.pt         random states: torch (CPU, and CUDA when used), Python's global one, the mini-batch shuffle
                   and the prompt sampler (numpy's is not saved: nothing here draws from it)
    state.json     the step, the KL coefficient, the prompt sampler's remaining order, every step's numbers
                   (history: the summary in result.json covers the whole run) and every evaluation's, and
                   the early-stopping counters

all written before ``checkpoint.json``, so a complete checkpoint always has them. Restored in the same
order the uninterrupted run would have them at that point, a resumed run draws the same rollouts and takes
the same optimiser steps (tested to be equal on the CPU).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.data import DataError
from training.ppo.evaluation import EarlyStopping

STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"
RESUME_FILES = (STATE_FILE, OPTIMIZER_FILE, RNG_FILE)


@dataclass
class RunState:
    """Where a run stands after ``step`` PPO steps (mutable: the loop updates it every step)."""

    early: EarlyStopping
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)  # each step's StepStats as a dict
    evaluations: list[dict[str, float]] = field(default_factory=list)  # {"step": n, **EvalStats}
    stopped_early: bool = False


def _rng_states(ppo: Any, sampler: Any) -> dict[str, Any]:
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "shuffle": ppo.rng.getstate(),
        "sampler": sampler.rng.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def save_state(folder: Path, run: RunState, ppo: Any, sampler: Any) -> None:
    """Write optimizer.pt, rng.pt and state.json of the run after ``run.step`` steps into a checkpoint folder."""
    torch.save(ppo.optimizer.state_dict(), folder / OPTIMIZER_FILE)
    torch.save(_rng_states(ppo, sampler), folder / RNG_FILE)
    state = {
        "step": run.step,
        "kl_coef": ppo.kl_control.value,
        "sampler_order": list(sampler.order),
        "history": run.history,
        "evaluations": run.evaluations,
        "early_stopping": asdict(run.early),
        "stopped_early": run.stopped_early,
    }
    (folder / STATE_FILE).write_text(json.dumps(state, indent=1), encoding="utf-8")


def check_resumable(folder: Path) -> None:
    """Raise DataError when a checkpoint lacks what resuming needs (e.g. one written by an older version)."""
    missing = [name for name in RESUME_FILES if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"Checkpoint {folder} cannot be resumed: it has no {', '.join(missing)}.",
            advice="Start the job again without resuming, or register the checkpoint as a version as it is.",
        )


def restore(folder: Path, ppo: Any, sampler: Any, patience: int) -> RunState:
    """Put the checkpoint's policy, value head, optimiser, KL coefficient, prompt order and RNGs back."""
    check_resumable(folder)
    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    try:
        ppo.models.load_policy(folder)
        optimizer = torch.load(folder / OPTIMIZER_FILE, map_location=ppo.models.device, weights_only=True)
        ppo.optimizer.load_state_dict(optimizer)
    except (RuntimeError, ValueError, KeyError) as exc:  # shapes or parameter counts differ
        raise DataError(
            f"Checkpoint {folder} does not fit this job's policy (were the LoRA settings or the base model "
            f"changed since it was saved?): {exc}",
            advice="Start the job again without resuming, with a new job folder.",
        ) from exc
    ppo.kl_control.value = float(state["kl_coef"])
    order = [int(i) for i in state["sampler_order"]]
    if any(not 0 <= i < len(sampler.prompts) for i in order):
        raise DataError(
            f"Checkpoint {folder} does not fit the job's prompts (data/prompts.jsonl changed since it was saved).",
            advice="Start the job again without resuming.",
        )
    sampler.order = order
    rngs = torch.load(folder / RNG_FILE, weights_only=True)
    torch.set_rng_state(rngs["torch"])
    if "cuda" in rngs and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rngs["cuda"])
    random.setstate(_as_state(rngs["python"]))
    ppo.rng.setstate(_as_state(rngs["shuffle"]))
    sampler.rng.setstate(_as_state(rngs["sampler"]))
    early = EarlyStopping(**{**state["early_stopping"], "patience": patience})
    return RunState(
        early=early,
        step=int(state["step"]),
        history=list(state["history"]),
        evaluations=list(state["evaluations"]),
        stopped_early=bool(state.get("stopped_early", False)),
    )


def _as_state(value: Any) -> tuple:
    """random.Random's state as setstate wants it: (version, tuple of ints, gauss_next)."""
    version, internal, gauss = value
    return (version, tuple(internal), gauss)
