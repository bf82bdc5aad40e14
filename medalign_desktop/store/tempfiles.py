"""Temporary files of exports and reports (``<dest>.tmp-<pid>``), and removing those of dead processes.

An export or a report is written to ``<dest>.tmp-<pid>`` and renamed over ``dest``; a process killed
half-way leaves that temporary behind, holding patient text. Exports may go to any folder, so every
temporary is recorded in a small registry under the data folder (``pending-temp-files.jsonl``, 0600, one
JSON line per path) and:

- at start-up (:func:`clean_registered`, from ``Store.open``) registered temporaries whose process is dead
  are removed and dropped from the registry;
- at an export (:func:`clean_folder`) the destination folder is scanned: registered temporaries of dead
  processes there, and this destination's own ``<name>.tmp-<pid>`` leftovers, are removed; a
  ``<name>.old-<pid>`` (an earlier export moved aside while being replaced) is put back if the destination
  is missing, else removed.

A process is dead when ``os.kill(pid, 0)`` raises ProcessLookupError; our own pid and any pid we cannot
signal count as alive, so a live writer's temporary is never touched. No Qt, no SQL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from medalign_desktop import paths
from medalign_desktop.store.db import make_private_dirs

REGISTRY_NAME = "pending-temp-files.jsonl"
TEMP = re.compile(r"^(?P<base>.+)\.(?P<what>tmp|old)-(?P<pid>\d+)$")

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking, appends are still one write each
    fcntl = None  # type: ignore[assignment]


def registry_path() -> Path:
    return paths.data_dir() / REGISTRY_NAME


def pid_alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: somebody else's live process
        return True
    return True


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def _open_registry() -> int:
    registry = registry_path()
    make_private_dirs(registry.parent)
    fd = os.open(registry, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def register(path: Path) -> None:
    """Record a temporary path of this process (best effort: an unwritable data folder never stops an export)."""
    line = json.dumps({"pid": os.getpid(), "path": str(path)}) + "\n"
    try:
        fd = _open_registry()
    except OSError:
        return
    try:
        _lock(fd)
        os.write(fd, line.encode("utf-8"))
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path(dest: Path) -> Path:
    """``<dest>.tmp-<our pid>``, registered so that it is removed should this process die before renaming it."""
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    register(tmp)
    return tmp


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _stale(path: Path) -> bool:
    """A ``.tmp-<pid>`` / ``.old-<pid>`` name whose process is dead."""
    match = TEMP.match(path.name)
    return bool(match) and not pid_alive(int(match["pid"]))


def _entries(text: str) -> list[tuple[int, Path]]:
    entries = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
            entries.append((int(record["pid"]), Path(record["path"])))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash
    return entries


def clean_registered() -> list[Path]:
    """Remove registered temporaries of dead processes and compact the registry; returns what was removed."""
    if not registry_path().exists():
        return []
    removed: list[Path] = []
    try:
        fd = _open_registry()
    except OSError:
        return []
    try:
        _lock(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        keep = []
        for pid, path in _entries(b"".join(chunks).decode("utf-8", "replace")):
            match = TEMP.match(path.name)
            if match is None or int(match["pid"]) != pid:
                continue  # not a name we write: never delete it
            if pid_alive(pid):
                keep.append(json.dumps({"pid": pid, "path": str(path)}) + "\n")
            elif path.exists() or path.is_symlink():
                remove(path)
                removed.append(path)
        os.ftruncate(fd, 0)
        os.write(fd, "".join(keep).encode("utf-8"))
    except OSError:
        pass
    finally:
        os.close(fd)
    return removed


def _registered_in(folder: Path) -> set[Path]:
    try:
        text = registry_path().read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {path for _, path in _entries(text) if path.parent == folder}


def clean_folder(folder: Path, dest_names: Iterable[str] = ()) -> list[Path]:
    """At an export: remove stale temporaries in ``folder`` (registered ones, and those of ``dest_names``);
    an ``<name>.old-<pid>`` of a dead process goes back to ``<name>`` when that is missing."""
    names = set(dest_names)
    registered = _registered_in(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = TEMP.match(path.name)
        if match is None or not (match["base"] in names or path in registered) or not _stale(path):
            continue
        original = folder / match["base"]
        try:
            if match["what"] == "old" and not original.exists():
                os.rename(path, original)  # the earlier export, moved aside by a replace that never finished
                continue
            remove(path)
        except OSError:
            continue  # best effort: the export itself must not fail on somebody's leftover
        removed.append(path)
    return removed
