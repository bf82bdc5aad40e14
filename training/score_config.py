"""The `score` job's config: the reward model that scores the stored answers.

Standard library only (training/config.py registers it; the app builds it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from training.config_base import ConfigError

_DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ScoreJobConfig:
    """Score answers with a reward model: the base as a one-output classifier plus the reward adapter."""

    kind: str = "score"
    base_model: str = ""  # folder of the Hugging Face base the reward adapter was trained on
    reward_adapter: str = ""  # folder of a reward adapter (LoRA + score head, task_type SEQ_CLS)
    batch_size: int = 8  # answers per forward pass
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    max_length: int = 2048  # tokens of prompt + answer; longer answers are left unscored

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"config field '{name}' {why} (got {getattr(self, name)!r}).")

        if not self.base_model:
            raise bad("base_model", "must name the base model folder")
        if not self.reward_adapter:
            raise bad("reward_adapter", "must name the reward adapter folder")
        for name in ("batch_size", "max_length"):
            if getattr(self, name) <= 0:
                raise bad(name, "must be greater than 0")
        if self.device not in _DEVICES:
            raise bad("device", f"must be one of {', '.join(_DEVICES)}")
