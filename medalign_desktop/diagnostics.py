"""What a support ticket needs: versions, the GPU, and where the app keeps its files.

One pure function, :func:`collect`, returns (name, value) rows of plain strings; the Help > Diagnostics
dialog shows them in a table (collected off the GUI thread: importing torch takes seconds) and
``medalign info`` prints them. No Qt widgets here. A library that is missing or broken is a row saying so,
never an exception: the report is most wanted exactly when something is not installed right.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from medalign_desktop import __version__, paths

NOT_INSTALLED = "not installed"
# Distribution names as pip knows them; the label is what the row shows.
PACKAGES = (
    ("transformers", "transformers"),
    ("peft", "peft"),
    ("TRL", "trl"),
    ("datasets", "datasets"),
    ("accelerate", "accelerate"),
    ("bitsandbytes", "bitsandbytes"),
    ("pyqtgraph", "pyqtgraph"),
)
QT_DISTRIBUTIONS = ("PySide6-Essentials", "PySide6")

Rows = list[tuple[str, str]]


def package_version(distribution: str, version_of: Callable[[str], str] | None = None) -> str:
    """The installed version of a distribution, or "not installed"."""
    try:
        return (version_of or metadata.version)(distribution)  # looked up now: a test may replace it
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n:,} bytes"
    units, size, index = ("KiB", "MiB", "GiB", "TiB"), n / 1024, 0
    while size >= 1024 and index < len(units) - 1:
        size, index = size / 1024, index + 1
    return f"{size:,.1f} {units[index]}"


def torch_rows() -> Rows:
    """torch's version, its CUDA build, and each CUDA device with total / free memory."""
    try:
        import torch
    except ImportError:
        return [("torch", NOT_INSTALLED)]
    except Exception as exc:  # a broken install (missing shared library) must not end the report
        return [("torch", f"cannot be imported: {exc}")]
    rows = [("torch", torch.__version__), ("CUDA build", torch.version.cuda or "none (CPU build)")]
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception as exc:
        return [*rows, ("CUDA", f"unavailable: {exc}")]
    if count == 0:
        return [*rows, ("CUDA device", "none (answers and training run on the CPU)")]
    for index in range(count):
        name = torch.cuda.get_device_name(index)
        try:
            free, total = torch.cuda.mem_get_info(index)
            memory = f"{human_bytes(total)} total, {human_bytes(free)} free"
        except Exception as exc:
            memory = f"unknown ({exc})"
        rows += [(f"CUDA device {index}", name), (f"CUDA device {index} memory", memory)]
    return rows


def qt_rows() -> Rows:
    binding = next(
        (f"{d} {v}" for d in QT_DISTRIBUTIONS if (v := package_version(d)) != NOT_INSTALLED), NOT_INSTALLED
    )
    rows = [("PySide6", binding)]
    if binding != NOT_INSTALLED:
        try:
            from PySide6.QtCore import qVersion  # QtCore only: no widgets, no display needed

            rows.append(("Qt", qVersion()))
        except ImportError as exc:
            rows.append(("Qt", f"cannot be imported: {exc}"))
    return rows


def database_rows(db_path: Path | None) -> Rows:
    """The database file and its size on disk, with its write-ahead log (where recent writes wait)."""
    db = (db_path or paths.default_database_path()).expanduser()
    if not db.exists():
        return [("Database", f"{db} (not created yet)")]
    files = [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm"))]
    size = sum(f.stat().st_size for f in files if f.exists())
    return [("Database", str(db)), ("Database size", human_bytes(size))]


def model_rows() -> Rows:
    from medalign_desktop.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        return [("Base model", f"settings unreadable: {exc}")]
    if not config.base_model:
        return [("Base model", "none configured")]
    label = f" ({config.base_model_label})" if config.base_model_label else ""
    return [("Base model", f"{config.base_model}{label}")]


def folder_rows() -> Rows:
    home = os.environ.get(paths.HOME_ENV)
    return [
        (paths.HOME_ENV, home or "not set (the user's standard folders are used)"),
        ("Data folder", str(paths.data_dir())),
        ("Cache folder", str(paths.cache_dir())),
        ("Settings folder", str(paths.config_dir())),
    ]


def collect(db_path: Path | None = None, *, include_torch: bool = True) -> Rows:
    """Every row of the report, in reading order. Slow (imports torch) unless ``include_torch`` is False."""
    rows: Rows = [
        ("MedAlign Desktop", __version__),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("Platform", platform.platform()),
    ]
    rows += torch_rows() if include_torch else [("torch", package_version("torch"))]
    rows += [(label, package_version(dist)) for label, dist in PACKAGES]
    rows += qt_rows()
    rows += database_rows(db_path) + model_rows() + folder_rows()
    return [(name, str(value)) for name, value in rows]


def as_text(rows: Rows) -> str:
    """Plain text for a support ticket: one "name: value" line each, names aligned."""
    width = max((len(name) for name, _ in rows), default=0)
    return "\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in rows) + "\n"
