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
from training.pair_training import check_inputs, parent_or_fresh_lora, prepare_pair_trainer
from training.reward_score import check_reward_adapter
from training.runner import Prepared, load_base, log, run_program, trainer_arguments

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
    data = check_inputs(config, job_dir)
    if config.parent_adapter:
        check_reward_adapter(config.parent_adapter)
    plan, tokenizer, model = load_base(config, cancel, scorer=True)
    # a parent: an earlier reward model, its LoRA and its score head; else a fresh LoRA + the score head
    model, peft_config = parent_or_fresh_lora(model, config, task_type="SEQ_CLS")
    if config.parent_adapter:
        log(f"Continuing the reward model {config.parent_adapter}.")

    from trl import RewardTrainer

    return prepare_pair_trainer(
        RewardTrainer, build_reward_args, config, job_dir, cancel, plan=plan, data=data,
        trainer_kwargs={"model": model, "processing_class": tokenizer, "peft_config": peft_config},
        why="prompt + answer is longer", trained="LoRA + score head",
    )  # fmt: skip


def run(config: RewardJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Train one reward adapter (LoRA + score head) and save it; returns {adapter_path, metrics, duration_s}."""
    return run_program(prepare, REWARD_SUMMARY_KEYS, config, job_dir, cancel)
