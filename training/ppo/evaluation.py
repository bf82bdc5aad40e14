"""Evaluation of the policy during a PPO run: greedy answers to held-back prompts, scored by the reward model.

The evaluation prompts are ``data/eval_prompts.jsonl`` when the job folder has one, else ``eval_prompts``
prompts held back from the training prompts by a seeded shuffle (the same split on every run and on resume),
but only when at least as many stay for training. The held-out questions of the Compare page are never used
here: they stay an untouched test set.

An evaluation answers each prompt greedily (so two evaluations differ only because the policy changed, and no
random numbers are drawn: a run with evaluations samples the same rollouts as one without), scores the answers
with the reward adapter, and takes the exact KL to the reference over the vocabulary along each answer
(greedy answers are not samples of the policy, so training's sampled-token estimate would be biased). All of
it without gradients, ``forward_batch_size`` answers per pass.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import torch

from training.job_folder import EVAL_PROMPTS_FILE
from training.ppo.config import PPOJobConfig
from training.ppo.rollout import Prompt, collate, reward_inputs, sample_answers


@dataclass(frozen=True)
class EvalSplit:
    train: list[Prompt]
    eval: list[Prompt]
    note: str  # where the evaluation prompts came from, or why there is no evaluation


def hold_back(prompts: list[Prompt], config: PPOJobConfig) -> EvalSplit:
    """Split the training prompts: ``eval_prompts`` of them, chosen by a shuffle seeded with ``seed``, for evaluation."""
    n = config.eval_prompts
    if not config.eval_every:
        return EvalSplit(prompts, [], "No evaluation (eval_every is 0).")
    if n == 0:
        return EvalSplit(
            prompts, [], "No evaluation: eval_prompts is 0 and there is no data/eval_prompts.jsonl."
        )
    if len(prompts) < 2 * n:
        return EvalSplit(
            prompts,
            [],
            f"No evaluation: {len(prompts)} prompts are too few to hold back eval_prompts = {n} "
            f"(at least {2 * n} needed, so as many stay for training); add prompts or lower eval_prompts.",
        )
    order = list(range(len(prompts)))
    random.Random(config.seed).shuffle(order)
    held = set(order[:n])
    train = [p for i, p in enumerate(prompts) if i not in held]
    evaluation = [p for i, p in enumerate(prompts) if i in held]
    return EvalSplit(train, evaluation, f"Evaluating on {n} prompts held back from {len(prompts)}.")


def from_file(train: list[Prompt], evaluation: list[Prompt], skipped: int, config: PPOJobConfig) -> EvalSplit:
    """The prompts of data/eval_prompts.jsonl that fit (``skipped`` did not) for evaluation; training keeps all."""
    limit = config.max_prompt_length
    if not config.eval_every:
        return EvalSplit(train, [], "No evaluation (eval_every is 0).")
    if not evaluation:
        note = f"No evaluation: every prompt of {EVAL_PROMPTS_FILE} is longer than {limit} tokens."
        return EvalSplit(train, [], note)
    note = f"Evaluating on {len(evaluation)} prompts of {EVAL_PROMPTS_FILE}"
    note += f" ({skipped} longer than {limit} tokens skipped)." if skipped else "."
    return EvalSplit(train, evaluation, note)


def is_evaluation_step(step: int, config: PPOJobConfig) -> bool:
    """Every ``eval_every`` steps, and after the last step (when the run has evaluation prompts)."""
    return step % config.eval_every == 0 or step == config.max_steps


@dataclass(frozen=True)
class EvalStats:
    """What an evaluation reports (a `metric` event's extras)."""

    eval_reward_mean: float
    eval_kl: float  # mean over answers of the summed exact per-token KL to the reference (nats per answer)
    eval_answer_length: float  # tokens per answer
    eval_s: float


class Evaluator:
    """Evaluates the current policy on fixed prompts; holds nothing but the prompts between evaluations."""

    def __init__(self, models: Any, tokenizer: Any, config: PPOJobConfig, prompts: list[Prompt], cancel: Any):
        self.models, self.tokenizer, self.config = models, tokenizer, config
        self.prompts, self.cancel = prompts, cancel

    @torch.no_grad()
    def run(self) -> EvalStats:
        start = time.perf_counter()
        config, models = self.config, self.models
        models.train(False)
        scores, kls, lengths = [], [], []
        size = config.forward_batch_size
        for first in range(0, len(self.prompts), size):
            self.cancel.check()
            chunk = self.prompts[first : first + size]
            rollouts = sample_answers(
                models,
                self.tokenizer,
                chunk,
                config.max_new_tokens,
                config.temperature,
                self.cancel,
                greedy=True,
            )
            self.cancel.check()
            batch = collate(
                [r.prompt.ids for r in rollouts], [r.answer for r in rollouts], self.tokenizer.pad_token_id
            )
            input_ids, attention_mask = (
                batch.input_ids.to(models.device),
                batch.attention_mask.to(models.device),
            )
            kl = (
                models.answer_kl(input_ids, attention_mask, batch.prompt_len, config.temperature)
                .float()
                .cpu()
            )
            kls.append((kl * batch.answer_mask).sum(1))
            lengths.append(batch.answer_mask.sum(1))
            ids, am = reward_inputs(self.tokenizer, rollouts)
            scores.append(models.scores(ids.to(models.device), am.to(models.device)).float().cpu())
        return EvalStats(
            eval_reward_mean=float(torch.cat(scores).mean()),
            eval_kl=float(torch.cat(kls).mean()),
            eval_answer_length=float(torch.cat(lengths).mean()),
            eval_s=time.perf_counter() - start,
        )


@dataclass
class EarlyStopping:
    """The best evaluation so far and how many evaluations since have not beaten it (saved for resume)."""

    patience: int  # 0: never stop
    best_value: float | None = None
    best_step: int | None = None
    since_best: int = 0

    def update(self, step: int, value: float) -> bool:
        """Record an evaluation; True when the run should stop now."""
        if self.best_value is None or value > self.best_value:
            self.best_value, self.best_step, self.since_best = value, step, 0
        else:
            self.since_best += (
                1  # a tie is no improvement, but the later step is the best, as for checkpoints
            )
            if value == self.best_value:
                self.best_step = step
        return self.patience > 0 and self.since_best >= self.patience

    def sentence(self, step: int) -> str:
        return (
            f"Stopped early at step {step}: eval_reward_mean has not improved for {self.since_best} evaluations; "
            f"best {self.best_value:.4g} at step {self.best_step}."
        )
