"""The parts of PPO on hand-computed tensors: masked statistics, log-probs of answer tokens, KL, rewards, GAE,
the clipped losses, the KL controller, and the masks of prompt, answer and padding tokens."""

from __future__ import annotations

import math

import pytest
import torch

from training.ppo import core
from training.ppo.rollout import collate, cut_answer

T = torch.tensor


def close(a: torch.Tensor, b) -> None:
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), rtol=1e-5, atol=1e-6)


def test_masked_mean_ignores_padding():
    values = T([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = T([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    close(core.masked_mean(values, mask), 7 / 3)
    close(core.masked_mean(values, mask, dim=1), [1.5, 4.0])


def test_masked_whiten_uses_answer_tokens_only():
    whitened = core.masked_whiten(T([[1.0, 3.0, 99.0]]), T([[1.0, 1.0, 0.0]]))
    close(whitened, [[-1.0, 1.0, 0.0]])  # mean 2, variance 1; the padding is neither counted nor kept


def test_response_logprobs_scores_answer_tokens_from_the_previous_position():
    # P = 2 prompt columns, R = 2 answer columns, V = 3 tokens; input ids [x, x, 0, 2]
    ln2 = math.log(2.0)
    logits = T(
        [
            [
                [50.0, -50.0, 0.0],  # position 0 predicts the prompt's token 1: not an answer token
                [2 * ln2, 0.0, 0.0],  # predicts answer token 0 (= 0): p = 4/6 at T=1, 2/4 at T=2
                [0.0, 0.0, 0.0],  # predicts answer token 1 (= 2): p = 1/3
                [-50.0, 50.0, 9.0],  # after the last token: predicts nothing
            ]
        ]
    )
    input_ids = T([[1, 1, 0, 2]])
    close(core.response_logprobs(logits, input_ids, 2), [[math.log(4 / 6), math.log(1 / 3)]])
    close(core.response_logprobs(logits, input_ids, 2, temperature=2.0), [[math.log(0.5), math.log(1 / 3)]])


def test_kl_estimators():
    logprobs, ref = T([[-1.0, -2.0]]), T([[-1.5, -1.0]])
    close(core.per_token_kl(logprobs, ref, "k1"), [[0.5, -1.0]])
    k3 = [math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]  # (r - 1) - log r, r = ref_p / p
    close(core.per_token_kl(logprobs, ref, "k3"), [k3])
    assert (core.per_token_kl(torch.randn(4, 6), torch.randn(4, 6), "k3") >= 0).all()
    with pytest.raises(ValueError):
        core.per_token_kl(logprobs, ref, "k9")


def test_penalised_rewards_put_the_score_on_the_last_answer_token():
    scores = T([1.0, 2.0])
    kl = T([[0.1, 0.2, 0.3], [0.5, 9.0, 9.0]])
    mask = T([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    rewards = core.penalised_rewards(scores, kl, mask, kl_coef=0.5)
    close(rewards, [[-0.05, -0.1, -0.15 + 1.0], [-0.25 + 2.0, 0.0, 0.0]])


def test_gae_by_hand():
    # gamma 1, lambda 0.5; deltas: t2 = 1 - 0.7 = 0.3, t1 = 0.7 - 0.6 = 0.1, t0 = 0.6 - 0.5 = 0.1
    advantages, returns = core.gae(T([[0.0, 0.0, 1.0]]), T([[0.5, 0.6, 0.7]]), torch.ones(1, 3), 1.0, 0.5)
    close(advantages, [[0.1 + 0.5 * 0.25, 0.1 + 0.5 * 0.3, 0.3]])
    close(returns, [[0.725, 0.85, 1.0]])


def test_gae_discounts():
    advantages, returns = core.gae(T([[0.0, 1.0]]), T([[0.0, 0.0]]), torch.ones(1, 2), 0.9, 1.0)
    close(advantages, [[0.9, 1.0]])
    close(returns, [[0.9, 1.0]])


def test_gae_ends_the_episode_at_the_last_answer_token():
    padded = core.gae(T([[0.0, 1.0, 7.0]]), T([[0.5, 0.6, 5.0]]), T([[1.0, 1.0, 0.0]]), 1.0, 1.0)
    unpadded = core.gae(T([[0.0, 1.0]]), T([[0.5, 0.6]]), torch.ones(1, 2), 1.0, 1.0)
    close(padded[0], [[0.5, 0.4, 0.0]])  # deltas 0.1 and 0.4; the padding's value 5 is not bootstrapped
    close(padded[1], [[1.0, 1.0, 0.0]])
    close(padded[0][:, :2], unpadded[0])
    close(padded[1][:, :2], unpadded[1])


def test_policy_loss_clips_and_its_gradient_stops_where_clipped():
    # ratios 1.5, 0.5, 1.0 and a padded 4th token; advantages 1, 1, -2; clip 0.2
    old = T([[0.0, 0.0, 0.0, 0.0]])
    logprobs = T([[math.log(1.5), math.log(0.5), 0.0, 30.0]], requires_grad=True)
    advantages = T([[1.0, 1.0, -2.0, 100.0]])
    mask = T([[1.0, 1.0, 1.0, 0.0]])
    parts = core.policy_loss(logprobs, old, advantages, mask, clip_range=0.2)
    # token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(-0.5, -0.8) = -0.5; token 2: max(2, 2) = 2
    close(parts.loss.detach(), (-1.2 - 0.5 + 2.0) / 3)
    close(parts.clip_fraction, 1 / 3)
    parts.loss.backward()
    # d/dlogp of -A * ratio / 3 = -A * ratio / 3 where unclipped, 0 where clipped or padded
    close(logprobs.grad, [[0.0, -0.5 / 3, 2.0 / 3, 0.0]])


def test_value_loss_clips_around_the_old_values():
    values = T([[1.0, 0.0, 50.0]])
    old = T([[0.5, 0.1, 0.0]])
    returns = T([[2.0, 0.0, -50.0]])
    mask = T([[1.0, 1.0, 0.0]])
    parts = core.value_loss(values, old, returns, mask, clip_range=0.2)
    # token 0: clipped value 0.7, errors 1 and 1.69 -> 1.69; token 1: clipped value 0.0, errors 0 and 0
    close(parts.loss, 0.5 * (1.69 + 0.0) / 2)
    close(parts.clip_fraction, 0.5)


def test_kl_controller():
    fixed = core.KLController(0.2, None, 100)
    assert fixed.update(50.0, 16) == 0.2
    adaptive = core.KLController(0.2, 6.0, 100)
    close(T(adaptive.update(12.0, 16)), 0.2 * (1 + 0.2 * 16 / 100))  # error clipped at +0.2
    close(T(adaptive.update(3.0, 16)), 0.2 * 1.032 * (1 - 0.2 * 16 / 100))  # -0.5 clipped at -0.2


def test_collate_masks_prompt_answer_and_padding():
    batch = collate([T([5, 6, 7]), T([8])], [T([1]), T([2, 3])], pad_id=0)
    assert batch.prompt_len == 3
    assert batch.input_ids.tolist() == [[5, 6, 7, 1, 0], [0, 0, 8, 2, 3]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 0], [0, 0, 1, 1, 1]]
    assert batch.answer_mask.tolist() == [[1.0, 0.0], [1.0, 1.0]]


def test_cut_answer_keeps_the_first_end_of_turn_token():
    assert cut_answer(T([4, 5, 2, 2, 9]), {2}).tolist() == [4, 5, 2]
    assert cut_answer(T([4, 5, 6]), {2}).tolist() == [4, 5, 6]  # ran out of max_new_tokens


def test_padding_and_prompt_positions_never_change_the_losses():
    """The whole core pipeline on a padded batch; garbage in padding (and in prompt logits) changes nothing."""
    torch.manual_seed(0)
    B, P, R, V = 3, 4, 5, 7
    mask = T([[1.0] * 5, [1.0, 1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    input_ids = torch.randint(0, V, (B, P + R))
    logits = torch.randn(B, P + R, V)
    ref_logprobs, old_logprobs = torch.randn(B, R) - 2, torch.randn(B, R) - 2
    values, old_values, scores = torch.randn(B, R), torch.randn(B, R), torch.randn(B)

    def losses(logits, input_ids, ref_logprobs, old_logprobs, values, old_values):
        logprobs = core.response_logprobs(logits, input_ids, P)
        kl = core.per_token_kl(old_logprobs, ref_logprobs) * mask
        rewards = core.penalised_rewards(scores, kl, mask, 0.1)
        advantages, returns = core.gae(rewards, old_values, mask, 1.0, 0.95)
        advantages = core.masked_whiten(advantages, mask)
        policy = core.policy_loss(logprobs, old_logprobs, advantages, mask, 0.2)
        value = core.value_loss(values, old_values, returns, mask, 0.2)
        return torch.stack([policy.loss, value.loss, policy.clip_fraction, kl.sum()]), advantages * mask

    before = losses(logits, input_ids, ref_logprobs, old_logprobs, values, old_values)
    pad = mask == 0
    noisy = [t.clone() for t in (logits, input_ids, ref_logprobs, old_logprobs, values, old_values)]
    noisy[0][:, : P - 1] = 1e4 * torch.randn(B, P - 1, V)  # logits at prompt positions
    noisy[0][:, -1] = 1e4  # the logit after the last token
    noisy[1][:, P:][pad] = (noisy[1][:, P:][pad] + 3) % V  # padding token ids
    for t in noisy[2:]:
        t[pad] = 1e3  # per-token values at padding
    after = losses(*noisy)
    close(after[0], before[0])
    close(after[1], before[1])
