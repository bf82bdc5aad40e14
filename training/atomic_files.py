"""Files and folders written so that one with the final name is always whole: written under a temporary name
beside it, then renamed into place (score, evaluate and the trainer programs' results and adapters)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> Path:
    """Write to a temporary file, flush it to disk, then rename: a file with the final name is always whole."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: Path, data: dict[str, Any]) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, default=str))


def save_folder_atomically(final_dir: Path, cancel: Any, write: Callable[[Path], None]) -> Path:
    """``write(folder)`` into a temporary folder beside ``final_dir``, renamed into place only when complete
    (a failure or a cancel until then removes it). ``cancel`` (a CancelToken) is checked a last time and then
    deferred: after the rename the job counts as finished."""
    tmp = final_dir.with_name(f"{final_dir.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        cancel.check()
        cancel.deferred = True
        os.rename(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final_dir
