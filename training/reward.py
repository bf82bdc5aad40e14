"""The `reward` program (first half of model C): a reward model trained with TRL's RewardTrainer and peft.

The reward model is the base loaded as ``AutoModelForSequenceClassification(num_labels=1)`` (a fresh linear
score head on the last token's hidden state) with a LoRA of ``task_type="SEQ_CLS"``: peft then also trains
the score head (its ``modules_to_save``) and saves it with the adapter, so the adapter folder alone turns the
shared base into the reward model (see training/reward_score.py). Loss: Bradley-Terry,
``-log sigmoid(score(prompt + chosen) - score(prompt + rejected))``. TRL logs ``accuracy`` (share of pairs
scored the right way round), ``margin`` and min / mean / max reward per step, and the same with ``eval_`` on
the held-back slice (``eval_accuracy`` is the pairwise accuracy the Train page plots).

Pairs longer than ``max_length`` are left out by TRL (not truncated): a cut answer would be scored on
something else than what the clinician judged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.cancel import CancelToken
from training.config import RewardJobConfig
from training.pair_training import check_inputs, count_kept, dataset
from training.reward_score import check_reward_adapter
from training.runner import (
    Prepared,
    device_args,
    log,
    make_trainer,
    run_program,
    seed_everything,
    trainer_arguments,
)

# Numbers TRL's RewardTrainer logs whose last values go into result.json (and with "eval_" for the slice).
REWARD_SUMMARY_KEYS = ("accuracy", "margin", "mean_reward")


def build_reward_args(
    config: RewardJobConfig, job_dir: Path, on_cpu: bool, bf16: bool, has_eval: bool
) -> Any:
    """The trl.RewardConfig for a job: the shared trainer arguments."""
    from trl import RewardConfig

    return RewardConfig(**trainer_arguments(config, job_dir, on_cpu, bf16, has_eval))


def prepare(config: RewardJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> Prepared:
    """Check inputs, load data, base + score head and LoRA, and build the RewardTrainer (nothing trained yet)."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    train, evaluation = check_inputs(config, job_dir)
    if config.parent_adapter:
        check_reward_adapter(config.parent_adapter)

    from training.lora import choose_device, count_parameters, load_base_model, load_tokenizer, lora_config

    plan = choose_device(config.device, config.quantization)
    seed_everything(config.seed)  # the fresh LoRA (and score head) start the same in every run
    log(f"Loading {config.base_model} with a score head on {plan.describe()}.")
    tokenizer = load_tokenizer(config.base_model)
    model = load_base_model(config.base_model, plan, config.gradient_checkpointing, scorer=True)
    model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last non-pad token
    cancel.check()
    peft_config = None
    if config.parent_adapter:  # continue an earlier reward model: its LoRA and its score head
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.parent_adapter, is_trainable=True)
        log(f"Continuing the reward model {config.parent_adapter}.")
    else:
        peft_config = lora_config(config, task_type="SEQ_CLS")  # LoRA + the score head, saved together

    from trl import RewardTrainer

    n_eval = 0 if evaluation is None else len(evaluation)
    args = build_reward_args(config, job_dir, **device_args(plan, n_eval > 0))
    trainer, events = make_trainer(
        RewardTrainer, args, config, plan, cancel, n_train=len(train), n_eval=n_eval, model=model,
        train_dataset=dataset(train), eval_dataset=dataset(evaluation), processing_class=tokenizer,
        peft_config=peft_config,
    )  # fmt: skip
    n_train, n_eval = count_kept(trainer, events, len(train), config, "prompt + answer is longer")
    trainable, total = count_parameters(trainer.model)
    log(f"LoRA + score head: {trainable:,} trainable of {total:,} parameters.")
    return Prepared(trainer, events, n_train, n_eval, trainable)


def run(config: RewardJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Train one reward adapter (LoRA + score head) and save it; returns {adapter_path, metrics, duration_s}."""
    return run_program(prepare, REWARD_SUMMARY_KEYS, config, job_dir, cancel)
