"""What the two programs trained on preference pairs share (dpo and reward): the inputs checked before torch
loads, the parent adapter or a fresh LoRA for TRL, the trainer on the pairs and the pairs left after its length
filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import SFTJobConfig
from training.data import DataError
from training.lora import count_parameters, lora_config
from training.pair_data import Pairs, load_pair_data
from training.runner import Prepared, check_job_folders, load_training_data, log, make_trainer


def check_inputs(config: SFTJobConfig, job_dir: Path) -> tuple[Pairs, Pairs | None]:
    """The cheap checks, before torch loads: output free, model and parent folders, every pair line."""
    check_job_folders(config, job_dir)
    return load_training_data(config, job_dir, load_pair_data, "pairs")


def parent_or_fresh_lora(model: Any, config: SFTJobConfig, task_type: str = "CAUSAL_LM") -> tuple[Any, Any]:
    """(model, peft_config) for TRL: ``parent_adapter`` loaded trainable on the base (no peft_config), or the
    plain base with a fresh LoRA's config, which TRL wraps it in ("SEQ_CLS": with a score head)."""
    if config.parent_adapter:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, config.parent_adapter, is_trainable=True), None
    return model, lora_config(config, task_type)


def prepare_pair_trainer(
    trainer_class: Any, build_args: Any, config: SFTJobConfig, job_dir: Path, cancel: Any, *, plan: Any,
    data: tuple[Pairs, Pairs | None], trainer_kwargs: dict[str, Any], why: str, trained: str,
) -> Prepared:  # fmt: skip
    """The trainer on the pairs (``data``: train, eval or None), the pairs it kept after its length filter
    (``why`` it drops one) and the parameter count of the ``trained`` part logged."""
    train, evaluation = data
    trainer, events = make_trainer(
        trainer_class, build_args, config, job_dir, plan, cancel, train=train, evaluation=evaluation,
        **trainer_kwargs,
    )  # fmt: skip
    n_train, n_eval = count_kept(trainer, events, len(train), config, why)
    trainable, total = count_parameters(trainer.model)
    log(f"{trained}: {trainable:,} trainable of {total:,} parameters.")
    return Prepared(trainer, events, n_train, n_eval, trainable)


def count_kept(trainer: Any, events: Any, n_given: int, config: SFTJobConfig, why: str) -> tuple[int, int]:
    """(n_train, n_eval) left after the trainer's length filter; fails when no training pair is left."""
    kept = len(trainer.train_dataset)
    if kept == 0:
        raise DataError(
            f"No preference pair fits in max_length={config.max_length} tokens: {why}.",
            advice="Raise max_length, or shorten the system prompt.",
        )
    if kept < n_given:
        log(f"Dropped {n_given - kept} of {n_given} pairs: {why}.", "warning")
    events.n_train = kept  # what `started` reports: the pairs actually trained on
    n_eval = 0 if trainer.eval_dataset is None else len(trainer.eval_dataset)
    if trainer.eval_dataset is not None and n_eval == 0:
        log(f"No evaluation pair is left ({why}): training without evaluation.", "warning")
        trainer.eval_dataset = None
        trainer.args.eval_strategy = "no"
    events.n_eval = n_eval
    return kept, n_eval
