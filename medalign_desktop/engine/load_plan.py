"""Which device, precision and quantisation to load a model with. Pure, so it is tested exactly.

The research project's settings: on CUDA with bitsandbytes, 4-bit NF4 with double quantisation and bf16
compute; on CUDA without it, bf16. On the CPU bf16 too: measured side by side on this 2-core AVX2 machine
(docs/BENCHMARKS.md), SmolLM2 decodes at 16.2 tok/s in bf16 against 12.9 in fp32, so a whole answer is
done sooner, although bf16's first token comes later (1.16 s against 0.34 s: without native bf16 matmul
the prompt's prefill is emulated). ``dtype="float32"`` picks the quicker first token.
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZATIONS = ("auto", "none", "4bit")


@dataclass(frozen=True)
class LoadPlan:
    device: str  # "cpu" or "cuda" (or "cuda:N")
    dtype: str  # parameter dtype (compute dtype when quantised)
    quantization: str  # "none" or "nf4"
    reason: str  # one sentence for the status bar / log


def choose_load_plan(
    *,
    device: str = "auto",
    dtype: str = "auto",
    quantization: str = "auto",
    cuda_available: bool,
    bitsandbytes_available: bool,
) -> LoadPlan:
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), not '{device}'.")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not '{dtype}'.")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not '{quantization}'.")
    if device.startswith("cuda") and not cuda_available:
        raise ValueError("CUDA was asked for but no CUDA device is available to torch.")
    on_cuda = device.startswith("cuda") or (device == "auto" and cuda_available)
    target = device if device.startswith("cuda") else ("cuda" if on_cuda else "cpu")
    chosen_dtype = "bfloat16" if dtype == "auto" else dtype

    if quantization == "4bit" and not (on_cuda and bitsandbytes_available):
        needs = "a CUDA device" if not on_cuda else "the bitsandbytes package (pip install '.[cuda]')"
        raise ValueError(f"4-bit loading needs {needs}.")
    if on_cuda and quantization in ("auto", "4bit") and bitsandbytes_available:
        return LoadPlan(
            target,
            chosen_dtype,
            "nf4",
            "CUDA with bitsandbytes: 4-bit NF4, double quantisation, bf16 compute",
        )
    if on_cuda:
        why = "4-bit not requested" if quantization == "none" else "bitsandbytes is not installed"
        return LoadPlan(target, chosen_dtype, "none", f"CUDA, {chosen_dtype} ({why})")
    why = "no CUDA device" if device == "auto" else "CPU chosen"
    return LoadPlan("cpu", chosen_dtype, "none", f"CPU, {chosen_dtype} ({why})")
