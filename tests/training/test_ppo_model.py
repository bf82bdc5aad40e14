"""One base model, four roles: switching adapters on the shared base gives what separate models built from the
same weights give (policy and reference log-probs, reward scores), and the trainable set is the policy only."""

from __future__ import annotations

import pytest
import torch

from training.lora import ModelError, choose_device, load_tokenizer
from training.ppo.config import PPOJobConfig
from training.ppo.core import response_logprobs
from training.ppo.model import POLICY, load_models, position_ids
from training.ppo.rollout import Prompt, Rollout, collate, reward_inputs, tokenize_prompts

from .conftest import example

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

TEMPERATURE = 0.7


def build(tiny_model_dir, reward, parent=None):
    config = PPOJobConfig(
        base_model=str(tiny_model_dir),
        parent_adapter=str(parent) if parent else None,
        reward_adapter=str(reward),
        gradient_checkpointing=False,
    )
    models = load_models(config, choose_device("cpu", "none"))
    models.train(False)
    return models


def rollouts(tokenizer) -> list[Rollout]:
    """Two prompts of different lengths with answers of different lengths (so both paddings occur)."""
    raw = [("a", example(1)["prompt"]), ("b", [{"role": "user", "content": "Dose of drug 22 for a child?"}])]
    prompts, _ = tokenize_prompts(tokenizer, raw, 512)
    answers = [torch.tensor([504, 2784, 314, 2]), torch.tensor([46, 1345, 17, 3041, 412, 9, 2])]
    return [
        Rollout(p, a, tokenizer.decode(a, skip_special_tokens=True))
        for p, a in zip(prompts, answers, strict=True)
    ]


def separate_causal_lm(tiny_model_dir, adapter=None):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    return (PeftModel.from_pretrained(model, str(adapter)) if adapter else model).eval()


def separate_logprobs(model, batch) -> torch.Tensor:
    with torch.no_grad():
        logits = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=position_ids(batch.attention_mask),
        ).logits
    return response_logprobs(logits, batch.input_ids, batch.prompt_len, TEMPERATURE)


def separate_reward_scores(tiny_model_dir, reward, input_ids, attention_mask) -> torch.Tensor:
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = 2
    model = PeftModel.from_pretrained(model, str(reward)).eval()
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1)


