"""What every trainer program shares (sft, hitl, dpo, reward; ppo its input checks and training_info.json;
score and evaluate its log and result): the cheap checks before torch loads, the seeded base model,
TrainingArguments from a job config, the trainer with the event, checkpoint and early-stopping callbacks, the
run itself (resume, train, save the adapter atomically, result.json) and the log line.

The programs import this module and never each other; training/kinds.py maps a kind to its program.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import protocol
from training.atomic_files import save_folder_atomically, write_json_atomic
from training.cancel import CancelToken
from training.checkpoints import CHECKPOINTS_DIR, CheckpointInfo, find_best_and_last, list_checkpoints
from training.config import SFTJobConfig
from training.data import DataError, split_note
from training.distributed import check_same_adapter, describe_processes
from training.job_folder import RESULT_FILE, JobResult, finished_result
from training.lora import check_adapter_folder, check_model_folder, keep_trainable_in_compute_dtype

# Earlier versions' trainer folder; the trainer's output_dir is DIR/checkpoints now. Removed if found.
TRAINER_DIR = "trainer-scratch"


class CheckpointError(DataError):
    """The job folder's checkpoints do not allow what was asked: resuming without one, or a fresh start
    over an earlier start's ones. ``advice`` says what to do."""


def schedule_steps(config: SFTJobConfig) -> float | int:
    """``eval_steps`` as transformers takes it: a float share below 1, else a whole number of steps."""
    return config.eval_steps if config.eval_steps < 1 else int(config.eval_steps)


def trainer_arguments(config: SFTJobConfig, job_dir: Path, on_cpu: bool, bf16: bool, has_eval: bool) -> dict:
    """The TRL config arguments every trainer-based program shares: our hyperparameters plus the settings the
    event protocol needs (a log every ``logging_steps``, no console output) and the checkpoint schedule: an
    evaluation (when there is an eval set) and a full checkpoint every ``eval_steps`` and at the last step,
    into DIR/checkpoints, where CheckpointCallback prunes them (transformers' own rotation is off)."""
    return dict(
        output_dir=str(job_dir / CHECKPOINTS_DIR),
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
        gradient_checkpointing=config.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        use_cpu=on_cpu,
        bf16=bf16,
        fp16=False,
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=schedule_steps(config),
        save_strategy="steps",
        save_steps=schedule_steps(config),  # the same schedule: each checkpoint has its step's eval_loss
        save_total_limit=None,
        save_only_model=False,  # optimiser, scheduler and RNG states too: what resuming needs
        load_best_model_at_end=False,  # the app chooses between best and last (training/checkpoints.py)
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )


def check_job_folders(config: Any, job_dir: Path) -> None:
    """The cheap checks of every adapter-training program, before torch loads: the output folder is free, the
    base model folder and the parent adapter (when given) can be loaded."""
    final_dir = job_dir / config.output_name
    if final_dir.exists():
        raise FileExistsError(f"{final_dir} already exists; refusing to overwrite an earlier adapter.")
    check_model_folder(config.base_model)
    if config.parent_adapter:
        check_adapter_folder(config.parent_adapter)


def load_training_data(config: SFTJobConfig, job_dir: Path, load: Callable[..., Any], noun: str) -> Any:
    """(train, eval or None) from ``load(job_dir, eval_fraction, seed)``, their sizes logged (``noun``: what
    they hold) and why there is no evaluation slice when there is none."""
    train, evaluation = load(job_dir, config.eval_fraction, config.seed)
    n_eval = 0 if evaluation is None else len(evaluation)
    log(f"{len(train)} training {noun}, {n_eval} evaluation {noun}.")
    if note := split_note(len(train), config.eval_fraction, n_eval, noun):
        log(note)
    return train, evaluation


