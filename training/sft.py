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
from training.data import DataError, Examples, load_job_data, split_note
from training.lora import check_adapter_folder, check_model_folder
from training.runner import (
    Prepared,
    device_args,
    log,
    make_trainer,
    run_program,
    seed_everything,
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


def _dataset(examples: Examples | None) -> Any:
    from datasets import Dataset

    return None if examples is None else Dataset.from_dict(examples.columns())


def prepare(config: SFTJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> Prepared:
    """Check inputs, load data, base model and LoRA, and build the SFTTrainer (nothing trained yet)."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    final_dir = job_dir / config.output_name
    if final_dir.exists():
        raise FileExistsError(f"{final_dir} already exists; refusing to overwrite an earlier adapter.")

    # Fail fast on cheap checks, before torch loads.
    check_model_folder(config.base_model)
    if config.parent_adapter:
        check_adapter_folder(config.parent_adapter)
    train, evaluation = load_job_data(job_dir, config.eval_fraction, config.seed)
    n_eval = 0 if evaluation is None else len(evaluation)
    log(f"{len(train)} training examples, {n_eval} evaluation examples.")
    if note := split_note(len(train), config.eval_fraction, n_eval):
        log(note)

    from training.lora import add_lora, choose_device, count_parameters, load_base_model, load_tokenizer

    plan = choose_device(config.device, config.quantization)
    seed_everything(config.seed)  # the fresh LoRA (and score head) start the same in every run
    log(f"Loading {config.base_model} on {plan.describe()}.")
    tokenizer = load_tokenizer(config.base_model)
    model = load_base_model(config.base_model, plan, config.gradient_checkpointing)
    cancel.check()
    model = add_lora(model, config)
    trainable, total = count_parameters(model)
    origin = f"continuing from {config.parent_adapter}" if config.parent_adapter else "fresh LoRA"
    log(f"LoRA ({origin}): {trainable:,} trainable of {total:,} parameters.")

    from trl import SFTTrainer

    args = build_sft_args(config, job_dir, **device_args(plan, n_eval > 0))
    trainer, events = make_trainer(
        SFTTrainer, args, config, plan, cancel, n_train=len(train), n_eval=n_eval, model=model,
        train_dataset=_dataset(train), eval_dataset=_dataset(evaluation), processing_class=tokenizer,
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
    if trainer.eval_dataset is not None:
        n_eval = events.n_eval = len(trainer.eval_dataset)
    return Prepared(trainer, events, kept, n_eval, trainable)


def run(config: SFTJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Train one LoRA adapter and save it; returns {adapter_path, metrics, duration_s}. Raises on failure."""
    return run_program(prepare, (), config, job_dir, cancel)
