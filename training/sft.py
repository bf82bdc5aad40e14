"""The `sft` and `hitl` programs: LoRA fine-tuning with TRL's SFTTrainer on prompt/completion data.

Both kinds share this path and differ only in their defaults (see training/config.py) and in `hitl`
usually continuing from ``parent_adapter``. The loss is on the completion (answer) tokens only: TRL's
collator sets the labels of prompt and padding tokens to -100 for prompt/completion data.

Steps: read config and data (fail fast, before torch loads) -> load the base (4-bit on CUDA) and LoRA ->
train with an event-emitting callback, evaluating and keeping a checkpoint every ``eval_steps`` (the last and
the best by eval_loss stay in ``DIR/checkpoints``, training/checkpoints.py) -> save the adapter to
``DIR/<output_name>.tmp-<pid>`` and rename it to ``DIR/<output_name>`` when complete -> write
``DIR/result.json`` -> ``finished``. With ``config.resume`` training continues from the last checkpoint
(weights, optimiser, scheduler, RNG states and the position in the data, as transformers restores them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.cancel import CancelToken
from training.config import SFTJobConfig
from training.data import DataError, load_job_data
from training.runner import (
    Prepared,
    check_job_folders,
    load_base,
    load_training_data,
    log,
    make_trainer,
    run_program,
    trainer_arguments,
)


def build_sft_args(config: SFTJobConfig, job_dir: Path, on_cpu: bool, bf16: bool, has_eval: bool) -> Any:
    """The trl.SFTConfig for a job."""
    from trl import SFTConfig

    return SFTConfig(
        **trainer_arguments(config, job_dir, on_cpu, bf16, has_eval),
        completion_only_loss=True,  # explicit: loss on the answer tokens only
        remove_unused_columns=True,
    )


def prepare(config: SFTJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> Prepared:
    """Check inputs, load data, base model and LoRA, and build the SFTTrainer (nothing trained yet)."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    check_job_folders(config, job_dir)  # fail fast on cheap checks, before torch loads
    train, evaluation = load_training_data(config, job_dir, load_job_data, "examples")

    from training.lora import add_lora, count_parameters

    plan, tokenizer, model = load_base(config, cancel)
    model = add_lora(model, config)
    trainable, total = count_parameters(model)
    origin = f"continuing from {config.parent_adapter}" if config.parent_adapter else "fresh LoRA"
    log(f"LoRA ({origin}): {trainable:,} trainable of {total:,} parameters.")

    from trl import SFTTrainer

    trainer, events = make_trainer(
        SFTTrainer, build_sft_args, config, job_dir, plan, cancel, train=train, evaluation=evaluation,
        model=model, processing_class=tokenizer,
    )  # fmt: skip
    kept = len(trainer.train_dataset)  # TRL drops examples whose answer was cut away entirely by max_length
    if kept == 0:
        raise DataError(
            f"No training example fits in max_length={config.max_length} tokens: every prompt is longer.",
            advice="Raise max_length, or shorten the system prompt.",
        )
    if kept < len(train):
        log(f"Dropped {len(train) - kept} of {len(train)} examples: the prompt fills max_length.", "warning")
    events.n_train = kept  # what `started` reports: the examples actually trained on
    n_eval = 0 if trainer.eval_dataset is None else len(trainer.eval_dataset)
    events.n_eval = n_eval
    return Prepared(trainer, events, kept, n_eval, trainable)


def run(config: SFTJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Train one LoRA adapter and save it; returns {adapter_path, metrics, duration_s}. Raises on failure."""
    return run_program(prepare, (), config, job_dir, cancel)
