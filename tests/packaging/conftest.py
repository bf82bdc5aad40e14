"""The bundle and wheelhouse tests build for minutes and write GBs: they run only when asked for by marker
(`pytest -m packaging tests/packaging`), even under a marker expression such as `-m "not slow"`."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config, items):
    if "packaging" in (config.getoption("markexpr") or "").replace("not packaging", ""):
        return
    skip = pytest.mark.skip(reason="builds the bundle / wheelhouse: run with -m packaging")
    for item in items:
        if item.get_closest_marker("packaging"):
            item.add_marker(skip)


def load_script(name: str):
    """A script of packaging/ (no .py suffix) as a module."""
    path = ROOT / "packaging" / name
    loader = importlib.machinery.SourceFileLoader(f"packaging_{name}", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up while it is being executed
    loader.exec_module(module)
    return module
