"""Where the app keeps its files.

Everything lives under the user's standard folders (platformdirs), or under one folder named by the
environment variable ``MEDALIGN_HOME`` (tests, CI and portable installs use that so nothing leaks into
the real profile). No Qt here: the engine, the store and the CLI all use these paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "medalign-desktop"
HOME_ENV = "MEDALIGN_HOME"
REPO_ROOT = Path(__file__).resolve().parents[1]
RESOURCES_DIR = REPO_ROOT / "resources"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Databases and workspace data."""
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """Converted models and other files that can be rebuilt."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def config_dir() -> Path:
    """The small JSON settings file shared by the GUI and the CLI."""
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))


def models_dir() -> Path:
    """Converted base models (one safetensors folder each)."""
    return cache_dir() / "models"


def default_database_path() -> Path:
    return data_dir() / "medalign.sqlite"