def load_base(config: SFTJobConfig, cancel: CancelToken, scorer: bool = False) -> tuple[Any, Any, Any]:
    """(device plan, tokenizer, base model). Python, NumPy and torch are seeded before the model is built: a fresh
    LoRA's (and score head's) random start is then the same in every run of a config (the trainer seeds again,
    for the data order, at train()). ``scorer``: the base with a score head, read at the last non-pad token."""
    from transformers import set_seed

    from training.lora import choose_device, load_base_model, load_tokenizer

    plan = choose_device(config.device, config.quantization)
    set_seed(config.seed)
    log(f"Loading {config.base_model}{' with a score head' if scorer else ''} on {plan.describe()}.")
    tokenizer = load_tokenizer(config.base_model)
    model = load_base_model(config.base_model, plan, config.gradient_checkpointing, scorer=scorer)
    if scorer:
        model.config.pad_token_id = tokenizer.pad_token_id
    cancel.check()
    return plan, tokenizer, model


def make_trainer(
    trainer_class: Any,
    build_args: Callable[..., Any],
    config: SFTJobConfig,
    job_dir: Path,
    plan: Any,
    cancel: CancelToken,
    *,
    train: Any,
    evaluation: Any,
    **trainer_kwargs: Any,
) -> tuple[Any, Any]:
    """A TRL trainer on ``train`` and ``evaluation`` (or None), with the arguments of ``build_args(config,
    job_dir, on_cpu, bf16, has_eval)``, reporting through the event protocol, keeping the contract's checkpoints
    and stopping early when asked: (trainer, its EventCallback), console output removed."""
    from datasets import Dataset

    from training.callbacks import CheckpointCallback, EarlyStopping, EventCallback, remove_console_callbacks

    def dataset(data: Any) -> Any:  # Examples (training/data.py) or Pairs (training/pair_data.py), or None
        return None if data is None else Dataset.from_dict(data.columns())

    n_eval = 0 if evaluation is None else len(evaluation)
    on_cpu, bf16 = plan.device == "cpu", plan.device == "cuda" and plan.dtype == "bfloat16"
    args = build_args(config, job_dir, on_cpu=on_cpu, bf16=bf16, has_eval=n_eval > 0)
    events = EventCallback(config.kind, len(train), n_eval, plan.describe(), cancel=cancel)
    callbacks = [events, CheckpointCallback()]
    if config.early_stopping_patience > 0:
        callbacks.append(EarlyStopping(config.early_stopping_patience, config.early_stopping_threshold, log))
    trainer_kwargs.update(train_dataset=dataset(train), eval_dataset=dataset(evaluation))
    trainer = trainer_class(args=args, callbacks=callbacks, **trainer_kwargs)
    remove_console_callbacks(trainer)
    keep_trainable_in_compute_dtype(trainer, plan)  # a 4-bit base without bf16 autocast (CPU) trains in fp32
    return trainer, events


def early_stopping(trainer: Any) -> Any:
    """The trainer's EarlyStopping callback, or None."""
    from training.callbacks import EarlyStopping

    return next((c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStopping)), None)


def write_result(job_dir: Path, data: JobResult) -> Path:
    path = job_dir / RESULT_FILE
    return write_json_atomic(path, data)


@dataclass
class Prepared:
    """A job ready to train: the trainer and what the events and result need."""

    trainer: Any  # trl.SFTTrainer around the PeftModel
    events: Any  # training.callbacks.EventCallback
    n_train: int
    n_eval: int
    trainable_parameters: int


def last_logged(trainer: Any, keys: tuple[str, ...], prefix: str = "") -> dict[str, float]:
    """The latest logged value of each of ``prefix + key`` (TRL's names), from the trainer's log history."""
    found: dict[str, float] = {}
    for entry in reversed(trainer.state.log_history):
        for key in keys:
            name = prefix + key
            if name in entry and name not in found:
                found[name] = float(entry[name])
    return found


def remove_incomplete_checkpoints(job_dir: Path) -> None:
    """Delete the folders a killed run left in DIR/checkpoints that are not complete checkpoints (half
    written: no checkpoint.json yet; half deleted: renamed away); the trainer would otherwise write into them."""
    root = job_dir / CHECKPOINTS_DIR
    complete = {c.path for c in list_checkpoints(job_dir)}
    if root.is_dir():
        for folder in root.iterdir():
            if folder.is_dir() and folder not in complete:
                shutil.rmtree(folder, ignore_errors=True)


