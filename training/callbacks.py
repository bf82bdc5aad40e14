"""Trainer callbacks: protocol events and Cancel (EventCallback), the contract's checkpoints
(CheckpointCallback) and early stopping on the evaluation loss (EarlyStopping).

The SIGTERM handler itself lives in training/cancel.py (standard library only, installed before torch
loads); EventCallback checks its token at every step / sub-step / evaluation batch boundary.
Imported lazily (it needs transformers).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from training import protocol
from training.cancel import Cancelled, CancelToken
from training.checkpoints import prune, write_info

__all__ = [
    "Cancelled",
    "CancelToken",
    "CheckpointCallback",
    "EarlyStopping",
    "EventCallback",
    "remove_console_callbacks",
]

METRIC = "eval_loss"  # what "best" and early stopping judge by (lower is better)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# Keys of the trainer's logs that become named Metric fields; others numeric go to Metric.extra.
_NAMED = {"loss", "learning_rate", "grad_norm", "eval_loss", "epoch"}
_SKIP = {"num_input_tokens_seen", "total_flos", "step", "train_runtime", "train_tokens_per_second"}


class EventCallback(TrainerCallback):
    """Emits ``started`` (at train begin), ``metric`` (every log), ``progress`` (every step)."""

    def __init__(
        self,
        kind: str,
        n_train: int,
        n_eval: int,
        device: str,
        cancel: CancelToken | None = None,
        emit: Callable[[protocol.Event], None] = protocol.emit,
    ):
        self.kind, self.n_train, self.n_eval, self.device = kind, n_train, n_eval, device
        self.cancel = cancel
        self.emit = emit
        self.train_start: float | None = None
        self.start_step = 0  # global step this run began at (> 0 when resumed from a checkpoint)
        self.last_log: tuple[float, int] | None = None  # (time, tokens seen) at the previous training log
        self.summary: dict[str, float] = {}  # the trainer's end-of-training values (train_loss, ...)
        self.last_metrics: dict[str, float] = {}  # latest loss / eval_loss, for result.json
        self.last_eval_step: int | None = None

    # -- lifecycle --

    def on_train_begin(self, args, state, control, **kwargs):
        # Called after a resumed run's trainer state is loaded: steps and tokens go on from the checkpoint.
        self.train_start = time.monotonic()
        self.start_step = int(state.global_step)
        self.last_log = (self.train_start, int(getattr(state, "num_input_tokens_seen", 0) or 0))
        self.emit(
            protocol.Started(
                kind=self.kind,
                total_steps=int(state.max_steps),
                n_train=self.n_train,
                n_eval=self.n_eval,
                device=self.device,
            )
        )

    def on_step_end(self, args, state, control, **kwargs):
        if self.state_is_main(state):
            elapsed = time.monotonic() - (self.train_start or time.monotonic())
            step, total = int(state.global_step), int(state.max_steps)
            done = (
                step - self.start_step
            )  # the pace of this run (a resumed run's earlier steps took other time)
            eta = elapsed / done * max(total - step, 0) if done > 0 else None
            self.emit(
                protocol.Progress(
                    step=step,
                    total=total,
                    elapsed_s=round(elapsed, 3),
                    eta_s=None if eta is None else round(eta, 3),
                )
            )
        self._check_cancel()

    def on_step_begin(self, args, state, control, **kwargs):
        self._check_cancel()

    def on_substep_end(self, args, state, control, **kwargs):
        self._check_cancel()

    def on_prediction_step(self, args, state, control, **kwargs):
        self._check_cancel()

    # -- logs --

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "train_loss" in logs:  # the end-of-training summary, not a step log
            self.summary = {k: v for k, v in logs.items() if _number(v) is not None}
            return
        tokens_per_s = None
        now = time.monotonic()
        if "loss" in logs and "num_input_tokens_seen" in logs and self.last_log is not None:
            seen = int(logs["num_input_tokens_seen"])
            then, seen_then = self.last_log
            if now > then:
                tokens_per_s = round((seen - seen_then) / (now - then), 2)
            self.last_log = (now, seen)
        extra = {
            k: float(v)
            for k, v in logs.items()
            if k not in _NAMED | _SKIP and _number(v) is not None and not isinstance(v, bool)
        }
        metric = protocol.Metric(
            step=int(state.global_step),
            epoch=_number(logs.get("epoch")),
            loss=_number(logs.get("loss")),
            learning_rate=_number(logs.get("learning_rate")),
            grad_norm=_number(logs.get("grad_norm")),
            tokens_per_s=tokens_per_s,
            eval_loss=_number(logs.get("eval_loss")),
            extra=extra,
        )
        if metric.eval_loss is not None:
            self.last_eval_step = metric.step
        for key in ("loss", "eval_loss"):
            if getattr(metric, key) is not None:
                self.last_metrics[key] = getattr(metric, key)
        self.emit(metric)

    # -- helpers --

    @staticmethod
    def state_is_main(state) -> bool:
        return bool(getattr(state, "is_world_process_zero", True))

    def _check_cancel(self) -> None:
        if self.cancel is not None:
            self.cancel.check()


def step_metrics(log_history: list[dict[str, Any]], step: int) -> dict[str, float]:
    """The numbers the trainer logged at ``step`` (training and evaluation logs merged)."""
    found: dict[str, float] = {}
    for entry in log_history:
        if entry.get("step") == step:
            found.update(
                {
                    k: float(v)
                    for k, v in entry.items()
                    if k != "step" and _number(v) is not None and not isinstance(v, bool)
                }
            )
    return found


class CheckpointCallback(TrainerCallback):
    """Makes each checkpoint the trainer saves one of the contract's (training/checkpoints.py).

    The trainer writes ``DIR/checkpoints/checkpoint-<step>/`` (adapter, optimizer, scheduler, RNG states,
    trainer_state.json with the log history) and only then calls ``on_save``; here the folder gets
    ``checkpoint.json`` last (that step's eval_loss, None without evaluation), older checkpoints are pruned
    to the last and the best, and an ``artifact`` event named "checkpoint" is sent. Only the trained adapter
    ("default", at the top level) is kept: peft saves other adapters (DPO's frozen "ref") in subfolders,
    which would make a checkpoint twice the size for nothing (resuming rebuilds "ref" from the parent)."""

    def __init__(self, emit: Callable[[protocol.Event], None] = protocol.emit):
        self.emit = emit

    def on_save(self, args, state, control, **kwargs):
        if not EventCallback.state_is_main(state):
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        for extra in folder.iterdir():
            if extra.is_dir() and (extra / "adapter_config.json").exists():
                shutil.rmtree(extra)
        metrics = step_metrics(state.log_history, int(state.global_step))
        value = metrics.get(METRIC)
        value = value if value is not None and math.isfinite(value) else None
        write_info(folder, int(state.global_step), METRIC, value, False, metrics)
        prune(Path(args.output_dir).parent)
        self.emit(protocol.Artifact(name="checkpoint", path=str(folder)))


class EarlyStopping(TrainerCallback):
    """Stops training after ``patience`` evaluations in a row without an eval_loss lower than the best so
    far by more than ``threshold``. A resumed run replays the evaluations in its checkpoint's log history,
    so it stops where the uninterrupted run would have. The stop is logged and sent as a ``metric`` event
    with ``stopped_early`` 1 at that step (as the ppo program does), so the app can mark the job live."""

    def __init__(
        self,
        patience: int,
        threshold: float,
        log: Callable[[str], None],
        emit: Callable[[protocol.Event], None] = protocol.emit,
    ):
        self.patience, self.threshold, self.log, self.emit = patience, threshold, log, emit
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad_evaluations = 0
        self.stopped_at: int | None = None

    def _update(self, value: Any, step: int) -> None:
        value = _number(value)
        if (
            value is not None
            and math.isfinite(value)
            and (self.best is None or value < self.best - self.threshold)
        ):
            self.best, self.best_step, self.bad_evaluations = value, step, 0
        else:
            self.bad_evaluations += 1

    def on_train_begin(self, args, state, control, **kwargs):
        self.best, self.best_step, self.bad_evaluations, self.stopped_at = None, None, 0, None
        last_step = 0
        for entry in state.log_history:
            if METRIC in entry:
                last_step = int(entry.get("step", 0))
                self._update(entry[METRIC], last_step)
        # Only a checkpoint saved as the run stopped early can hold that many (training/runner.train_or_restore).
        if self.bad_evaluations >= self.patience and 0 < last_step < int(state.max_steps):
            self.stopped_at = last_step

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        step = int(state.global_step)
        if metrics is None or METRIC not in metrics or self.stopped_at is not None:
            return
        self._update(metrics[METRIC], step)
        # At the last step training ends anyway: that is not an early stop.
        if self.bad_evaluations >= self.patience and step < int(state.max_steps):
            control.should_training_stop = True
            self.stopped_at = step
            best = "none" if self.best is None else f"{self.best:.4g} at step {self.best_step}"
            self.log(
                f"Stopped early at step {step}: {METRIC} has not improved for {self.bad_evaluations} "
                f"evaluations; best {best}."
            )
            if EventCallback.state_is_main(state):
                self.emit(protocol.Metric(step=step, extra={"stopped_early": 1.0}))


def remove_console_callbacks(trainer: Any) -> None:
    """Drop transformers' printer / tqdm callbacks: stdout carries only protocol events."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cls in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cls)
