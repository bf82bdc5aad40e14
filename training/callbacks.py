"""Trainer callback that turns the trainer's logs into protocol events and stops training on Cancel.

The SIGTERM handler itself lives in training/cancel.py (standard library only, installed before torch
loads); this callback checks its token at every step / sub-step / evaluation batch boundary.
Imported lazily (it needs transformers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from training import protocol
from training.cancel import Cancelled, CancelToken

__all__ = ["Cancelled", "CancelToken", "EventCallback", "remove_console_callbacks"]


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
        self.last_log: tuple[float, int] | None = None  # (time, tokens seen) at the previous training log
        self.summary: dict[str, float] = {}  # the trainer's end-of-training values (train_loss, ...)
        self.last_metrics: dict[str, float] = {}  # latest loss / eval_loss, for result.json
        self.last_eval_step: int | None = None

    # -- lifecycle --

    def on_train_begin(self, args, state, control, **kwargs):
        self.train_start = time.monotonic()
        self.last_log = (self.train_start, 0)
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
            eta = elapsed / step * max(total - step, 0) if step > 0 else None
            self.emit(
                protocol.Progress(
                    step=step,
                    total=total,
                    elapsed_s=round(elapsed, 3),
                    eta_s=None if eta is None else round(eta, 3),
                )
            )
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


def remove_console_callbacks(trainer: Any) -> None:
    """Drop transformers' printer / tqdm callbacks: stdout carries only protocol events."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cls in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cls)
