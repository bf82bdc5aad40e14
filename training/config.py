"""Job configuration: ``DIR/config.json`` read into a documented dataclass per job kind.

The app writes ``{"kind": ..., "base_model": ..., "parent_adapter": ..., "output_name": ...}`` plus any
overrides of the hyperparameter fields below (same names, JSON types). Defaults are the research project's:
LoRA r=16, alpha=32, dropout 0.05 on q/k/v/o/gate/up/down; 4-bit NF4 with double quantisation and bf16
compute on CUDA; SFT lr 2e-4 cosine, warmup 0.1, 3 epochs, max length 2048; HITL lr 1e-4, 1 epoch per
iteration, continuing from the parent adapter. Batch size and gradient accumulation were not fixed by the
research project; the values here fit a 3B model in 4-bit on one 24 GB GPU.

This module imports only the standard library, so the app can import it to build configs.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from training.config_base import DEVICES, LORA_TARGET_MODULES, QUANTIZATIONS, ConfigError, JobConfigChecks
from training.evaluate_config import EvaluateJobConfig
from training.job_folder import CONFIG_FILE
from training.ppo.config import PPOJobConfig
from training.score_config import ScoreJobConfig


@dataclass
class SFTJobConfig(JobConfigChecks):
    """Supervised LoRA fine-tuning (model A) on an imported instruction set."""

    # -- what to train (written by the app) --
    kind: str = "sft"
    base_model: str = ""  # folder of a Hugging Face causal LM (safetensors), never a hub id
    # LoRA folder to continue training from (loaded trainable), or None for a fresh LoRA
    parent_adapter: str | None = None
    output_name: str = "adapter"  # the adapter is saved to DIR/<output_name>

    # -- optimisation --
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.1
    num_train_epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides num_train_epochs
    per_device_train_batch_size: int = 4
    per_device_eval_batch_size: int = 4
    gradient_accumulation_steps: int = 4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 42

    # -- sequence and memory --
    max_length: int = 2048  # tokens of prompt + answer; longer examples are truncated at the end
    gradient_checkpointing: bool = True
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    quantization: str = "auto"  # "auto": 4-bit NF4 on CUDA with bitsandbytes; "none"; "4bit"

    # -- LoRA (ignored when continuing from parent_adapter: its own settings are kept) --
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGET_MODULES))

    # -- logging, evaluation and checkpoints --
    logging_steps: int = 1  # a `metric` event every N optimiser steps
    # held out of train.jsonl when there is no eval.jsonl (0: no evaluation); a train.jsonl of fewer than
    # MIN_EVAL_SPLIT (training/data.py) examples keeps them all for training
    eval_fraction: float = 0.05
    # evaluation AND checkpoint schedule: below 1 a share of the total optimiser steps (0.1: ten times per
    # run, as transformers reads it), 1 or more every N optimiser steps; the last step always has both
    eval_steps: float = 0.1
    # 0: off; N: stop after N evaluations in a row without an eval_loss below the best so far by more than
    # early_stopping_threshold
    early_stopping_patience: int = 0
    early_stopping_threshold: float = 0.0

    # -- resuming (set by `--resume` on the command line, not by the app's config.json) --
    # continue from the last complete checkpoint in DIR/checkpoints (training/checkpoints.py)
    resume: bool = False

    def validate(self) -> None:
        """Check values (types are checked when reading); raises ConfigError naming the field."""
        self.check_base_model()
        self.check_folder_name("output_name")
        self.check_positive(
            "learning_rate",
            "lora_r",
            "lora_alpha",
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "max_length",
            "logging_steps",
        )
        if self.num_train_epochs <= 0 and self.max_steps <= 0:
            raise self.bad("num_train_epochs", "must be greater than 0 unless max_steps is set")
        if self.max_steps == 0 or self.max_steps < -1:
            raise self.bad("max_steps", "must be -1 (use num_train_epochs) or greater than 0")
        for name in ("warmup_ratio", "lora_dropout", "eval_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise self.bad(name, "must be at least 0 and below 1")
        if self.eval_steps <= 0 or (self.eval_steps >= 1 and self.eval_steps != int(self.eval_steps)):
            raise self.bad("eval_steps", "must be a share of the steps below 1, or a whole number of steps")
        for name in ("early_stopping_patience", "early_stopping_threshold"):
            if getattr(self, name) < 0:
                raise self.bad(name, "must be at least 0")
        self.check_choice("device", DEVICES)
        self.check_choice("quantization", QUANTIZATIONS)
        if not self.lora_target_modules:
            raise self.bad("lora_target_modules", "must name at least one module")


@dataclass
class HITLJobConfig(SFTJobConfig):
    """Human-in-the-loop (model B): one incremental LoRA round on the clinicians' accepted / edited answers.

    Continues from ``parent_adapter`` (the current version) when given. Rounds are small (the app retrains
    every 20 new samples), hence no accumulation; a tenth is held back for the evaluation loss (a round of
    fewer than 10 examples trains on all of them, without evaluation).
    """

    kind: str = "hitl"
    learning_rate: float = 1e-4
    num_train_epochs: float = 1.0
    gradient_accumulation_steps: int = 1
    eval_fraction: float = 0.1


@dataclass
class PairJobConfig(SFTJobConfig):
    """The defaults the two programs trained on preference pairs (dpo, reward) share: 2 pairs (4 sequences)
    per device with 2 accumulation steps, 1 epoch, a tenth held back for the evaluation (registered only
    as those two kinds)."""

    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 2
    per_device_eval_batch_size: int = 2
    gradient_accumulation_steps: int = 2
    # prompt + the longer answer: DPO cuts longer pairs at the end (TRL's keep_start), reward leaves them out
    max_length: int = 1024
    eval_fraction: float = 0.1


DPO_LOSS_TYPES = (
    "sigmoid",
    "ipo",
    "hinge",
    "robust",
    "bco_pair",
    "sppo_hard",
    "nca_pair",
    "apo_zero",
    "apo_down",
)


@dataclass
class DPOJobConfig(PairJobConfig):
    """Direct preference optimisation (model D) on preference pairs, with TRL's DPOTrainer and peft.

    ``parent_adapter`` (the active SFT / HITL version) is both the starting point and the frozen reference:
    it is loaded once as the trainable adapter and TRL copies it into a frozen adapter named "ref" on the same
    base, so there is never a second copy of the model. Without a parent: a fresh LoRA, and the reference is
    the base with adapters disabled.

    Memory: DPO runs every pair's chosen AND rejected answer through the model (2 sequences per pair), plus a
    no-grad reference pass. The per-device batch is therefore half of HITL's (2 pairs = 4 sequences, as HITL's
    4 examples) with doubled gradient accumulation, so the effective batch (4) and the activations held per
    forward are the same as HITL's on the same data; gradient checkpointing stays on as in HITL. (TRL 1.16
    disables ``padding_free`` for DPO, so it is not offered.) Research project: lr 5e-6, beta 0.1, max length
    1024, warmup 0.1. Pairs come from a few dozen verdicts, hence 1 epoch; a tenth is held back for eval_loss
    and eval rewards/accuracies (fewer than 10 pairs: all train, no evaluation), or ``data/eval.jsonl``.
    """

    kind: str = "dpo"
    learning_rate: float = 5e-6
    beta: float = 0.1  # strength of the pull towards the reference (higher: stay closer)
    loss_type: str = "sigmoid"  # TRL's loss_type: "sigmoid" is the DPO paper's loss

    def validate(self) -> None:
        super().validate()
        self.check_positive("beta")
        self.check_choice("loss_type", DPO_LOSS_TYPES)


@dataclass
class RewardJobConfig(PairJobConfig):
    """Reward model (first half of model C): a LoRA plus a scalar score head on the same base, trained with
    TRL's RewardTrainer on preference pairs (Bradley-Terry loss: score(chosen) > score(rejected)).

    ``parent_adapter``: an earlier reward adapter to continue from (it must hold a score head), or None.
    A held-back slice (``eval_fraction``, or ``data/eval.jsonl``) gives eval_loss and the pairwise accuracy
    ``eval_accuracy``. Pairs longer than ``max_length`` are left out (TRL filters, it does not truncate).
    Batch: 2 pairs (4 sequences) x 2 accumulation, like DPO. Research project: lr 1e-5.
    """

    kind: str = "reward"
    learning_rate: float = 1e-5


# Kinds with a config; training/__main__.py maps each kind to its program.
CONFIG_CLASSES: dict[str, type[SFTJobConfig | PPOJobConfig | ScoreJobConfig | EvaluateJobConfig]] = {
    "sft": SFTJobConfig,
    "hitl": HITLJobConfig,
    "dpo": DPOJobConfig,
    "reward": RewardJobConfig,
    "ppo": PPOJobConfig,
    "score": ScoreJobConfig,
    "evaluate": EvaluateJobConfig,
}


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def config_from_dict(
    data: dict[str, Any], *, source: str = "config.json", kind: str | None = None
) -> SFTJobConfig:
    """Build and validate the config of ``data["kind"]`` (or ``kind``); raises ConfigError naming the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must hold a JSON object.")
    job_kind = data.get("kind", kind)
    if kind is not None and job_kind != kind:
        raise ConfigError(f"{source}: field 'kind' is {job_kind!r} but the program was started as {kind!r}.")
    if job_kind not in CONFIG_CLASSES:
        raise ConfigError(
            f"{source}: field 'kind' must be one of {', '.join(CONFIG_CLASSES)} (got {job_kind!r})."
        )
    cls = CONFIG_CLASSES[job_kind]
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = [key for key in data if key not in known]
    if unknown:
        raise ConfigError(
            f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}."
        )
    for key, value in data.items():
        if not _type_ok(value, hints[key]):
            raise ConfigError(
                f"{source}: field '{key}' must be {_type_name(hints[key])}, not {type(value).__name__} ({value!r})."
            )
    if "base_model" not in data:
        raise ConfigError(f"{source}: field 'base_model' is required.")
    values = {k: (float(v) if hints[k] is float else v) for k, v in data.items()}
    config = cls(**{**values, "kind": job_kind})
    try:
        config.validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def load_config(job_dir: str | Path, kind: str | None = None) -> SFTJobConfig:
    """Read ``job_dir/config.json``; raises ConfigError naming the file and the problem."""
    path = Path(job_dir) / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}).") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from exc
    return config_from_dict(data, source=str(path), kind=kind)


def defaults(kind: str) -> dict[str, Any]:
    """The default values of a kind (for the app's settings form)."""
    cls = CONFIG_CLASSES[kind]
    return {f.name: (f.default if f.default is not MISSING else f.default_factory()) for f in fields(cls)}  # type: ignore[misc]
