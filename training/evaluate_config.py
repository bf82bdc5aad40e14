"""The `evaluate` job's config: which versions to answer the held-out questions with, and how.

Standard library only (training/config.py registers it; the app builds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.config_base import DEVICES, QUANTIZATIONS, ConfigError, JobConfigChecks

_VERSION_KEYS = ("name", "adapter_path")


@dataclass
class EvaluateJobConfig(JobConfigChecks):
    """Evaluate model versions on held-out questions with fixed greedy settings."""

    kind: str = "evaluate"
    base_model: str = ""  # folder of the Hugging Face base every version's adapter was trained on
    # [{"name": "B-iter-2", "adapter_path": "/versions/7/adapter"}, {"name": "base", "adapter_path": null}]
    versions: list[dict] = field(default_factory=list)
    reward_adapter: str | None = None  # a reward adapter (from the `reward` job) to score the answers
    max_new_tokens: int = 256
    system_prompt: str = ""  # "" for none
    batch_size: int = 4  # questions per generate call
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    quantization: str = "auto"  # "auto": 4-bit NF4 on CUDA with bitsandbytes; "none"; "4bit"
    seed: int = 0  # greedy decoding does not sample; recorded with the settings

    def version_list(self) -> list[Version]:
        return [Version(v["name"], v.get("adapter_path")) for v in self.versions]

    def validate(self) -> None:
        self.check_base_model()
        if not self.versions:
            raise self.bad("versions", "must list at least one model version")
        seen: set[str] = set()
        for i, version in enumerate(self.versions):
            where = f"config field 'versions' item {i + 1}"
            unknown = [k for k in version if k not in _VERSION_KEYS]
            if unknown:
                raise ConfigError(f"{where} has unknown key {unknown[0]!r} (expected name, adapter_path).")
            name, path = version.get("name"), version.get("adapter_path")
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"{where}: 'name' must be a non-empty string (got {name!r}).")
            if name in seen:
                raise ConfigError(f"{where}: version {name!r} is listed twice.")
            seen.add(name)
            if path is not None and (not isinstance(path, str) or not path):
                raise ConfigError(f"{where}: 'adapter_path' must be a folder or null (got {path!r}).")
        if self.reward_adapter == "":
            raise self.bad("reward_adapter", "must name a folder or be null")
        self.check_positive("max_new_tokens", "batch_size")
        self.check_choice("device", DEVICES)
        self.check_choice("quantization", QUANTIZATIONS)


@dataclass(frozen=True)
class Version:
    name: str
    adapter_path: str | None  # None: the base model alone
