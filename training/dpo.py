"""The `dpo` program (model D): direct preference optimisation of a LoRA adapter with TRL's DPOTrainer.

One base model in memory. How TRL 1.16 picks the reference for a peft model (trl/trainer/dpo_trainer.py,
``DPOTrainer.__init__`` and ``_compute_loss``): there is no ``ref_adapter_name`` / ``model_adapter_name``
argument any more. When ``model`` is already a ``PeftModel`` and no ``ref_model`` / ``peft_config`` is given,
TRL itself adds an adapter named "ref" (``model.add_adapter("ref", model.peft_config["default"])``) and copies
the "default" weights into it; the reference pass then runs under ``use_adapter(model, adapter_name="ref" if
"ref" in model.peft_config else None)``, i.e. with the frozen copy active, or with adapters disabled when
there is no "ref". So:

- with ``parent_adapter`` (the active SFT / HITL version) we load it trainable as "default" and TRL's frozen
  copy "ref" makes that starting version the reference;
- without a parent we pass the plain base and a ``peft_config``: TRL wraps it in a fresh LoRA and the
  reference is the base with the adapter disabled.

``precompute_ref_log_probs`` stays off: it would save the reference forward passes, not memory (the reference
is an adapter on the shared base already). Only "default" is saved: the "ref" copy is deleted after training.

``run_program`` (prepare -> train -> final evaluation -> save -> result.json) is shared with training/reward.py.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training import protocol
from training.cancel import CancelToken
from training.config import DPOJobConfig, SFTJobConfig
from training.data import DataError
from training.lora import check_adapter_folder, check_model_folder
from training.pair_data import Pairs, load_pair_data
from training.sft import TRAINER_DIR, Prepared, log, save_adapter, write_result

# Numbers TRL's DPOTrainer logs (flat keys, TRL's names) whose last values go into result.json.
DPO_SUMMARY_KEYS = ("rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected")


def build_dpo_args(config: DPOJobConfig, job_dir: Path, on_cpu: bool, bf16: bool, has_eval: bool) -> Any:
    """The trl.DPOConfig for a job: our hyperparameters plus the settings the protocol needs."""
    from trl import DPOConfig

    return DPOConfig(
        output_dir=str(job_dir / TRAINER_DIR),  # nothing is saved there; removed at the end
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the total steps
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        data_seed=config.seed,
        max_length=config.max_length,
        beta=config.beta,
        loss_type=[config.loss_type],
        precompute_ref_log_probs=False,
        gradient_checkpointing=config.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        use_cpu=on_cpu,
        bf16=bf16,
        fp16=False,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )


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
    log(f"{len(train)} training pairs, {0 if evaluation is None else len(evaluation)} evaluation pairs.")
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


def prepare(config: DPOJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> Prepared:
    """Check inputs, load data, base model and LoRA, and build the DPOTrainer (nothing trained yet)."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    train, evaluation = check_inputs(config, job_dir)

    from training.lora import choose_device, count_parameters, load_base_model, load_tokenizer, lora_config

    plan = choose_device(config.device, config.quantization)
    log(f"Loading {config.base_model} on {plan.describe()}.")
    tokenizer = load_tokenizer(config.base_model)
    model = load_base_model(config.base_model, plan, config.gradient_checkpointing)
    cancel.check()
    peft_config = None
    if config.parent_adapter:  # trainable "default"; TRL adds the frozen copy "ref" (the reference)
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.parent_adapter, is_trainable=True)
        log(f"Starting from and referring to {config.parent_adapter} (frozen copy 'ref').")
    else:  # TRL wraps the base; the reference is the base with the adapter disabled
        peft_config = lora_config(config)
        log("Fresh LoRA; the reference is the base model.")

    from trl import DPOTrainer

    from training.callbacks import EventCallback, remove_console_callbacks

    n_eval = 0 if evaluation is None else len(evaluation)
    args = build_dpo_args(
        config,
        job_dir,
        on_cpu=plan.device == "cpu",
        bf16=plan.device == "cuda" and plan.dtype == "bfloat16",
        has_eval=n_eval > 0,
    )
    events = EventCallback(config.kind, len(train), n_eval, plan.describe(), cancel=cancel)
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset(train),
        eval_dataset=dataset(evaluation),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[events],
    )
    remove_console_callbacks(trainer)
    # TRL drops pairs whose prompt alone fills max_length (the answers would be cut away entirely)
    n_train, n_eval = count_kept(trainer, events, len(train), config, "the prompt fills max_length")
    trainable, total = count_parameters(trainer.model)
    log(f"LoRA: {trainable:,} trainable of {total:,} parameters.")
    return Prepared(trainer, events, n_train, n_eval, trainable)


