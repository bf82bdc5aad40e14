"""One base model in memory, four roles: policy, value, reference and reward, switched per forward pass.

The research project held four models (policy, reference, value, reward) and needed twice the GPU memory of
SFT. Here there is one base model wrapped in one PeftModel holding LoRA adapters:

- ``POLICY`` ("default"): the trainable policy LoRA (the parent adapter, or a fresh one). Named "default"
  because peft saves that adapter at the root of a folder, so a saved policy is a plain LoRA folder that
  ``PeftModel.from_pretrained`` (the app) loads as it is.
- value: the policy adapter plus a value head ``nn.Linear(hidden, 1)`` on its last hidden state, so one
  forward pass gives both log-probs and values (as TRL's former value-head model did). The value loss
  therefore also moves the policy LoRA; the head starts at zero so it does not disturb the policy at first.
- ``REF`` ("ref"): the parent adapter loaded a second time, frozen. Without a parent the policy starts as
  the base model itself (fresh LoRA, B = 0), so the reference is the base with adapters disabled.
- ``REWARD`` ("reward"): the reward job's LoRA, frozen, plus its score head ``nn.Linear(hidden, 1)`` taken
  out of the adapter file (peft saved it there as ``modules_to_save``); the score is read at the last token,
  as ``AutoModelForSequenceClassification`` does.

``set_adapter`` costs a few milliseconds (15 ms on SmolLM2); only the LoRA matrices differ between roles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.lora import LoadPlan, ModelError, add_lora, check_adapter_folder, load_base_model
from training.ppo.config import PPOJobConfig
from training.ppo.core import response_logprobs

POLICY, REF, REWARD = "default", "ref", "reward"
SCORE_KEY = "base_model.model.score.weight"  # the score head in a SEQ_CLS adapter file (modules_to_save)
VALUE_HEAD_FILE = "value_head.safetensors"


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as ``generate`` computes them: (B, L) -> (B, L)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class PPOModels:
    """The shared base and its adapters and heads; every forward pass names the role it plays."""

    def __init__(
        self,
        peft_model: Any,
        value_head: nn.Linear,
        score_head: nn.Linear,
        has_ref: bool,
        cuda_dtype: torch.dtype | None = None,
    ):
        self.peft = peft_model
        self.value_head, self.score_head = value_head, score_head
        self.has_ref = has_ref
        self.device = value_head.weight.device
        self.cuda_dtype = cuda_dtype  # autocast dtype on CUDA (bf16 / fp16 compute); None on the CPU (fp32)

    def _autocast(self) -> Any:
        if self.cuda_dtype is None:
            return nullcontext()
        return torch.autocast("cuda", dtype=self.cuda_dtype)

    # -- roles --

    @contextmanager
    def role(self, adapter: str) -> Iterator[None]:
        """Make ``adapter`` the active one for the forward passes inside; the policy is active again after."""
        if adapter == REF and not self.has_ref:
            with self.peft.disable_adapter():
                yield
            return
        self.peft.set_adapter(adapter, inference_mode=adapter != POLICY)  # frozen roles stay frozen
        try:
            yield
        finally:
            self.peft.set_adapter(POLICY)

    def _hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last hidden state (after the final norm) of the active adapter: (B, L) -> (B, L, H)."""
        decoder = self.peft.get_base_model().get_decoder()
        with self._autocast():
            out = decoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids(attention_mask),
                use_cache=False,
            )
        return out.last_hidden_state

    def _answer_logprobs(
        self, hidden: torch.Tensor, input_ids: torch.Tensor, prompt_len: int, temperature: float
    ) -> torch.Tensor:
        """Log-probs of the answer tokens from the hidden states: the LM head runs on answer positions only."""
        head = self.peft.get_base_model().get_output_embeddings()
        with self._autocast():
            logits = head(hidden[:, prompt_len - 1 :])  # (B, R + 1, V); the last one predicts nothing
        return response_logprobs(logits, input_ids[:, prompt_len - 1 :], 1, temperature)  # (B, R)

    def policy(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_len: int, temperature: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probs, values) of the answer tokens under the policy, both (B, R); with grad if enabled.

        input_ids / attention_mask (B, P + R): P left-padded prompt columns, then the answer columns. The value
        of answer token j is read where its log-prob is: at position P - 1 + j, the state before it.
        """
        with self.role(POLICY):
            hidden = self._hidden(input_ids, attention_mask)  # (B, L, H)
            logprobs = self._answer_logprobs(hidden, input_ids, prompt_len, temperature)
            values = self.value_head(hidden[:, prompt_len - 1 : -1].float()).squeeze(-1)  # (B, R)
        return logprobs, values

    @torch.no_grad()
    def reference(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_len: int, temperature: float
    ) -> torch.Tensor:
        """Log-probs of the answer tokens under the frozen reference: (B, P + R) -> (B, R)."""
        with self.role(REF):
            hidden = self._hidden(input_ids, attention_mask)
            return self._answer_logprobs(hidden, input_ids, prompt_len, temperature)

    @torch.no_grad()
    def answer_kl(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_len: int, temperature: float
    ) -> torch.Tensor:
        """Exact KL(policy || reference) over the vocabulary at each answer position: (B, P + R) -> (B, R).

        For evaluation: its greedy answers are not samples of the policy, so the sampled-token estimators
        of training (k1, k3) would be biased there. Padding columns hold finite values; mask them."""
        log_p = []  # (B, R, V) each: the policy's, then the reference's log-distribution
        head = self.peft.get_base_model().get_output_embeddings()
        for adapter in (POLICY, REF):
            with self.role(adapter):
                hidden = self._hidden(input_ids, attention_mask)
                with self._autocast():
                    logits = head(hidden[:, prompt_len - 1 : -1])  # the predictions of the answer tokens
            del hidden
            log_p.append(torch.log_softmax(logits.float() / temperature, dim=-1))
            del logits
        policy, reference = log_p
        # in place, so at most two vocabulary-wide tensors stay: sum_v p (log p - log q)
        difference = reference.sub_(policy).neg_()
        return policy.exp_().mul_(difference).sum(-1)

    @torch.no_grad()
    def scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Reward model scores of right-padded conversations: (B, L) -> (B,), read at each last real token."""
        with self.role(REWARD):
            hidden = self._hidden(input_ids, attention_mask)  # (B, L, H)
        last = attention_mask.shape[1] - 1 - attention_mask.flip(1).argmax(dim=1)  # (B,)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return self.score_head(hidden[rows, last].float()).squeeze(-1)

    @torch.no_grad()
    def generate(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, settings: Any, stopping: Any
    ) -> torch.Tensor:
        """Sample answers with the policy adapter: left-padded prompts (B, P) -> (B, P + n) token ids."""
        with self.role(POLICY), self._autocast():
            return self.peft.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                generation_config=settings,
                stopping_criteria=stopping,
            )

    # -- training --

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The policy LoRA and the value head: what the optimiser moves."""
        lora = [p for n, p in self.peft.named_parameters() if f".{POLICY}." in n and p.requires_grad]
        return lora + list(self.value_head.parameters())

    def train(self, mode: bool = True) -> None:
        """Train mode for optimisation (gradient checkpointing, dropout), eval mode for rollouts and scoring."""
        self.peft.train(mode)
        self.value_head.train(mode)

    def save_policy(self, folder: Path, with_value_head: bool = False) -> None:
        """The policy adapter as a plain peft LoRA folder (and the value head, for checkpoints)."""
        self.peft.save_pretrained(str(folder), selected_adapters=[POLICY], safe_serialization=True)
        if with_value_head:
            from safetensors.torch import save_file

            save_file(
                {k: v.detach().cpu() for k, v in self.value_head.state_dict().items()},
                folder / VALUE_HEAD_FILE,
            )

    def load_policy(self, folder: Path) -> None:
        """Put a checkpoint's policy adapter and value head (``save_policy(..., with_value_head=True)``) back."""
        from peft.utils import load_peft_weights, set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_peft_weights(str(folder), device=str(self.device))
        result = set_peft_model_state_dict(self.peft, weights, adapter_name=POLICY)
        if getattr(result, "unexpected_keys", None):
            raise ModelError(f"Checkpoint {folder} does not fit this policy: {result.unexpected_keys[:3]}")
        self.value_head.load_state_dict(load_file(folder / VALUE_HEAD_FILE, device=str(self.device)))


