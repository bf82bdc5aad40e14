"""Base model + LoRA for the training kinds, on top of the shared loader (training/model_loading.py).

The plan and the load are the shared loader's (on CUDA with bitsandbytes 4-bit NF4 with double quantisation; on
the CPU fp32, or NF4 when "4bit" is asked for); what is training's own is here: a 4-bit base prepared with
``peft.prepare_model_for_kbit_training`` (QLoRA, as in the research project; on the CPU kept off bitsandbytes'
inference-only kernel), the KV cache off, a tokenizer that must have a chat template, and the LoRA:
either fresh (r, alpha, dropout, target modules from the config) or the parent adapter loaded trainable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.model_loading import LoadPlan, ModelError, plan_load

if TYPE_CHECKING:
    from training.config import SFTJobConfig


def choose_device(device: str, quantization: str) -> LoadPlan:
    """Where and how to load the model for training (training/model_loading.py's rules: on the CPU in fp32);
    raises ModelError when the request cannot be met."""
    return plan_load(device, quantization=quantization, for_training=True)


def check_model_folder(path: str | Path) -> Path:
    """The base model folder, checked completely by the rules the app applies (training/model_check.py): files,
    shard index and safetensors headers, every tensor the architecture needs with its shape, the tokenizer."""
    from training.model_check import ModelCheckError
    from training.model_check import check_model_folder as check_folder

    try:
        return check_folder(path).path
    except ModelCheckError as exc:
        raise ModelError(f"Base model: {exc}") from exc


def check_adapter_folder(path: str | Path, role: str = "Parent adapter") -> Path:
    """An adapter folder checked by the app's rules (model_check.check_adapter_folder); the message starts
    with ``role``."""
    from training.model_check import ModelCheckError
    from training.model_check import check_adapter_folder as check_folder

    try:
        return check_folder(path, role)
    except ModelCheckError as exc:
        raise ModelError(str(exc)) from exc


def load_tokenizer(base_model: str | Path) -> Any:
    from training.model_loading import load_tokenizer as load

    tokenizer = load(base_model)
    if not tokenizer.chat_template:
        raise ModelError(
            f"The tokenizer of {base_model} has no chat template; conversational training needs one."
        )
    return tokenizer


def load_base_model(
    base_model: str | Path, plan: LoadPlan, gradient_checkpointing: bool, scorer: bool = False
) -> Any:
    """The base causal LM, or with ``scorer`` the same base with a fresh one-output score head (reward models),
    loaded by the shared loader and made ready for training: a 4-bit base is prepared for k-bit training
    (QLoRA: norms in fp32, input grads, gradient checkpointing), and the KV cache is off."""
    from training.model_loading import load_base_model as load

    model = load(base_model, plan, head="score" if scorer else "causal")
    if plan.quantization == "nf4":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
        if plan.device == "cpu":
            keep_4bit_trainable_on_the_cpu(model)
    model.config.use_cache = False  # the KV cache is useless in training and conflicts with checkpointing
    return model


def keep_4bit_trainable_on_the_cpu(model: Any) -> None:
    """Turn off bitsandbytes' CPU inference repacking of a 4-bit model that trains. On a CPU with AVX512-BF16,
    bitsandbytes (0.50) repacks each Linear4bit for its CPU kernel at the first forward in eval mode without
    gradients (an evaluation, PPO's rollouts) and from then on multiplies through ``gemv_4bit``, which has no
    autograd kernel: backward then silently drops the gradient through every base projection (most LoRA
    gradients come out zero; tests/training/test_four_bit.py). Unpacked, it stays on the differentiable path."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def add_lora(model: Any, config: SFTJobConfig) -> Any:
    """Wrap the base in a trainable LoRA: the parent adapter's weights when given, else a fresh one."""
    from peft import get_peft_model

    from training.model_loading import attach_adapter

    if config.parent_adapter:
        return attach_adapter(model, check_adapter_folder(config.parent_adapter), trainable=True)
    return get_peft_model(model, lora_config(config))


def lora_config(config: SFTJobConfig, task_type: str = "CAUSAL_LM") -> Any:
    """A fresh LoRA's peft.LoraConfig from the job config ("SEQ_CLS" also trains and saves a score head)."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules),
        bias="none",
        task_type=task_type,
    )


def keep_trainable_in_compute_dtype(trainer: Any, plan: LoadPlan) -> None:
    """Undo TRL's cast of a quantised model's trainable parameters to bf16 (SFT, DPO and Reward trainers do it
    for QLoRA, expecting bf16 autocast) when the trainer does not autocast in bf16: on the CPU the 4-bit base
    computes in fp32, and a bf16 score head there fails on fp32 hidden states. The trainable parameters
    (LoRA, a reward model's score head) go back to fp32; the optimiser is built later, at train()."""
    import torch

    if plan.quantization != "nf4" or trainer.args.bf16:
        return
    for param in trainer.model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.to(torch.float32)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
