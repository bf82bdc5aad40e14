"""How much memory a training job will need, estimated before it starts. Standard library only.

The app's memory planner (medalign_desktop/jobs/memory_plan.py) compares this estimate with what the chosen
device has free, and unloads the answering model when the job needs its room.

    estimate_job_memory(kind, config, model_dir, device="cpu") -> MemoryEstimate

``config``: the job's settings as in config.json (the kind's defaults from training.config.defaults(kind)
updated with the overrides); ``model_dir``: the base model folder (its config.json gives the shape);
``device``: "cpu" (the estimate is peak resident memory, RSS, of the training process) or "cuda" (peak
``torch.cuda.max_memory_allocated`` plus the CUDA context).
"""

from __future__ import annotations

from dataclasses import dataclass, field

GiB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    total_bytes: int
    device: str  # "cpu" or "cuda"
    # e.g. weights, adapters+optimiser, activations, runtime
    parts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """Like "about 3.1 GiB (weights 2.0, activations 0.6, ...)"."""
        detail = ", ".join(f"{name} {value / GiB:.1f}" for name, value in self.parts.items())
        return f"about {self.total_bytes / GiB:.1f} GiB" + (f" ({detail})" if detail else "")