def load_models(config: PPOJobConfig, plan: LoadPlan) -> PPOModels:
    """Load the base once, then the policy (trainable), reference and reward adapters and the two heads."""
    base = load_base_model(config.base_model, plan, config.gradient_checkpointing)  # on the plan's device
    if config.gradient_checkpointing and plan.quantization == "none":  # 4-bit: prepared by load_base_model
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    peft_model = add_lora(base, config)  # adapter "default" = POLICY
    if config.parent_adapter:
        peft_model.load_adapter(str(config.parent_adapter), adapter_name=REF, is_trainable=False)
    score_weight = load_reward_adapter(peft_model, config.reward_adapter)
    peft_model.set_adapter(POLICY)

    hidden_size, device = score_weight.shape[1], next(base.parameters()).device
    value_head = nn.Linear(hidden_size, 1).to(device)
    nn.init.zeros_(value_head.weight)
    nn.init.zeros_(value_head.bias)
    score_head = nn.Linear(hidden_size, 1, bias=False).to(device)
    with torch.no_grad():
        score_head.weight.copy_(score_weight)
    score_head.requires_grad_(False)
    cuda_dtype = getattr(torch, plan.dtype) if plan.device == "cuda" else None
    return PPOModels(peft_model, value_head, score_head, bool(config.parent_adapter), cuda_dtype)


def load_reward_adapter(peft_model: Any, folder: str | Path) -> torch.Tensor:
    """Add the reward LoRA as the frozen adapter REWARD; returns its score head's weight (1, hidden).

    The file is a SEQ_CLS adapter (LoRA + ``score`` as modules_to_save). Its LoRA matrices fit the causal LM's
    decoder (same module paths); the score head is kept out of peft and returned.
    """
    from peft import LoraConfig
    from peft.utils import load_peft_weights, set_peft_model_state_dict

    folder = check_adapter_folder(folder, "Reward adapter")
    settings = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    if settings.get("peft_type") != "LORA":
        raise ModelError(
            f"Reward adapter {folder} is not a LoRA adapter (peft_type {settings.get('peft_type')!r})."
        )
    weights = load_peft_weights(str(folder), device="cpu")
    score = weights.pop(SCORE_KEY, None)
    if score is None or score.ndim != 2 or score.shape[0] != 1:
        raise ModelError(f"Reward adapter {folder} has no score head: train it with the `reward` job.")
    lora = replace(LoraConfig.from_pretrained(str(folder)), task_type="CAUSAL_LM", modules_to_save=None)
    peft_model.add_adapter(REWARD, lora)
    try:
        result = set_peft_model_state_dict(peft_model, weights, adapter_name=REWARD)
    except RuntimeError as exc:  # size mismatch: trained on another base model
        raise ModelError(f"Reward adapter {folder} does not fit the base model: {exc}") from exc
    if getattr(result, "unexpected_keys", None):
        raise ModelError(
            f"Reward adapter {folder} has weights the base model lacks: {result.unexpected_keys[:3]}"
        )
    peft_model.set_adapter(REWARD, inference_mode=True)  # freezes it; the policy is made active again after
    return score