def last_logged(trainer: Any, keys: tuple[str, ...], prefix: str = "") -> dict[str, float]:
    """The latest logged value of each of ``prefix + key`` (TRL's names), from the trainer's log history."""
    found: dict[str, float] = {}
    for entry in reversed(trainer.state.log_history):
        for key in keys:
            name = prefix + key
            if name in entry and name not in found:
                found[name] = float(entry[name])
    return found


def run_program(
    prepare_job: Callable[[Any, Path, CancelToken], Prepared],
    summary_keys: tuple[str, ...],
    config: SFTJobConfig,
    job_dir: str | Path,
    cancel: CancelToken | None,
    before_save: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Prepare, train, evaluate once more at the end if needed, save the adapter atomically, write result.json.

    ``summary_keys``: logged numbers whose last training (and eval_) values go into the metrics.
    ``before_save(model)``: a last change to the trained model before saving (DPO deletes "ref")."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    started = time.monotonic()
    try:
        job = prepare_job(config, job_dir, cancel)
        cancel.check()
        cancel.deferred = True  # from here a signal stops training at the next step boundary
        trainer, events = job.trainer, job.events
        output = trainer.train()
        if job.n_eval and events.last_eval_step != output.global_step:  # no evaluation at the very end yet
            trainer.evaluate()  # logs eval_loss and the eval_ numbers through the callback
        cancel.check()
        metrics: dict[str, Any] = {
            **{k: v for k, v in events.summary.items() if k != "epoch"},  # train_loss, train_runtime, ...
            "global_step": output.global_step,
            "final_loss": events.last_metrics.get("loss"),  # the last logged training loss
            **last_logged(trainer, summary_keys),
            **({"eval_loss": events.last_metrics["eval_loss"]} if "eval_loss" in events.last_metrics else {}),
            **(last_logged(trainer, summary_keys, "eval_") if job.n_eval else {}),
            "n_train": job.n_train,
            "n_eval": job.n_eval,
            "trainable_parameters": job.trainable_parameters,
        }
        if before_save is not None:
            before_save(trainer.accelerator.unwrap_model(trainer.model))
        adapter_path = save_adapter(trainer, job_dir / config.output_name, cancel, config)
    finally:
        shutil.rmtree(job_dir / TRAINER_DIR, ignore_errors=True)
    metrics["duration_s"] = round(time.monotonic() - started, 3)
    if trainer.accelerator.is_main_process:
        protocol.emit(protocol.Artifact(name="adapter", path=str(adapter_path)))
        write_result(
            job_dir,
            {
                "status": "finished",
                "kind": config.kind,
                "adapter_path": str(adapter_path),
                "metrics": metrics,
                "config": config.to_dict(),
            },
        )
    return {"adapter_path": str(adapter_path), "metrics": metrics, "duration_s": metrics["duration_s"]}


def drop_reference(model: Any) -> None:
    """Delete TRL's frozen "ref" copy so that only the trained adapter is saved (and its memory is freed)."""
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")


def run(config: DPOJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Train one DPO adapter and save it; returns {adapter_path, metrics, duration_s}. Raises on failure."""
    return run_program(prepare, DPO_SUMMARY_KEYS, config, job_dir, cancel, before_save=drop_reference)
