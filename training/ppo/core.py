"""The parts of PPO as pure tensor functions (no model, no state), each tested on hand-computed tensors.

Shapes: B rollouts, R response positions. Every per-token tensor is in *response space*: column j is the
j-th answer token, answers are left-aligned and right-padded, and ``mask`` (B, R) is 1.0 on answer tokens
and 0.0 on padding. Prompt tokens never enter these tensors: :func:`response_logprobs` keeps only the
predictions of answer tokens. Padding positions may hold any finite value; every function ignores them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1: over everything (dim None) or along ``dim``."""
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(values - mean) / std over the masked entries (population variance); padding comes back as 0."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(variance + eps) * mask


def response_logprobs(
    logits: torch.Tensor, input_ids: torch.Tensor, prompt_len: int, temperature: float = 1.0
) -> torch.Tensor:
    """Log-probability of each answer token under ``logits``, at the sampling temperature.

    logits (B, L, V) of input_ids (B, L) = P left-padded prompt columns + R answer columns; the logit at
    position t predicts token t + 1, so answer column j is scored by logits[:, P - 1 + j]. Returns (B, R).
    """
    answer_logits = logits[:, prompt_len - 1 : -1].float() / temperature  # (B, R, V)
    answer_tokens = input_ids[:, prompt_len:]  # (B, R)
    logprobs = F.log_softmax(answer_logits, dim=-1)
    return torch.gather(logprobs, 2, answer_tokens.unsqueeze(-1)).squeeze(-1)


def per_token_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from sampled tokens, (B, R) -> (B, R).

    k1 = logp - ref_logp (unbiased, can be negative; TRL's default); k3 = (r - 1) - log r with
    r = ref_p / p (unbiased and never negative, lower variance).
    """
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}")


def penalised_rewards(
    scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> torch.Tensor:
    """Per-token rewards: -kl_coef * KL on every answer token, plus the reward model's score on the last one.

    scores (B,), kl (B, R), mask (B, R) -> (B, R), zero on padding.
    """
    rewards = -kl_coef * kl * mask
    last = mask.sum(dim=1).long().clamp(min=1) - 1  # (B,) index of each answer's last token
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last] += scores.to(rewards.dtype)
    return rewards


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation: (advantages, returns), both (B, R) and zero on padding.

    delta_t = r_t + gamma * V_{t+1} - V_t;  A_t = delta_t + gamma * lam * A_{t+1};  returns = A + V.
    Past the last answer token V and A are 0 (the episode has ended): padding values are zeroed first, and
    as padding only follows the answer, the recursion then yields 0 there and nothing leaks backwards.
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])  # (B,)
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


@dataclass(frozen=True)
class LossParts:
    """A loss and how often clipping was active (share of answer tokens), both scalars."""

    loss: torch.Tensor
    clip_fraction: torch.Tensor


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> LossParts:
    """PPO's clipped surrogate: mean over answer tokens of max(-A * ratio, -A * clip(ratio, 1 +- eps)).

    All (B, R); ratio = exp(logp - old_logp). clip_fraction: share of tokens where the clipped term won.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    return LossParts(loss, masked_mean((clipped > unclipped).float(), mask).detach())


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> LossParts:
    """Clipped value loss: 0.5 * mean over answer tokens of max((V - G)^2, (V_clipped - G)^2).

    All (B, R); V_clipped = old V + clip(V - old V, +- clip_range). clip_fraction: share where the clipped
    error was the larger.
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(error, clipped_error), mask)
    return LossParts(loss, masked_mean((clipped_error > error).float(), mask).detach())


class KLController:
    """The KL coefficient: fixed, or adapted towards ``target`` (Ziegler et al. 2019, as TRL did).

    After each batch: error = clip(kl / target - 1, -0.2, 0.2); coef *= 1 + error * n_rollouts / horizon.
    """

    def __init__(self, init_coef: float, target: float | None, horizon: int):
        self.value, self.target, self.horizon = init_coef, target, horizon

    def update(self, kl: float, n_rollouts: int) -> float:
        if self.target is not None:
            error = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.value *= 1.0 + error * n_rollouts / self.horizon
        return self.value
