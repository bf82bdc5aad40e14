"""The one model loader: the app's engine (medalign_desktop/engine/engine.py), the training programs
(training/lora.py) and the evaluate program (training/eval_generate.py) all load a base model and attach LoRA
adapters through this module. It lives in training/ because the app may import training but training never
imports the app. Standard library only at import time; torch, transformers and peft load inside the functions.

``choose_load_plan`` is pure (the hardware comes in as a ``Hardware``), so every rule is tested exactly:

- Device: "auto" is CUDA when torch sees it, else the CPU. "cuda" means this process's GPU: cuda:LOCAL_RANK
  (0 outside a distributed launch, so the engine and evaluate use cuda:0, and each training process of a
  multi-GPU launch holds one full copy on its own GPU).
- Quantisation: "auto" and "4bit" give 4-bit NF4 with double quantisation on CUDA with bitsandbytes (QLoRA, the
  research project's setting). On the CPU "auto" stays unquantised (fp32 / bf16 is faster there), but an explicit
  "4bit" loads NF4 with double quantisation through bitsandbytes' CPU backend (slower; it is what lets the 4-bit
  path be tested without a GPU). "4bit" without bitsandbytes is refused; otherwise none.
- Precision ("auto"): on CUDA bf16 where the GPU supports it, else fp16 (bf16 on a T4 / V100 is emulated); the
  NF4 compute dtype is the same. On the CPU (the NF4 compute dtype too) it depends on the purpose, deliberately: inference in bf16 (measured
  in docs/BENCHMARKS.md: SmolLM2 decodes at 16.2 tok/s in bf16 against 12.9 in fp32, though its first token comes
  later), training in fp32 (bf16 training runs about 2x slower on CPUs without native bf16 matmul).
- Placement, one rule: a quantised model is placed while loading (``device_map={"": device}``, which
  bitsandbytes needs); an unquantised one loads on the CPU and is moved with ``.to(device)`` (no device_map, so
  no accelerate hooks and no ``hf_device_map`` for the Trainer to reason about).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZATIONS = ("auto", "none", "4bit")
HEADS = ("causal", "score")


class ModelError(ValueError):
    """The base model or an adapter cannot be used, or the load asked for cannot be met; the message says why."""


@dataclass(frozen=True)
class Hardware:
    """What this process can load onto (detect_hardware); tests pass one in."""

    cuda: bool = False
    bitsandbytes: bool = False  # importable (asked on CUDA, and on the CPU when "4bit" is asked for)
    bf16: bool = True  # the GPU computes in bf16 natively
    n_gpus: int = 0
    local_rank: int = 0  # this process's GPU in a distributed launch


@dataclass(frozen=True)
class LoadPlan:
    device: str  # "cpu", "cuda" (this process's GPU: cuda:local_rank) or "cuda:N"
    dtype: str  # parameter dtype, or the compute dtype when quantised
    quantization: str  # "none" or "nf4"
    reason: str = ""  # one sentence for the status bar / log
    n_gpus: int = 0
    local_rank: int = 0

    def describe(self) -> str:
        what = f"4-bit NF4, {self.dtype} compute" if self.quantization == "nf4" else self.dtype
        if self.device == "cpu":
            return f"cpu ({what})"
        return f"cuda x{self.n_gpus} ({what})"

    @property
    def target(self) -> str:
        """The torch device the weights end on."""
        return f"cuda:{self.local_rank}" if self.device == "cuda" else self.device

    def device_map(self) -> dict[str, str] | None:
        """The ``device_map`` for from_pretrained: the whole model on one device when quantised, else None."""
        return {"": self.target} if self.quantization == "nf4" else None

    def quantization_settings(self) -> dict[str, Any] | None:
        """The BitsAndBytesConfig arguments (the compute dtype by name), or None when not quantised."""
        if self.quantization != "nf4":
            return None
        return {
            "load_in_4bit": True,
            "bnb_4bit_quant_type": "nf4",
            "bnb_4bit_use_double_quant": True,
            "bnb_4bit_compute_dtype": self.dtype,
        }


def choose_load_plan(
    *,
    device: str = "auto",
    dtype: str = "auto",
    quantization: str = "auto",
    hardware: Hardware,
    for_training: bool = False,
) -> LoadPlan:
    """Where and how to load the model (see the module's rules); raises ModelError when it cannot be met."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ModelError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), not '{device}'.")
    if dtype not in DTYPES:
        raise ModelError(f"dtype must be one of {', '.join(DTYPES)}, not '{dtype}'.")
    if quantization not in QUANTIZATIONS:
        raise ModelError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not '{quantization}'.")
    if device.startswith("cuda") and not hardware.cuda:
        raise ModelError(f"device '{device}' was asked for but torch sees no CUDA device.")
    on_cuda = device.startswith("cuda") or (device == "auto" and hardware.cuda)
    if quantization == "4bit" and not hardware.bitsandbytes:
        raise ModelError(
            "4-bit loading needs the bitsandbytes package (pip install '.[cuda]'; "
            "or set quantization to 'none' or 'auto')."
        )
    if not on_cuda:
        chosen = dtype if dtype != "auto" else ("float32" if for_training else "bfloat16")
        why = "no CUDA device" if device == "auto" else "CPU chosen"
        if quantization == "4bit":  # asked for by name: bitsandbytes' CPU backend ("auto" stays unquantised)
            return LoadPlan("cpu", chosen, "nf4", f"CPU, 4-bit NF4 as asked, {chosen} compute ({why})")
        return LoadPlan("cpu", chosen, "none", f"CPU, {chosen} ({why})")
    chosen = dtype if dtype != "auto" else ("bfloat16" if hardware.bf16 else "float16")
    target = device if device.startswith("cuda:") else "cuda"
    gpus = dict(n_gpus=hardware.n_gpus, local_rank=hardware.local_rank)
    if quantization in ("auto", "4bit") and hardware.bitsandbytes:
        why = f"CUDA with bitsandbytes: 4-bit NF4, double quantisation, {chosen} compute"
        return LoadPlan(target, chosen, "nf4", why, **gpus)
    why = "4-bit not requested" if quantization == "none" else "bitsandbytes is not installed"
    return LoadPlan(target, chosen, "none", f"CUDA, {chosen} ({why})", **gpus)


def _bitsandbytes_importable() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # it raises more than ImportError on machines without working CUDA libraries
        return False
    return True


def detect_hardware() -> Hardware:
    """This process's hardware, as torch sees it (imports torch; bitsandbytes only when there is CUDA: see
    plan_load for the CPU)."""
    import torch

    if not torch.cuda.is_available():
        return Hardware()
    return Hardware(
        cuda=True,
        bitsandbytes=_bitsandbytes_importable(),
        bf16=torch.cuda.is_bf16_supported(),
        n_gpus=torch.cuda.device_count(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0") or 0),
    )


def plan_load(
    device: str = "auto", dtype: str = "auto", quantization: str = "auto", *, for_training: bool
) -> LoadPlan:
    """choose_load_plan on this process's hardware (bitsandbytes is imported on a CPU-only machine only when
    "4bit" is asked for)."""
    hardware = detect_hardware()
    if quantization == "4bit" and not hardware.cuda:
        hardware = replace(hardware, bitsandbytes=_bitsandbytes_importable())
    return choose_load_plan(
        device=device, dtype=dtype, quantization=quantization, hardware=hardware, for_training=for_training
    )


def from_pretrained_kwargs(plan: LoadPlan, head: str = "causal") -> dict[str, Any]:
    """The from_pretrained arguments of a plan, torch-free (dtype names, the BitsAndBytesConfig's arguments):
    what every caller loads with."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, not '{head}'.")
    kwargs: dict[str, Any] = {
        "dtype": plan.dtype,
        "local_files_only": True,  # a checked local folder: never the network
        "trust_remote_code": False,
        "use_safetensors": True,
    }
    if head == "score":
        kwargs["num_labels"] = 1  # a reward model: the base with a fresh one-output score head
    if plan.quantization == "nf4":
        kwargs["quantization_config"] = plan.quantization_settings()
        kwargs["device_map"] = plan.device_map()
    return kwargs


def load_base_model(folder: str | Path, plan: LoadPlan, *, head: str = "causal") -> Any:
    """The base model of ``folder`` on the plan's device (``head="score"``: a sequence classifier with a fresh
    one-output head, the causal checkpoint's lm_head left unused). Every tensor missing or left over is an
    error, never a random init (from_pretrained_checked). Raises ModelError naming the folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, BitsAndBytesConfig

    from training.model_check import from_pretrained_checked

    kwargs = from_pretrained_kwargs(plan, head)
    kwargs["dtype"] = getattr(torch, plan.dtype)
    if "quantization_config" in kwargs:
        settings = dict(kwargs["quantization_config"])
        settings["bnb_4bit_compute_dtype"] = getattr(torch, settings["bnb_4bit_compute_dtype"])
        kwargs["quantization_config"] = BitsAndBytesConfig(**settings)
    scorer = head == "score"
    auto_class = AutoModelForSequenceClassification if scorer else AutoModelForCausalLM
    allowed = {"allow_missing": ("score.",), "allow_unexpected": ("lm_head.",)} if scorer else {}
    try:
        model = from_pretrained_checked(auto_class, folder, **allowed, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # transformers' ways of refusing a folder
        raise ModelError(f"Base model {folder} cannot be loaded: {exc}") from exc
    if plan.quantization == "none":
        model = model.to(plan.target)
    return model


def load_tokenizer(folder: str | Path) -> Any:
    """The folder's tokenizer, with the EOS token as padding when it has none."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def attach_adapter(model: Any, folder: str | Path, name: str = "default", *, trainable: bool = False) -> Any:
    """Load the LoRA adapter folder onto ``model`` under ``name``; returns the PeftModel (``model`` itself when
    it already is one, with one more named adapter). Check the folder first (model_check.check_adapter_folder)."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model.load_adapter(str(folder), adapter_name=name, is_trainable=trainable)
        return model
    return PeftModel.from_pretrained(model, str(folder), adapter_name=name, is_trainable=trainable)
