"""Out-of-memory failures: recognise every form one takes and say which settings of the job to lower.

A job runs out of memory as ``torch.OutOfMemoryError`` (CUDA), as Python's ``MemoryError`` (RAM), or as a
plain ``RuntimeError`` from a C++ allocator ("DefaultCPUAllocator: can't allocate memory", "CUDA out of
memory" from older code paths), sometimes wrapped in another exception by a library. :func:`memory_kind`
finds any of them along the exception's cause chain; :func:`oom_advice` names the memory settings of the
job's kind with the values the job had, in the order worth trying. Standard library only.
"""

from __future__ import annotations

from typing import Any

GPU = "gpu"
RAM = "ram"
GPU_REASON = "Out of GPU memory"
RAM_REASON = "Out of memory (RAM)"

_GPU_MARKERS = (
    "cuda out of memory",
    "cuda error: out of memory",
    "cublas_status_alloc_failed",
    "mps backend out of memory",
)
_RAM_MARKERS = ("can't allocate memory", "cannot allocate memory", "std::bad_alloc", "not enough memory")

# Settings to lower, per kind, before the switches (gradient checkpointing, 4-bit) that every kind shares.
_TRAINER_KINDS = ("sft", "hitl", "dpo", "reward")
_LOWER: dict[str, tuple[str, ...]] = {
    "ppo": ("batch_size", "forward_batch_size", "mini_batch_size", "max_new_tokens", "max_length"),
    "evaluate": ("batch_size", "max_new_tokens"),
    "score": ("batch_size", "max_length"),
}


def memory_kind(exc: BaseException | None) -> str | None:
    """GPU or RAM when ``exc`` (or an exception it was raised from) is an out-of-memory error, else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        found = _own_memory_kind(exc)
        if found:
            return found
        exc = exc.__cause__ or exc.__context__
    return None


def _own_memory_kind(exc: BaseException) -> str | None:
    if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError, without importing torch
        return GPU
    if isinstance(exc, MemoryError):
        return RAM
    if not isinstance(exc, RuntimeError):
        return None
    text = str(exc).lower()
    if any(marker in text for marker in _GPU_MARKERS):
        return GPU
    if any(marker in text for marker in _RAM_MARKERS):
        return RAM
    return GPU if "out of memory" in text else None  # other accelerators' wording


def _now(config: Any, name: str) -> str:
    value = getattr(config, name, None)
    return "" if value is None else f" (now {value!r})" if isinstance(value, str) else f" (now {value})"


def _has(config: Any, name: str) -> bool:
    return config is None or hasattr(config, name)


def oom_advice(kind: str | None, config: Any, memory: str) -> str:
    """What to change after running out of ``memory`` (GPU / RAM), naming ``kind``'s settings and, when
    ``config`` is known, their values. An unknown kind gets the fine-tuning programs' settings."""
    if kind in _LOWER:
        names = [name for name in _LOWER[kind] if _has(config, name)]
        steps = ["lower " + ", ".join(name + _now(config, name) for name in names)]
    else:
        steps = [
            "lower per_device_train_batch_size"
            + _now(config, "per_device_train_batch_size")
            + " and raise gradient_accumulation_steps"
            + _now(config, "gradient_accumulation_steps")
            + " to keep the effective batch size",
            "lower max_length" + _now(config, "max_length"),
        ]
    if _has(config, "gradient_checkpointing") and (kind in _TRAINER_KINDS or kind == "ppo" or kind is None):
        if config is not None and not config.gradient_checkpointing:
            steps.append("turn gradient_checkpointing on (now off)")
        else:
            steps.append("keep gradient_checkpointing on")
    if _has(config, "quantization") and kind != "score":
        already = config is not None and config.quantization == "4bit"
        if not already:
            steps.append(
                "on a CUDA GPU use quantization '4bit'"
                + _now(config, "quantization")
                + ", which needs bitsandbytes"
            )
    if memory == RAM:
        steps.append("or close other programs to free RAM")
    text = "; ".join(steps)
    return text[0].upper() + text[1:] + "."


def describe_oom(exc: BaseException, kind: str | None = None, config: Any = None) -> tuple[str, str] | None:
    """(reason, advice) when ``exc`` is an out-of-memory error, else None."""
    memory = memory_kind(exc)
    if memory is None:
        return None
    return (GPU_REASON if memory == GPU else RAM_REASON), oom_advice(kind, config, memory)