def checkpoint_to_resume(config: SFTJobConfig, job_dir: Path) -> CheckpointInfo | None:
    """The checkpoint a ``--resume`` run continues from (its last complete one), or None for a fresh start.
    Raises CheckpointError when resuming has nothing to resume, or a fresh start would mix its checkpoints
    with an earlier start's."""
    root = job_dir / CHECKPOINTS_DIR
    _, last = find_best_and_last(job_dir)
    if config.resume and last is None:
        raise CheckpointError(
            f"Cannot resume: {root} holds no complete checkpoint (the job stopped before its first one).",
            advice="Start the job again from the beginning.",
        )
    if not config.resume and last is not None:
        raise CheckpointError(
            f"{root} already holds checkpoints of an earlier start of this job (last: {last.describe()}); "
            "refusing to mix a new run with them.",
            advice="Resume the job (--resume) or start it in a new job folder.",
        )
    remove_incomplete_checkpoints(job_dir)
    shutil.rmtree(job_dir / TRAINER_DIR, ignore_errors=True)
    return last


def checkpoint_summary(job_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(result.json's "checkpoints": best and last as {path, step, metric, value}, metrics best_step / best_eval_loss
    when the checkpoints were evaluated)."""
    best, last = find_best_and_last(job_dir)
    described = {
        name: {"path": str(c.path), "step": c.step, "metric": c.metric, "value": c.value}
        for name, c in (("best", best), ("last", last))
        if c is not None
    }
    if best is None or best.value is None:
        return described, {}
    return described, {"best_step": best.step, "best_eval_loss": best.value}


def training_ended(checkpoint: Path) -> bool:
    """Whether the trainer had decided to stop when it saved ``checkpoint`` (its last step, or an early stop):
    transformers saves its control flags in trainer_state.json."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        control = state.get("stateful_callbacks", {}).get("TrainerControl", {}).get("args", {})
        return bool(control.get("should_training_stop")) or state["global_step"] >= state["max_steps"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def train_or_restore(trainer: Any, events: Any, resume_from: CheckpointInfo | None) -> int:
    """Train (on from ``resume_from`` when given); returns the final global step.

    A checkpoint saved when training had ended (a crash or cancel came between it and the adapter) is not
    trained on: transformers would run one step past the end. Its weights and trainer state are loaded as
    they are, the callbacks see a train begin (``started``; early stopping replays its evaluations)."""
    if resume_from is None or not training_ended(resume_from.path):
        folder = None if resume_from is None else str(resume_from.path)
        return int(trainer.train(resume_from_checkpoint=folder).global_step)
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerState

    model = trainer.accelerator.unwrap_model(trainer.model)
    set_peft_model_state_dict(model, load_file(str(resume_from.path / "adapter_model.safetensors")))
    trainer.state = TrainerState.load_from_json(str(resume_from.path / "trainer_state.json"))
    trainer.control = trainer.callback_handler.on_train_begin(trainer.args, trainer.state, trainer.control)
    for entry in trainer.state.log_history:
        events.last_metrics.update({k: float(entry[k]) for k in ("loss", "eval_loss") if k in entry})
        if "eval_loss" in entry:
            events.last_eval_step = int(entry["step"])
    log(f"Training had ended at step {trainer.state.global_step}; the adapter is that checkpoint's weights.")
    return int(trainer.state.global_step)


def whole_run_train_loss(trainer: Any) -> dict[str, float]:
    """{"train_loss": mean training loss of the whole run} from the log history, which a resumed run carries
    from its checkpoint (the trainer's own train_loss covers only the steps of its last ``train()`` call)."""
    losses = [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    return {"train_loss": sum(losses) / len(losses)} if losses else {}


def run_program(
    prepare_job: Callable[[Any, Path, CancelToken], Prepared],
    summary_keys: tuple[str, ...],
    config: SFTJobConfig,
    job_dir: str | Path,
    cancel: CancelToken | None,
    before_save: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Prepare, train (from the last checkpoint with ``config.resume``), evaluate once more at the end if
    needed, save the adapter atomically, write result.json.

    ``summary_keys``: logged numbers whose last training (and eval_) values go into the metrics.
    ``before_save(model)``: a last change to the trained model before saving (DPO deletes "ref")."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    started = time.monotonic()
    resume_from = checkpoint_to_resume(config, job_dir)  # before the model loads: fail fast
    job = prepare_job(config, job_dir, cancel)
    if line := describe_processes(job.trainer.accelerator, config):  # torchrun / accelerate launch
        log(line)
    if config.early_stopping_patience and not job.n_eval:
        log("early_stopping_patience is set but there is no evaluation set: no early stopping.", "warning")
    if resume_from is not None:
        log(f"Resuming from the checkpoint at {resume_from.describe()}: {resume_from.path}.")
    cancel.check()
    cancel.deferred = True  # from here a signal stops training at the next step boundary
    trainer, events = job.trainer, job.events
    global_step = train_or_restore(trainer, events, resume_from)
    if job.n_eval and events.last_eval_step != global_step:  # no evaluation at the very end yet
        trainer.evaluate()  # logs eval_loss and the eval_ numbers through the callback
    cancel.check()
    stopper = early_stopping(trainer)
    checkpoints, best = checkpoint_summary(job_dir)
    metrics: dict[str, Any] = {
        **{k: v for k, v in events.summary.items() if k != "epoch"},  # train_loss, train_runtime, ...
        **({} if resume_from is None else whole_run_train_loss(trainer)),
        "global_step": global_step,
        "final_loss": events.last_metrics.get("loss"),  # the last logged training loss
        **last_logged(trainer, summary_keys),
        **({"eval_loss": events.last_metrics["eval_loss"]} if "eval_loss" in events.last_metrics else {}),
        **(last_logged(trainer, summary_keys, "eval_") if job.n_eval else {}),
        **best,
        "stopped_early": stopper is not None and stopper.stopped_at is not None,
        "n_train": job.n_train,
        "n_eval": job.n_eval,
        "trainable_parameters": job.trainable_parameters,
    }
    if before_save is not None:
        before_save(trainer.accelerator.unwrap_model(trainer.model))
    adapter_path = save_adapter(trainer, job_dir / config.output_name, cancel, config)
    metrics["duration_s"] = round(time.monotonic() - started, 3)
    if trainer.accelerator.is_main_process:
        protocol.emit(protocol.Artifact(name="adapter", path=str(adapter_path)))
        write_result(
            job_dir, finished_result(config.kind, str(adapter_path), metrics, config.to_dict(), checkpoints)
        )
    return {"adapter_path": str(adapter_path), "metrics": metrics, "duration_s": metrics["duration_s"]}


def write_training_info(folder: Path, config: Any, **extra: Any) -> None:
    """``folder/training_info.json``: what an adapter was trained as, from and on (plus ``extra``)."""
    info = {"kind": config.kind, "base_model": config.base_model, "parent_adapter": config.parent_adapter}
    write_json_atomic(folder / "training_info.json", {**info, **extra})


def save_adapter(trainer: Any, final_dir: Path, cancel: Any, config: SFTJobConfig) -> Path:
    """Write the adapter to a temporary folder and rename it into place only when it is complete."""
    accelerator = trainer.accelerator

    def write(folder: Path) -> None:
        accelerator.unwrap_model(trainer.model).save_pretrained(str(folder), safe_serialization=True)
        write_training_info(folder, config)

    check_same_adapter(accelerator, accelerator.unwrap_model(trainer.model), log)  # torchrun: ranks agree
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_folder_atomically(final_dir, cancel, write)
    accelerator.wait_for_everyone()
    return final_dir


def log(message: str, level: str = "info") -> None:
    protocol.emit(protocol.Log(level=level, message=message))
