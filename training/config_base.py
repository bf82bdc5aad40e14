"""What every job config shares: the LoRA target modules, the device and quantisation choices, ConfigError.

Standard library only. training/config.py and the configs kept beside their programs (ppo/config.py,
evaluate_config.py, score_config.py) import it, so config.py can register them all without a circle.
"""

from __future__ import annotations

LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


DEVICES = ("auto", "cpu", "cuda")


QUANTIZATIONS = ("auto", "none", "4bit")


class ConfigError(ValueError):
    """config.json cannot be used; the message names the file and the key or field."""
