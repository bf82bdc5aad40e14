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
is an adapter on the shared base already). Only "default" is saved: the "ref" copy is deleted after training,
and checkpoints keep only "default" (training/callbacks.CheckpointCallback drops peft's ``ref/`` subfolder; a
resumed job rebuilds "ref" from the parent, as the first start did).

``run_program`` (prepare -> train -> final evaluation -> save -> result.json, in training/runner.py) is shared by sft,
hitl, dpo and reward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.cancel import CancelToken
from training.config import DPOJobConfig
from training.pair_training import check_inputs, parent_or_fresh_lora, prepare_pair_trainer
from training.runner import Prepared, load_base, log, run_program, trainer_arguments

# Numbers TRL's DPOTrainer logs (flat keys, TRL's names) whose last values go into result.json.
DPO_SUMMARY_KEYS = ("rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected")


def build_dpo_args(config: DPOJobConfig, job_dir: Path, on_cpu: bool, bf16: bool, has_eval: bool) -> Any:
    """The trl.DPOConfig for a job: the shared trainer arguments plus DPO's own."""
    from trl import DPOConfig

    return DPOConfig(
        **trainer_arguments(config, job_dir, on_cpu, bf16, has_eval),
        beta=config.beta,
        loss_type=[config.loss_type],
        precompute_ref_log_probs=False,
    )


def prepare(config: DPOJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> Prepared:
    """Check inputs, load data, base model and LoRA, and build the DPOTrainer (nothing trained yet)."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    data = check_inputs(config, job_dir)
    plan, tokenizer, model = load_base(config, cancel)
    model, peft_config = parent_or_fresh_lora(model, config)
    if config.parent_adapter:  # trainable "default"; TRL adds the frozen copy "ref" (the reference)
        log(f"Starting from and referring to {config.parent_adapter} (frozen copy 'ref').")
    else:  # TRL wraps the base; the reference is the base with the adapter disabled
        log("Fresh LoRA; the reference is the base model.")

    from trl import DPOTrainer

    # TRL drops pairs whose prompt alone fills max_length (the answers would be cut away entirely)
    return prepare_pair_trainer(
        DPOTrainer, build_dpo_args, config, job_dir, cancel, plan=plan, data=data,
        trainer_kwargs={"model": model, "processing_class": tokenizer, "peft_config": peft_config},
        why="the prompt fills max_length", trained="LoRA",
    )  # fmt: skip


def drop_reference(model: Any) -> None:
    """Delete TRL's frozen "ref" copy so that only the trained adapter is saved (and its memory is freed)."""
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")


def run(config: DPOJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Train one DPO adapter and save it; returns {adapter_path, metrics, duration_s}. Raises on failure."""
    return run_program(prepare, DPO_SUMMARY_KEYS, config, job_dir, cancel, before_save=drop_reference)
