"""The house rules of ../shared/DESIGN.md, enforced on the source: which layer may import what.

ui        -> jobs, engine, store (never torch / transformers / SQL libraries directly)
store, engine, training -> never Qt widgets; store and engine no Qt at all
training  -> never medalign_desktop (it runs as a separate program)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "medalign_desktop"

QT = {"PySide6", "qasync", "pyqtgraph", "shiboken6"}
HEAVY_ML = {"torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate"}
SQL = {"sqlite3", "sqlite_utils"}

FORBIDDEN = {
    PACKAGE / "store": QT | HEAVY_ML,
    PACKAGE / "engine": QT,
    PACKAGE / "ui": HEAVY_ML | SQL | {"datasets"},
    PACKAGE / "report": QT | HEAVY_ML | SQL,  # statistics and the report: plain Python over Store calls
    PACKAGE / "jobs": HEAVY_ML,  # QtCore's QProcess only; training runs in its own process
    ROOT / "training": QT | SQL | {"medalign_desktop"},
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) for every import in a file, including ones inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def layer_files():
    for layer, forbidden in FORBIDDEN.items():
        for path in sorted(layer.rglob("*.py")) if layer.exists() else []:
            yield pytest.param(path, forbidden, id=str(path.relative_to(ROOT)))


@pytest.mark.parametrize("path, forbidden", list(layer_files()))
def test_layer_imports(path, forbidden):
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for line, module in imported_modules(path)
        if module in forbidden
    ]
    assert not bad, "\n".join(bad)


def test_ui_runs_no_sql():
    offenders = []
    for path in (PACKAGE / "ui").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for keyword in ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", ".execute("):
            if keyword in text:
                offenders.append(f"{path.relative_to(ROOT)}: contains {keyword!r}")
    assert not offenders, "\n".join(offenders)


def test_importing_the_engine_and_store_is_light():
    """Heavy libraries load inside functions, so the window can appear before torch is imported."""
    code = (
        "import sys, medalign_desktop.engine, medalign_desktop.config, medalign_desktop.cli; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
