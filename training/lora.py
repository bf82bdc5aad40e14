"""Base model + LoRA loading shared by the training kinds.

On CUDA with bitsandbytes the base is loaded in 4-bit NF4 with double quantisation and bf16 compute and
prepared with ``peft.prepare_model_for_kbit_training`` (QLoRA, as in the research project); on CUDA without
it in bf16; on the CPU in fp32 (bf16 runs about 2x slower on CPUs without native bf16). LoRA is either fresh
(r, alpha, dropout, target modules from the config) or the parent adapter loaded trainable.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.config import SFTJobConfig

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class ModelError(ValueError):
    """The base model or the parent adapter cannot be used; the message names the path."""


@dataclass(frozen=True)
class DevicePlan:
    device: str  # "cpu" or "cuda"
    quantization: str  # "none" or "nf4"
    dtype: str  # parameter dtype, or the compute dtype when quantised
    n_gpus: int = 0

    def describe(self) -> str:
        if self.device == "cpu":
            return f"cpu ({self.dtype})"
        what = "4-bit NF4, bf16 compute" if self.quantization == "nf4" else self.dtype
        return f"cuda x{self.n_gpus} ({what})"


def choose_device(device: str, quantization: str) -> DevicePlan:
    """Where and how to load the model; raises ModelError when the request cannot be met."""
    import torch

    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ModelError("device 'cuda' was asked for but torch sees no CUDA device.")
    if device == "cpu" or not cuda:
        if quantization == "4bit":
            raise ModelError("4-bit training needs a CUDA device (set quantization to 'none' or 'auto').")
        return DevicePlan("cpu", "none", "float32")
    has_bnb = importlib.util.find_spec("bitsandbytes") is not None
    if quantization == "4bit" and not has_bnb:
        raise ModelError("4-bit training needs the bitsandbytes package (pip install '.[cuda]').")
    dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    quant = "nf4" if quantization in ("auto", "4bit") and has_bnb else "none"
    return DevicePlan("cuda", quant, dtype, torch.cuda.device_count())


def check_model_folder(path: str | Path) -> Path:
    """The base model folder, checked completely by the rules the app applies (training/model_check.py): files,
    shard index and safetensors headers, every tensor the architecture needs with its shape, the tokenizer."""
    from training.model_check import ModelCheckError
    from training.model_check import check_model_folder as check_folder

    try:
        return check_folder(path).path
    except ModelCheckError as exc:
        raise ModelError(f"Base model: {exc}") from exc


def check_adapter_folder(path: str | Path) -> Path:
    folder = Path(path)
    missing = [name for name in ADAPTER_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelError(f"Parent adapter folder {folder} is missing {', '.join(missing)}.")
    try:
        json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"Parent adapter {folder / 'adapter_config.json'} cannot be read ({exc}).") from exc
    return folder


def load_tokenizer(base_model: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model), trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ModelError(
            f"The tokenizer of {base_model} has no chat template; conversational training needs one."
        )
    return tokenizer


def load_base_model(
    base_model: str | Path, plan: DevicePlan, gradient_checkpointing: bool, scorer: bool = False
) -> Any:
    """The base causal LM, or with ``scorer`` the same base with a fresh one-output score head (reward models)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from training.model_check import from_pretrained_checked

    auto_class = AutoModelForSequenceClassification if scorer else AutoModelForCausalLM
    kwargs: dict[str, Any] = {"trust_remote_code": False, "use_safetensors": True}
    if scorer:
        kwargs["num_labels"] = 1
    kwargs["dtype"] = getattr(torch, plan.dtype)
    if plan.quantization == "nf4":
        from accelerate import PartialState
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kwargs["dtype"],
        )
        kwargs["device_map"] = {"": PartialState().local_process_index}  # one full copy per GPU
    allowed = {"allow_missing": ("score.",), "allow_unexpected": ("lm_head.",)} if scorer else {}
    try:  # a tensor missing or left over at load is an error, never a random init
        model = from_pretrained_checked(auto_class, base_model, **allowed, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"Base model {base_model} cannot be loaded: {exc}") from exc
    if plan.quantization == "nf4":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    model.config.use_cache = False  # the KV cache is useless in training and conflicts with checkpointing
    return model


def add_lora(model: Any, config: SFTJobConfig) -> Any:
    """Wrap the base in a trainable LoRA: the parent adapter's weights when given, else a fresh one."""
    from peft import PeftModel, get_peft_model

    if config.parent_adapter:
        folder = check_adapter_folder(config.parent_adapter)
        return PeftModel.from_pretrained(model, str(folder), is_trainable=True)
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


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
