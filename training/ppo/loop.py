"""One PPO step: generate a batch of answers, score them, then optimise on them for a few epochs.

    generation    batch_size answers sampled from the policy (forward_batch_size per generate call)
    scoring       no-grad passes: policy log-probs and values, reference log-probs, reward model scores;
                  per-token KL, penalised rewards, GAE advantages (whitened) and returns
    optimisation  ppo_epochs passes over the batch in shuffled mini-batches of mini_batch_size: clipped
                  policy loss + vf_coef * clipped value loss, one optimiser step per mini-batch

The three phases are timed separately (``StepStats``). Cancel is checked between generate calls, forward
passes and optimiser steps, and generation itself stops early on Cancel.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import torch

from training.ppo import core
from training.ppo.config import PPOJobConfig
from training.ppo.model import PPOModels
from training.ppo.rollout import Prompt, Rollout, collate, reward_inputs, sample_answers


@dataclass(frozen=True)
class Scored:
    """A batch of rollouts with everything the optimisation needs; per-token tensors (B, R) in answer space."""

    rollouts: list[Rollout]
    mask: torch.Tensor  # (B, R) 1.0 on answer tokens
    logprobs: torch.Tensor  # (B, R) policy at sampling time ("old")
    values: torch.Tensor  # (B, R) value head at sampling time ("old")
    advantages: torch.Tensor  # (B, R) whitened over the batch's answer tokens
    returns: torch.Tensor  # (B, R)
    scores: torch.Tensor  # (B,) reward model
    kl: torch.Tensor  # (B,) summed per-token KL of each answer


@dataclass(frozen=True)
class StepStats:
    """What a PPO step reports (a `metric` event): means over the batch and over the optimiser steps."""

    reward_mean: float
    kl: float  # mean over answers of the summed per-token KL to the reference (nats per answer)
    kl_coef: float  # the coefficient used in this step's rewards
    policy_loss: float
    value_loss: float
    loss: float  # policy_loss + vf_coef * value_loss
    clip_fraction: float
    value_clip_fraction: float
    answer_length: float  # tokens per answer
    grad_norm: float  # before clipping, mean over optimiser steps
    generation_s: float
    scoring_s: float
    optimisation_s: float


class PromptSampler:
    """Prompts in a seeded shuffled order, reshuffled after each pass; fewer prompts than a batch repeat."""

    def __init__(self, prompts: list[Prompt], seed: int):
        self.prompts, self.rng, self.order = prompts, random.Random(seed), []

    def take(self, n: int) -> list[Prompt]:
        out = []
        while len(out) < n:
            if not self.order:
                self.order = list(range(len(self.prompts)))
                self.rng.shuffle(self.order)
            out.append(self.prompts[self.order.pop()])
        return out


class PPOStep:
    """Runs PPO steps on shared models; holds the optimiser and the KL controller between steps."""

    def __init__(self, models: PPOModels, tokenizer: Any, config: PPOJobConfig, cancel: Any):
        self.models, self.tokenizer, self.config, self.cancel = models, tokenizer, config, cancel
        self.params = models.trainable_parameters()
        self.optimizer = torch.optim.AdamW(self.params, lr=config.learning_rate, weight_decay=0.0)
        self.kl_control = core.KLController(config.init_kl_coef, config.kl_target, config.kl_horizon)
        self.rng = random.Random(config.seed)

    def run(self, prompts: list[Prompt]) -> StepStats:
        start = time.perf_counter()
        self.models.train(False)
        rollouts = self.generate(prompts)
        generated = time.perf_counter()
        kl_coef = self.kl_control.value
        scored = self.score(rollouts, kl_coef)
        scoring_done = time.perf_counter()
        losses = self.optimise(scored)
        done = time.perf_counter()
        kl = float(scored.kl.mean())
        self.kl_control.update(kl, len(rollouts))
        return StepStats(
            reward_mean=float(scored.scores.mean()),
            kl=kl,
            kl_coef=kl_coef,
            answer_length=float(scored.mask.sum(1).mean()),
            generation_s=generated - start,
            scoring_s=scoring_done - generated,
            optimisation_s=done - scoring_done,
            **losses,
        )

    def _chunks(self, items: list[Any]) -> list[list[Any]]:
        size = self.config.forward_batch_size
        return [items[i : i + size] for i in range(0, len(items), size)]

    def generate(self, prompts: list[Prompt]) -> list[Rollout]:
        rollouts = []
        for chunk in self._chunks(prompts):
            self.cancel.check()
            config = self.config
            rollouts += sample_answers(
                self.models, self.tokenizer, chunk, config.max_new_tokens, config.temperature, self.cancel
            )
        self.cancel.check()
        return rollouts

    def _batch(self, rollouts: list[Rollout]) -> Any:
        batch = collate(
            [r.prompt.ids for r in rollouts], [r.answer for r in rollouts], self.tokenizer.pad_token_id
        )
        device = self.models.device
        return (
            batch.input_ids.to(device),
            batch.attention_mask.to(device),
            batch.prompt_len,
            batch.answer_mask,
        )

    @torch.no_grad()
    def score(self, rollouts: list[Rollout], kl_coef: float) -> Scored:
        """Old log-probs and values, reference log-probs and scores, then rewards, advantages and returns."""
        R = max(len(r.answer) for r in rollouts)
        parts: dict[str, list[torch.Tensor]] = {
            "logprobs": [],
            "values": [],
            "ref": [],
            "scores": [],
            "mask": [],
        }
        for chunk in self._chunks(rollouts):
            self.cancel.check()
            input_ids, attention_mask, prompt_len, mask = self._batch(chunk)
            logprobs, values = self.models.policy(
                input_ids, attention_mask, prompt_len, self.config.temperature
            )
            ref = self.models.reference(input_ids, attention_mask, prompt_len, self.config.temperature)
            ids, am = reward_inputs(self.tokenizer, chunk)
            scores = self.models.scores(ids.to(self.models.device), am.to(self.models.device))
            pad = R - mask.shape[1]  # chunks are padded to their own longest answer; the batch to R
            for key, value in (("logprobs", logprobs), ("values", values), ("ref", ref), ("mask", mask)):
                parts[key].append(torch.nn.functional.pad(value.float().cpu(), (0, pad)))
            parts["scores"].append(scores.float().cpu())
        logprobs, values, ref, mask = (torch.cat(parts[k]) for k in ("logprobs", "values", "ref", "mask"))
        scores = torch.cat(parts["scores"])
        kl = core.per_token_kl(logprobs, ref, self.config.kl_estimator) * mask  # (B, R)
        rewards = core.penalised_rewards(scores, kl, mask, kl_coef)
        advantages, returns = core.gae(rewards, values, mask, self.config.gamma, self.config.lam)
        advantages = core.masked_whiten(advantages, mask)
        return Scored(rollouts, mask, logprobs, values * mask, advantages, returns, scores, kl.sum(1))

    def optimise(self, scored: Scored) -> dict[str, float]:
        """ppo_epochs passes of shuffled mini-batches; returns the means of the losses and clip fractions."""
        config, models = self.config, self.models
        models.train(True)
        totals: dict[str, float] = {}
        n_steps = 0
        indices = list(range(len(scored.rollouts)))
        for _ in range(config.ppo_epochs):
            self.rng.shuffle(indices)
            for start in range(0, len(indices), config.mini_batch_size):
                self.cancel.check()
                rows = indices[start : start + config.mini_batch_size]
                step = self._optimiser_step(scored, rows)
                for key, value in step.items():
                    totals[key] = totals.get(key, 0.0) + value
                n_steps += 1
        models.train(False)
        return {key: value / n_steps for key, value in totals.items()}

    def _optimiser_step(self, scored: Scored, rows: list[int]) -> dict[str, float]:
        config = self.config
        input_ids, attention_mask, prompt_len, mask = self._batch([scored.rollouts[i] for i in rows])
        R = mask.shape[1]  # this mini-batch's longest answer; the stored tensors are cut to it

        def old(tensor: torch.Tensor) -> torch.Tensor:
            return tensor[rows, :R].to(self.models.device)

        mask = mask.to(self.models.device)
        logprobs, values = self.models.policy(input_ids, attention_mask, prompt_len, config.temperature)
        policy = core.policy_loss(
            logprobs.float(), old(scored.logprobs), old(scored.advantages), mask, config.clip_range
        )
        value = core.value_loss(
            values, old(scored.values), old(scored.returns), mask, config.clip_range_value
        )
        loss = policy.loss + config.vf_coef * value.loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, config.max_grad_norm)
        self.optimizer.step()
        return {
            "policy_loss": policy.loss.item(),
            "value_loss": value.loss.item(),
            "loss": loss.item(),
            "clip_fraction": float(policy.clip_fraction),
            "value_clip_fraction": float(value.clip_fraction),
            "grad_norm": float(grad_norm),
        }
