"""Export preference pairs and SFT answers to JSONL, Parquet or a ``datasets`` folder, with a manifest.

Formats, and why:

- Pairs: ``{"id", "chosen": [user, assistant], "rejected": [user, assistant], <provenance>}``: UltraMedical-
  Preferences' message lists, the prompt implicit in them. UltraMedical also has a plain-text ``prompt`` column,
  but TRL 1.16's DPOTrainer and RewardTrainer cannot load a string prompt beside conversational answers
  (``is_conversational`` checks one key picked from a set, so depending on the hash seed they fail on
  ``str + list`` or on ``list.endswith``). Without it DPOTrainer extracts the prompt itself, RewardTrainer scores
  the whole conversation, and our importer takes the prompt from the user message. ``prompt_column=True``
  writes it anyway, for tools that want UltraMedical's exact shape (such a file is not for TRL).
- SFT: ``{"id", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}], <provenance>}``,
  UltraMedical's instruction format, read by TRL's SFTTrainer and by our question importer.

Guarantees: an export is written to ``<dest>.tmp-<pid>`` (a file 0600; a folder 0700 holding 0600 files),
fsync'd and renamed over ``dest``; on cancel or error the temporary is removed and an existing ``dest`` is
untouched. The manifest ``<dest>.manifest.json`` lies beside the export (inside a ``datasets`` folder it would be
read as data) and is renamed into place with it. Records stream in batches of :data:`BATCH`, between which
progress is reported and cancel is checked. The store's lock is held while reading.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from medalign_desktop import __version__
from medalign_desktop.store import pairs as pair_rules
from medalign_desktop.store import tempfiles
from medalign_desktop.store.db import utc_now
from medalign_desktop.store.errors import StoreError, StoreValidationError
from medalign_desktop.store.exports import sft_records
from medalign_desktop.store.exports.formats import (
    FILE_MODE,
    WRITERS,
    Layout,
    Masker,
    Writer,
    layout_for,
    open_private,
    pair_batch,
    sft_batch,
)
from medalign_desktop.store.rows import PAIR_SOURCES, PairFilter
from medalign_desktop.store.schema.migrations import user_version
from medalign_desktop.store.validation import check_choice

if TYPE_CHECKING:
    from medalign_desktop.store.store import Store

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]

FORMATS: tuple[str, ...] = tuple(WRITERS)
EXPORT_FORMAT_VERSION = 1
BATCH = 1000  # records between progress reports and cancel checks
DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_source_of = attrgetter("source")
PAIR_FILTERS = ("date_from", "date_to", "annotator", "model_version", "sources", "flags", "exclude_flagged",
                "include_held_out", "import_batch_ids")  # fmt: skip


ALL = PairFilter()  # the default filter: every train-split record


class ExportCancelled(StoreError):
    """The export was cancelled: nothing was written and an earlier export at the destination is intact."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    manifest_path: Path
    fmt: str
    kind: str  # "pairs" or "sft"
    n_records: int
    counts_by_source: dict[str, int]
    n_masked: dict[str, int]  # identifiers masked, by kind; empty when de-identification was off
    sha256: str
    duration_s: float

    def summary(self) -> str:
        """One line for the CLI."""
        sources = ", ".join(f"{name} {n}" for name, n in self.counts_by_source.items() if n) or "none"
        line = (
            f"Exported {self.n_records} {self.kind} records to {self.path} ({self.fmt}; by source: {sources})"
        )
        if self.n_masked:
            masked = ", ".join(f"{kind} {n}" for kind, n in self.n_masked.items())
            line += f"; de-identification masked {sum(self.n_masked.values())} ({masked})"
        return f"{line} in {self.duration_s:.1f} s. Manifest: {self.manifest_path}"


@dataclass(frozen=True)
class _Job:
    """What one export reads and how it turns records into batches."""

    kind: str
    layout: Layout
    sources: tuple[str, ...]
    filter_names: tuple[str, ...]
    count: Callable[[Database], int]
    records: Callable[[Database], Iterator[Any]]
    to_batch: Callable[[list[Any], Layout, Masker], dict[str, list]]


def export_pairs(
    store: Store,
    dest: str | Path,
    *,
    fmt: str = "jsonl",
    filters: PairFilter = ALL,
    deidentify: bool = False,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    prompt_column: bool = False,
) -> ExportReport:
    """Write the pairs matching ``filters`` to ``dest`` (see the module docstring for formats and guarantees).

    ``progress(done, total)`` is called at the start, every :data:`BATCH` records and at the end; ``cancel()``
    returning True stops the export and raises :class:`ExportCancelled`. Other failures raise StoreError.
    """
    job = _Job(
        "pairs", layout_for("pairs", prompt_column), PAIR_SOURCES, PAIR_FILTERS,
        lambda db: pair_rules.count_pairs(db, filters), lambda db: pair_rules.iter_pairs(db, filters), pair_batch,
    )  # fmt: skip
    return _export(store, dest, fmt, job, filters, deidentify, progress, cancel)


def export_sft(
    store: Store,
    dest: str | Path,
    *,
    fmt: str = "jsonl",
    filters: PairFilter = ALL,
    deidentify: bool = False,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> ExportReport:
    """Write the live accepted and edited answers matching ``filters`` as SFT conversations; as :func:`export_pairs`."""
    job = _Job(
        "sft", layout_for("sft"), sft_records.SFT_SOURCES, sft_records.APPLICABLE_FILTERS,
        lambda db: sft_records.count_sft(db, filters), lambda db: sft_records.iter_sft(db, filters), sft_batch,
    )  # fmt: skip
    return _export(store, dest, fmt, job, filters, deidentify, progress, cancel)


def temp_path(path: Path) -> Path:
    """``<path>.tmp-<pid>``, registered for removal should this process die first (store.tempfiles)."""
    return tempfiles.temp_path(path)


def manifest_path(dest: str | Path) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + ".manifest.json")


