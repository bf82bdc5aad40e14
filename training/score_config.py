"""The `score` job's config: the reward model that scores the stored answers.

Standard library only (training/config.py registers it; the app builds it).
"""

from __future__ import annotations

from dataclasses import dataclass

from training.config_base import DEVICES, JobConfigChecks


@dataclass
class ScoreJobConfig(JobConfigChecks):
    """Score answers with a reward model: the base as a one-output classifier plus the reward adapter."""

    kind: str = "score"
    base_model: str = ""  # folder of the Hugging Face base the reward adapter was trained on
    reward_adapter: str = ""  # folder of a reward adapter (LoRA + score head, task_type SEQ_CLS)
    batch_size: int = 8  # answers per forward pass
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    max_length: int = 2048  # tokens of prompt + answer; longer answers are left unscored

    def validate(self) -> None:
        self.check_base_model()
        if not self.reward_adapter:
            raise self.bad("reward_adapter", "must name the reward adapter folder")
        self.check_positive("batch_size", "max_length")
        self.check_choice("device", DEVICES)
