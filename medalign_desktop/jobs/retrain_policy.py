"""When to retrain automatically: after every N new accepted or edited samples (default 20)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_THRESHOLD = 20


@dataclass(frozen=True)
class RetrainPolicy:
    threshold: int = DEFAULT_THRESHOLD
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError(f"The retrain threshold must be at least 1, not {self.threshold}.")

    def should_retrain(self, new_samples: int, *, job_active: bool) -> bool:
        """True when enough new samples have arrived and no training job is queued or running."""
        return self.enabled and not job_active and new_samples >= self.threshold
