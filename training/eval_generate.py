"""Greedy generation for the `evaluate` program: the base loaded once for inference with one named peft
adapter per model version, switched per batch ("base": adapters disabled), left-padded batches through the chat
template. Standard library only at import time (training/evaluate.py imports this module, and training/config.py
imports that one); torch, transformers and peft load inside the functions.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from training.cancel import CancelToken

if TYPE_CHECKING:
    from training.evaluate_config import Version
    from training.model_loading import LoadPlan


def load_generator(
    base_model: str, plan: LoadPlan, versions: list[Version]
) -> tuple[Any, dict[str, str | None]]:
    """The base causal LM for inference, loaded by the shared loader (4-bit NF4 on CUDA with bitsandbytes), with
    one named peft adapter per version that has one; returns (model, version name -> adapter name, None for the
    base alone)."""
    from training.model_loading import attach_adapter, load_base_model

    model = load_base_model(base_model, plan)
    adapters: dict[str, str | None] = {}
    for i, version in enumerate(versions):
        if version.adapter_path is None:
            adapters[version.name] = None
            continue
        name = f"v{i}"  # peft adapter names must not contain dots; version names may
        model = attach_adapter(model, version.adapter_path, name)
        adapters[version.name] = name
    return model.eval(), adapters


@contextmanager
def active_adapter(model: Any, adapter: str | None) -> Any:
    """Generate with ``adapter``, or with the base alone (adapters disabled) when it is None."""
    from peft import PeftModel

    if adapter is not None:
        model.set_adapter(adapter)
        yield
    else:
        with model.disable_adapter() if isinstance(model, PeftModel) else nullcontext():
            yield


class _StopOnCancel:
    """A generation stopping criterion: ends generation at the next token once the job is cancelled."""

    def __init__(self, cancel: CancelToken):
        self.cancel = cancel

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), bool(self.cancel.requested), device=input_ids.device)


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """End-of-turn tokens: the tokenizer's EOS and the model's generation config's (Llama 3 has several)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


def generate_batch(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    max_new_tokens: int,
    cancel: CancelToken,
) -> list[tuple[str, int, str]]:
    """Greedy answers to a batch of prompts (messages ending with the user's): (text, n_tokens including the
    end-of-turn token, finish_reason "stop" or "length")."""
    import torch
    from transformers import StoppingCriteriaList

    prompts = [
        tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        for messages in conversations
    ]
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)  # (B, P)
    attention_mask = torch.zeros_like(input_ids)  # (B, P)
    for row, ids in enumerate(prompts):  # left padding: every answer starts at column P
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids) :] = 1
    stop_ids = stop_token_ids(model, tokenizer)
    device = next(model.parameters()).device
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
            max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_ids,
            stopping_criteria=StoppingCriteriaList([_StopOnCancel(cancel)]),
        )  # fmt: skip
    answers = []
    for tokens in output[:, width:].tolist():  # (B, n) generated ids, padded after each row's stop token
        end = next((i for i, t in enumerate(tokens) if t in stop_ids), None)
        kept = tokens if end is None else tokens[: end + 1]
        text = tokenizer.decode(kept, skip_special_tokens=True)
        answers.append((text, len(kept), "length" if end is None else "stop"))
    return answers


def free_memory() -> None:
    """Collect a released model now, and on CUDA hand its cached blocks back."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