def _export(
    store: Store,
    dest: str | Path,
    fmt: str,
    job: _Job,
    filters: PairFilter,
    deidentify: bool,
    progress: Progress | None,
    cancel: Cancel | None,
) -> ExportReport:
    started = time.perf_counter()
    fmt = check_choice("fmt", fmt, FORMATS)
    dest = _check_dest(Path(dest).expanduser().absolute(), fmt)
    tmp, manifest = temp_path(dest), manifest_path(dest)
    manifest_tmp = temp_path(manifest)
    for leftover in (tmp, manifest_tmp):  # a crashed earlier run of a process with our pid
        tempfiles.remove(leftover)
    tempfiles.clean_folder(dest.parent, (dest.name, manifest.name))  # those of dead processes
    mask, by_source = Masker(deidentify), Counter[str]()
    writer: Writer | None = None
    try:
        with store.exclusive() as db:
            total, schema_version = job.count(db), user_version(db)
            if progress:
                progress(0, total)
            dest.parent.mkdir(parents=True, exist_ok=True)
            writer = WRITERS[fmt](tmp, job.layout)
            for chunk in _chunks(job.records(db), BATCH):
                _check_cancel(cancel, dest)
                writer.write(job.to_batch(chunk, job.layout, mask))
                by_source.update(Counter(map(_source_of, chunk)))
                if progress:
                    done = sum(by_source.values())
                    progress(done, max(total, done))
        _check_cancel(cancel, dest)
        writer.finish()
        writer = None
        n_records = sum(by_source.values())
        counts = {source: by_source.get(source, 0) for source in job.sources}
        masked = mask.reported()
        digest, files = checksum(tmp)
        meta = {
            "app": "MedAlign Desktop", "app_version": __version__, "export_format_version": EXPORT_FORMAT_VERSION,
            "store_schema_version": schema_version, "kind": job.kind, "format": fmt, "path": dest.name,
            "columns": job.layout.names(), "n_records": n_records, "counts_by_source": counts,
            "deidentified": bool(deidentify), "n_masked": masked, "deidentification": mask.manifest(),
            "filters": {name: _jsonable(getattr(filters, name)) for name in job.filter_names},
            "sha256": digest, "sha256_of": "the file" if fmt != "datasets" else
            "the folder's files in name order, each as: relative path, NUL byte, contents",
            "files": files, "created_at": utc_now(),
        }  # fmt: skip
        _write_json(manifest_tmp, meta)
        _install(tmp, dest)
        os.replace(manifest_tmp, manifest)
        _fsync_dir(dest.parent)
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        tempfiles.remove(tmp)
        tempfiles.remove(manifest_tmp)
        if isinstance(exc, sqlite3.Error):
            raise StoreError(
                f"Database {store.path}: exporting to {dest} failed, nothing was written: {exc}"
            ) from exc
        if isinstance(exc, OSError):
            raise StoreError(f"Cannot write the export {dest}: {exc}. Nothing was written.") from exc
        raise
    if progress:
        progress(n_records, n_records)
    return ExportReport(
        path=dest, manifest_path=manifest, fmt=fmt, kind=job.kind, n_records=n_records,
        counts_by_source=counts, n_masked=masked, sha256=digest, duration_s=time.perf_counter() - started,
    )  # fmt: skip


def _check_cancel(cancel: Cancel | None, dest: Path) -> None:
    if cancel is not None and cancel():
        raise ExportCancelled(f"Export to {dest} cancelled: nothing was written.")


def _check_dest(dest: Path, fmt: str) -> Path:
    """Refuse destinations an export must not replace: a folder for a file, or a folder of other things."""
    if fmt != "datasets" and dest.is_dir():
        raise StoreValidationError("dest", f"{dest} is a folder; give a file name for a {fmt} export")
    if fmt == "datasets" and dest.exists():
        if not dest.is_dir():
            raise StoreValidationError(
                "dest", f"{dest} is a file; a datasets export is a folder, give a new name"
            )
        if any(dest.iterdir()) and not any((dest / marker).exists() for marker in DATASET_MARKERS):
            raise StoreValidationError(
                "dest", f"{dest} is a folder holding other files; choose a new folder name for the export"
            )
    return dest


def _chunks(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):  # date and datetime
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    return value


def _file_sha256(path: Path, into: Any = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            if into is not None:
                into.update(block)
    return digest.hexdigest()


def checksum(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """sha256 of a file, or of a folder's files in name order (path, NUL, contents); plus one entry per file."""
    if path.is_file():
        digest = _file_sha256(path)
        return digest, [{"name": ".", "bytes": path.stat().st_size, "sha256": digest}]
    total, files = hashlib.sha256(), []
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        name = item.relative_to(path).as_posix()
        total.update(name.encode("utf-8") + b"\0")
        files.append({"name": name, "bytes": item.stat().st_size, "sha256": _file_sha256(item, total)})
    return total.hexdigest(), files


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with open_private(path) as handle:
        handle.write((json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, FILE_MODE)


def _install(tmp: Path, dest: Path) -> None:
    """Rename the finished temporary over ``dest``; an old folder is moved aside first and removed after."""
    if not (dest.is_dir() and not dest.is_symlink()):
        os.replace(tmp, dest)
        return
    old = dest.with_name(f"{dest.name}.old-{os.getpid()}")
    tempfiles.remove(old)
    os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except OSError:
        os.rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
