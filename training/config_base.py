"""What every job config shares: the LoRA target modules, the device and quantisation choices, ConfigError
and JobConfigChecks (to_dict and the checks their validate() methods make).

Standard library only. training/config.py and the configs kept beside their programs (ppo/config.py,
evaluate_config.py, score_config.py) import it, so config.py can register them all without a circle.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


DEVICES = ("auto", "cpu", "cuda")


QUANTIZATIONS = ("auto", "none", "4bit")


class ConfigError(ValueError):
    """config.json cannot be used; the message names the file and the key or field."""


class JobConfigChecks:
    """Mixed into every job config dataclass: ``to_dict`` and the field checks of their ``validate()``, each
    raising ConfigError naming the field and its value."""

    base_model: str  # a field of every job config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]  # the subclasses are dataclasses

    def bad(self, name: str, why: str) -> ConfigError:
        """The error for field ``name``: ``why`` it cannot be used (its value is added)."""
        return ConfigError(f"config field '{name}' {why} (got {getattr(self, name)!r}).")

    def check_base_model(self) -> None:
        if not self.base_model:
            raise self.bad("base_model", "must name the base model folder")

    def check_positive(self, *names: str) -> None:
        for name in names:
            if getattr(self, name) <= 0:
                raise self.bad(name, "must be greater than 0")

    def check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise self.bad(name, f"must be one of {', '.join(choices)}")

    def check_folder_name(self, name: str) -> None:
        """Field ``name`` (``output_name``): a plain folder name inside the job folder."""
        value = getattr(self, name)
        if not value or any(c in value for c in "/\\") or value in (".", ".."):
            raise self.bad(name, "must be a plain folder name")
