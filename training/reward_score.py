"""Score answers with a reward adapter made by the `reward` job (training/reward.py).

The reward model is the base loaded as a one-output sequence classifier plus the adapter folder (LoRA weights
and the trained score head, peft's ``modules_to_save``). The score of a conversation (prompt messages + the
assistant's answer) is the head's output at its last non-padding token, with the chat template applied exactly
as TRL's RewardTrainer did in training. Higher is better; only differences between scores of answers to the
same question mean something. Used by the app to score answers, and reusable by PPO.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.lora import ModelError, check_adapter_folder, check_model_folder, load_tokenizer
from training.model_loading import LoadPlan

Conversation = list[dict[str, str]]


def load_reward_model(
    base_model_dir: str | Path, adapter_dir: str | Path, plan: LoadPlan | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) of a reward adapter on its base, in eval mode, loaded by the shared loader with
    ``plan``'s device and dtype (default: the CPU in fp32). Never quantised: the scores are compared across
    answers, and the model is small next to the generator it follows."""
    from training.model_loading import attach_adapter, load_base_model

    plan = replace(plan or LoadPlan("cpu", "float32", "none"), quantization="none")
    check_model_folder(base_model_dir)
    folder = check_adapter_folder(adapter_dir, "Reward adapter")
    check_reward_adapter(folder)
    tokenizer = load_tokenizer(base_model_dir)
    # The fresh head the loader adds here is replaced by the adapter's trained one (modules_to_save).
    base = load_base_model(base_model_dir, plan, head="score")
    base.config.pad_token_id = tokenizer.pad_token_id
    return attach_adapter(base, folder).to(plan.target).eval(), tokenizer


def score_conversations(
    model: Any, tokenizer: Any, conversations: list[Conversation], batch_size: int = 8
) -> list[float]:
    """Scores of conversations with a loaded reward model (see load_reward_model)."""
    import torch

    scores: list[float] = []
    device = next(model.parameters()).device
    for start in range(0, len(conversations), batch_size):
        # Tokenised one by one as TRL does (apply_chat_template per conversation), padded on the right.
        ids = [
            tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
            for messages in conversations[start : start + batch_size]
        ]
        width = max(len(row) for row in ids)
        input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(ids), width), dtype=torch.long)  # (B, T)
        for row, tokens in enumerate(ids):
            input_ids[row, : len(tokens)] = torch.tensor(tokens)
            attention_mask[row, : len(tokens)] = 1
        with torch.no_grad():
            logits = model(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)
            ).logits  # (B, 1)
        scores.extend(float(v) for v in logits[:, 0].float().cpu())
    return scores


def score_texts(
    base_model_dir: str | Path,
    adapter_dir: str | Path,
    conversations: list[Conversation],
    plan: LoadPlan | None = None,
) -> list[float]:
    """Load base + reward adapter and return one scalar score per conversation (prompt messages + answer)."""
    model, tokenizer = load_reward_model(base_model_dir, adapter_dir, plan)
    return score_conversations(model, tokenizer, conversations)


def check_reward_adapter(folder: str | Path) -> None:
    """A parent for a reward job must be a reward adapter (LoRA + score head), not a chat (causal LM) one."""
    config_file = Path(folder) / "adapter_config.json"
    task_type = json.loads(config_file.read_text(encoding="utf-8")).get("task_type")
    if task_type != "SEQ_CLS":
        raise ModelError(
            f"Parent adapter {folder} is not a reward adapter (task_type {task_type!r} in {config_file}, "
            "expected 'SEQ_CLS'); leave parent_adapter empty to train a new reward model."
        )