def test_switching_adapters_matches_separate_models(tiny_model_dir, tiny_adapters, tiny_reward_adapter):
    parent = tiny_adapters[0]
    models = build(tiny_model_dir, tiny_reward_adapter, parent)
    tokenizer = load_tokenizer(tiny_model_dir)
    items = rollouts(tokenizer)
    batch = collate([r.prompt.ids for r in items], [r.answer for r in items], tokenizer.pad_token_id)
    args = (batch.input_ids, batch.attention_mask, batch.prompt_len, TEMPERATURE)
    reward_ids, reward_mask = reward_inputs(tokenizer, items)

    expected_policy = separate_logprobs(separate_causal_lm(tiny_model_dir, parent), batch)
    expected_scores = separate_reward_scores(tiny_model_dir, tiny_reward_adapter, reward_ids, reward_mask)
    assert (reward_mask == 0).any(), "the reward batch should hold right padding"

    with torch.no_grad():
        policy_first, values = models.policy(*args)
        scores = models.scores(reward_ids, reward_mask)
        ref = models.reference(*args)
        policy_again, _ = models.policy(*args)
    mask = batch.answer_mask.bool()
    torch.testing.assert_close(policy_first[mask], expected_policy[mask], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(policy_again, policy_first)
    torch.testing.assert_close(
        ref[mask], expected_policy[mask], rtol=1e-5, atol=1e-5
    )  # ref = starting adapter
    torch.testing.assert_close(scores, expected_scores, rtol=1e-5, atol=1e-5)
    assert values.shape == policy_first.shape and (values == 0).all()  # the value head starts at zero
    assert models.peft.active_adapter == POLICY

    # The reference keeps the starting weights when the policy moves.
    with torch.no_grad():
        for name, param in models.peft.named_parameters():
            if f"lora_B.{POLICY}." in name:
                param.add_(0.3)
        moved, _ = models.policy(*args)
        ref_after = models.reference(*args)
    assert not torch.allclose(moved[mask], expected_policy[mask], atol=1e-3)
    torch.testing.assert_close(ref_after, ref)
    torch.testing.assert_close(models.scores(reward_ids, reward_mask), scores)


def test_fresh_policy_and_reference_are_the_base_model(tiny_model_dir, tiny_reward_adapter):
    models = build(tiny_model_dir, tiny_reward_adapter)
    tokenizer = load_tokenizer(tiny_model_dir)
    items = rollouts(tokenizer)
    batch = collate([r.prompt.ids for r in items], [r.answer for r in items], tokenizer.pad_token_id)
    args = (batch.input_ids, batch.attention_mask, batch.prompt_len, TEMPERATURE)
    expected = separate_logprobs(separate_causal_lm(tiny_model_dir), batch)
    mask = batch.answer_mask.bool()
    with torch.no_grad():
        policy, _ = models.policy(*args)
        ref = models.reference(*args)
    torch.testing.assert_close(policy[mask], expected[mask], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ref[mask], expected[mask], rtol=1e-5, atol=1e-5)
    assert not models.has_ref


def test_only_the_policy_lora_and_value_head_train(tiny_model_dir, tiny_adapters, tiny_reward_adapter):
    models = build(tiny_model_dir, tiny_reward_adapter, tiny_adapters[0])
    trainable = {id(p) for p in models.trainable_parameters()}
    named = dict(models.peft.named_parameters())
    policy_lora = {id(p) for n, p in named.items() if f".{POLICY}." in n}
    assert policy_lora and policy_lora <= trainable
    assert trainable - policy_lora == {id(p) for p in models.value_head.parameters()}
    assert not any(p.requires_grad for n, p in named.items() if ".ref." in n or ".reward." in n)
    assert not any(p.requires_grad for p in models.score_head.parameters())
    assert not any(p.requires_grad for n, p in named.items() if "lora_" not in n)  # the base is frozen


def test_generation_samples_from_the_distribution_the_policy_scores(tiny_model_dir, tiny_reward_adapter):
    """The log-probs of the sampled tokens as ``generate`` saw them equal the policy's forward pass (left
    padding, positions, temperature), so the first PPO ratio is exactly 1."""
    from transformers import GenerationConfig

    models = build(tiny_model_dir, tiny_reward_adapter)
    tokenizer = load_tokenizer(tiny_model_dir)
    prompts: list[Prompt] = [r.prompt for r in rollouts(tokenizer)]
    from training.ppo.rollout import left_pad

    input_ids, attention_mask = left_pad([p.ids for p in prompts], tokenizer.pad_token_id)
    settings = GenerationConfig(
        do_sample=True, temperature=TEMPERATURE, top_k=0, top_p=1.0, max_new_tokens=6, pad_token_id=2,
        eos_token_id=2, use_cache=True, output_logits=True, return_dict_in_generate=True,
    )  # fmt: skip
    torch.manual_seed(0)
    out = models.generate(input_ids, attention_mask, settings, None)
    answers = out.sequences[:, input_ids.shape[1] :]
    seen = torch.log_softmax(torch.stack(out.logits, 1) / TEMPERATURE, -1).gather(2, answers[..., None])[
        ..., 0
    ]
    batch = collate([p.ids for p in prompts], list(answers), tokenizer.pad_token_id)
    with torch.no_grad():
        logprobs, _ = models.policy(batch.input_ids, batch.attention_mask, batch.prompt_len, TEMPERATURE)
    torch.testing.assert_close(logprobs, seen, rtol=1e-4, atol=1e-4)


def test_a_reward_adapter_without_score_head_is_refused(tiny_model_dir, tiny_adapters, tmp_path):
    with pytest.raises(ModelError, match="has no score head"):
        build(tiny_model_dir, tiny_adapters[1])
    with pytest.raises(ModelError, match=f"Reward adapter folder {tmp_path} is missing adapter_config.json"):
        build(tiny_model_dir, tmp_path)
