"""Writing a job folder's files privately: 0700 folders, 0600 files, whatever the umask (they hold
clinicians' questions and answers). The names of the files are training/job_folder.py's."""

from __future__ import annotations

import json
import os
from pathlib import Path

from medalign_desktop.store.db import make_private_dirs

FILE_MODE, DIR_MODE = 0o600, 0o700


def jobs_folder(db_path: str | Path) -> Path:
    """Job folders live beside the workspace database: ``medalign.sqlite`` -> ``medalign-jobs/`` (the app and
    the terminal both use this folder, so their job folder locks meet)."""
    db_path = Path(db_path)
    return db_path.parent / f"{db_path.stem}-jobs"


def open_private(path: Path):
    """A text file for writing with mode 0600 from its first byte, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "w", encoding="utf-8")


def private_dir(path: Path) -> None:
    make_private_dirs(path)
    os.chmod(path, DIR_MODE)


def write_json(path: Path, data) -> None:
    with open_private(path) as handle:
        handle.write(json.dumps(data, ensure_ascii=False, indent=2))


def write_jsonl(path: Path, records) -> None:
    """One JSON record a line, fsynced; the file's folder is created private first."""
    private_dir(path.parent)
    with open_private(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
