"""Rollouts: the prompts of a job, answers sampled from the policy, and the batches the forward passes take.

``data/prompts.jsonl`` holds one prompt per line: ``{"id": "p-12", "prompt": [{"role": "system", ...},
{"role": "user", "content": q}]}`` (the app leaves held-out questions out). A prompt is tokenised once with
the chat template's generation prompt; its answer is sampled with the policy adapter, cut after the first
end-of-turn token, and kept as token ids. Batches are rebuilt from (prompt, answer) token lists for every
forward pass: prompts left-padded to a common length P, answers right-padded to R, so answer columns line up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.data import ROLES, DataError, parse_messages, read_json_lines
from training.job_folder import PROMPTS_FILE


@dataclass(frozen=True)
class Prompt:
    id: str
    messages: list[dict[str, str]]  # system? / user ..., ending with a user message
    ids: torch.Tensor  # (p,) token ids of the chat template with the assistant's generation prompt


@dataclass(frozen=True)
class Rollout:
    prompt: Prompt
    answer: torch.Tensor  # (r,) sampled token ids up to and including the first end-of-turn token, r >= 1
    text: str  # the answer decoded without special tokens


@dataclass(frozen=True)
class Batch:
    """Prompts and answers side by side: columns [0, P) prompt (left-padded), [P, P + R) answer (right-padded)."""

    input_ids: torch.Tensor  # (B, P + R)
    attention_mask: torch.Tensor  # (B, P + R) 1 on real prompt and answer tokens, 0 on padding
    prompt_len: int  # P
    answer_mask: torch.Tensor  # (B, R) float, 1.0 on answer tokens: the mask of every per-token PPO tensor


def read_prompts(job_dir: Path, file: str | Path = PROMPTS_FILE) -> list[tuple[str, list[dict[str, str]]]]:
    """(id, messages) of each line of data/prompts.jsonl (or ``file``); raises DataError naming file and line."""
    path = job_dir / file
    prompts = []
    for data, where, number in read_json_lines(path):
        if not isinstance(data, dict) or "prompt" not in data:
            raise DataError(f"{where}: expected an object with a 'prompt' (a list of messages).")
        messages = parse_messages(data["prompt"], "prompt", where, ROLES)
        if messages[-1]["role"] != "user":
            raise DataError(f"{where}: the prompt must end with a user message.")
        prompts.append((str(data.get("id", f"line-{number}")), messages))
    if not prompts:
        raise DataError(f"{path} has no prompts.", advice="Add questions to the queue's training split.")
    return prompts


def tokenize_prompts(
    tokenizer: Any, prompts: list[tuple[str, list[dict[str, str]]]], max_prompt_length: int
) -> tuple[list[Prompt], int]:
    """Prompts tokenised with the generation prompt; those over ``max_prompt_length`` tokens are skipped.

    Returns (kept prompts, number skipped)."""
    kept = []
    for prompt_id, messages in prompts:
        ids = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        ids = ids["input_ids"]
        if len(ids) <= max_prompt_length:
            kept.append(Prompt(prompt_id, messages, torch.tensor(ids, dtype=torch.long)))
    return kept, len(prompts) - len(kept)


def left_pad(sequences: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (B, P), of 1-D token tensors padded on the left (prompts)."""
    length = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, seq in enumerate(sequences):
        input_ids[row, length - len(seq) :] = seq
        attention_mask[row, length - len(seq) :] = 1
    return input_ids, attention_mask


def collate(prompts: list[torch.Tensor], answers: list[torch.Tensor], pad_id: int) -> Batch:
    """Left-pad the prompts to P, right-pad the answers to R, side by side. Lists of 1-D tensors -> Batch."""
    prompt_ids, prompt_mask = left_pad(prompts, pad_id)  # (B, P)
    answer_ids, answer_mask = right_pad([a.tolist() for a in answers], pad_id)  # (B, R)
    return Batch(
        torch.cat([prompt_ids, answer_ids], dim=1),
        torch.cat([prompt_mask, answer_mask], dim=1),
        prompt_ids.shape[1],
        answer_mask.float(),
    )


def right_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (B, L), of token lists padded on the right (for the reward model)."""
    length = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention_mask[row, : len(seq)] = 1
    return input_ids, attention_mask


def cut_answer(tokens: torch.Tensor, stop_ids: set[int]) -> torch.Tensor:
    """Generated tokens (n,) up to and including the first stop token; everything after is padding."""
    for i, token in enumerate(tokens.tolist()):
        if token in stop_ids:
            return tokens[: i + 1]
    return tokens


def reward_inputs(tokenizer: Any, rollouts: list[Rollout]) -> tuple[torch.Tensor, torch.Tensor]:
    """The conversations as the reward job trained on them (the chat template of prompt + answer), right-padded.

    The reward model sees the decoded answer in a full chat-template rendering, like TRL's RewardTrainer,
    not the policy's raw token stream (which lacks the template's end-of-turn suffix)."""
    sequences = []
    for rollout in rollouts:
        conversation = [*rollout.prompt.messages, {"role": "assistant", "content": rollout.text}]
        encoded = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)
        sequences.append(list(encoded["input_ids"]))
    return right_pad(sequences, tokenizer.pad_token_id)


class _StopOnCancel:
    """A generation stopping criterion: ends generation early once the job is cancelled."""

    def __init__(self, cancel: Any):
        self.cancel = cancel

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), bool(self.cancel.requested), device=input_ids.device)


@torch.no_grad()
def sample_answers(
    models: Any,
    tokenizer: Any,
    prompts: list[Prompt],
    max_new_tokens: int,
    temperature: float,
    cancel: Any,
    greedy: bool = False,
) -> list[Rollout]:
    """One sampled answer per prompt from the policy adapter, in one batched ``generate`` call.

    Pure sampling at ``temperature`` (no top-k / top-p / repetition penalty), so the log-probs computed later
    at the same temperature are those of the distribution the tokens were drawn from. ``greedy``: the most
    likely token each time instead (evaluation: comparable from one evaluation to the next, no RNG used)."""
    from transformers import GenerationConfig, StoppingCriteriaList

    input_ids, attention_mask = left_pad([p.ids for p in prompts], tokenizer.pad_token_id)  # (B, P)
    sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": temperature, "top_k": 0}
    settings = GenerationConfig(
        **sampling,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        use_cache=True,
    )
    output = models.generate(
        input_ids, attention_mask, settings, StoppingCriteriaList([_StopOnCancel(cancel)])
    )
    stop_ids = {tokenizer.eos_token_id}
    rollouts = []
    for prompt, generated in zip(prompts, output[:, input_ids.shape[1] :].cpu(), strict=True):
        answer = cut_answer(generated, stop_ids)  # generate gives every row at least one token
        rollouts.append(Rollout(prompt, answer, tokenizer.decode(answer, skip_special_tokens=True)))
    return rollouts
