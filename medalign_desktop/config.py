"""The workstation's settings that the CLI and the GUI share: which base model to load.

A small JSON file under :func:`medalign_desktop.paths.config_dir`. Written atomically (temp file, then
rename), so a crash while saving never leaves a half file. Per-workspace data (verdicts, model versions)
lives in SQLite, not here.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medalign_desktop import paths

CONFIG_FILE_NAME = "settings.json"


class ConfigError(Exception):
    """The settings file exists but cannot be read; the message names the file."""


@dataclass
class AppConfig:
    base_model: str | None = None  # path of a safetensors model folder
    base_model_label: str | None = None  # e.g. "SmolLM2-135M-Instruct (demo)"
    extra: dict = field(default_factory=dict)


def config_path() -> Path:
    return paths.config_dir() / CONFIG_FILE_NAME


def load_config(path: Path | None = None) -> AppConfig:
    path = path or config_path()
    if not path.exists():
        return AppConfig()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read the settings file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"The settings file {path} does not hold a JSON object.")
    known = {k: raw[k] for k in ("base_model", "base_model_label", "extra") if k in raw}
    return AppConfig(**known)


def save_config(config: AppConfig, path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(config), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
