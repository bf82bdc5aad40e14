"""What the two programs trained on preference pairs share (dpo and reward): the inputs checked before torch
loads, the pairs as a ``datasets.Dataset``, and the pairs left after the trainer's length filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import SFTJobConfig
from training.data import DataError, split_note
from training.lora import check_adapter_folder, check_model_folder
from training.pair_data import Pairs, load_pair_data
from training.runner import log


def dataset(pairs: Pairs | None) -> Any:
    from datasets import Dataset

    return None if pairs is None else Dataset.from_dict(pairs.columns())


def check_inputs(config: SFTJobConfig, job_dir: Path) -> tuple[Pairs, Pairs | None]:
    """The cheap checks, before torch loads: output free, model and parent folders, every pair line."""
    final_dir = job_dir / config.output_name
    if final_dir.exists():
        raise FileExistsError(f"{final_dir} already exists; refusing to overwrite an earlier adapter.")
    check_model_folder(config.base_model)
    if config.parent_adapter:
        check_adapter_folder(config.parent_adapter)
    train, evaluation = load_pair_data(job_dir, config.eval_fraction, config.seed)
    n_eval = 0 if evaluation is None else len(evaluation)
    log(f"{len(train)} training pairs, {n_eval} evaluation pairs.")
    if note := split_note(len(train), config.eval_fraction, n_eval, "pairs"):
        log(note)
    return train, evaluation


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
