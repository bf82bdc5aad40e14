"""Data-parallel runs (``torchrun`` / ``accelerate launch``): the check that every process ends with the
same adapter.

Under DDP each process holds its own copy of the model; the copies start equal (DDP broadcasts rank 0's
weights) and stay equal because every step's gradients are all-reduced before the same optimiser step. The
trainer programs (sft, hitl, dpo, reward) check that this held before rank 0 saves the adapter: each process
hashes its adapter weights (exactly what peft saves), the hashes are gathered, and a difference fails the job
instead of silently saving one process's copy. The log line names the hash, so the saved file can be checked
against it (tests/training/test_distributed.py does).
"""

from __future__ import annotations

import hashlib
from typing import Any


def describe_processes(accelerator: Any, config: Any) -> str | None:
    """The log line of a data-parallel run (None in one process): how many processes and the global batch,
    so a launcher that started one process only (``accelerate launch --cpu`` does) is visible at once."""
    n = accelerator.num_processes
    if n <= 1:
        return None
    per_device_batch, accumulation = config.per_device_train_batch_size, config.gradient_accumulation_steps
    kind = getattr(accelerator.distributed_type, "value", accelerator.distributed_type)  # MULTI_GPU, ...
    return (
        f"Data-parallel over {n} processes ({kind}, backend "
        f"{getattr(accelerator.state, 'backend', None)}): a step is {per_device_batch} examples x {n} processes "
        f"x {accumulation} accumulation steps = {per_device_batch * n * accumulation}."
    )


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 over the tensors of a state dict (sorted names, dtype, shape and raw bytes): equal exactly
    when every weight is bit-for-bit equal. Works on a model's peft state dict and on a loaded
    adapter_model.safetensors alike."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def adapter_digest(model: Any) -> str:
    """state_digest of what ``model.save_pretrained`` writes for the active adapter."""
    from peft import get_peft_model_state_dict

    return state_digest(get_peft_model_state_dict(model))


def check_same_adapter(accelerator: Any, model: Any, log: Any) -> str | None:
    """With more than one process: the adapter's digest, the same on every process, logged once; raises
    RuntimeError naming the processes that differ. None (nothing checked) in a single process. Every process
    must call it (it gathers)."""
    if accelerator.num_processes <= 1:
        return None
    import torch.distributed as dist

    mine = adapter_digest(model)
    digests: list[str | None] = [None] * accelerator.num_processes
    dist.all_gather_object(digests, mine)
    if len(set(digests)) != 1:
        differ = [rank for rank, d in enumerate(digests) if d != digests[0]]
        raise RuntimeError(
            f"The {len(digests)} training processes ended with different adapters (processes {differ} differ "
            "from process 0): data-parallel training went wrong, so no adapter is saved."
        )
    log(f"All {len(digests)} processes hold the same adapter (SHA-256 of its weights {mine}).")
    return mine
