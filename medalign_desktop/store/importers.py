"""Import question sets (UltraMedical JSONL, JSON, CSV, Parquet, ``datasets`` folders) into prompts.

How an import behaves, and why:

- All valid records go in ONE transaction, so an import is all-or-nothing: a crash or a cancel never
  leaves half a file behind, and a cancelled import writes nothing at all.
- Every invalid record is reported with its line (text files) or row (tables) and the field at fault;
  the valid ones are still imported. Empty lines are skipped silently (counted, not reported).
- Prompts are deduplicated by content, so importing the same file twice adds nothing the second time.
- Texts are stored exactly as read: any Unicode, any size.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medalign_desktop.store.db import insert, transaction
from medalign_desktop.store.errors import StoreError, StoreValidationError
from medalign_desktop.store.prompts import insert_if_new, prompt_row
from medalign_desktop.store.readers import RawItem, Reader, open_reader, source_sha256
from medalign_desktop.store.records import RecordError, parse_record
from medalign_desktop.store.vocab import SPLITS

if TYPE_CHECKING:
    from medalign_desktop.store.store import Store

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]

_PROGRESS_EVERY = 256
MAX_LISTED_ISSUES = 20


@dataclass(frozen=True)
class ImportIssue:
    line: int  # 1-based line (JSONL, CSV) or record / row number (JSON array, Parquet, datasets)
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


@dataclass
class ImportReport:
    path: Path
    format: str
    imported: int = 0
    duplicates: int = 0
    skipped_empty: int = 0
    errors: list[ImportIssue] = field(default_factory=list)
    cancelled: bool = False
    batch_id: int | None = None  # the import_batches row, when something was imported
    noun: str = "question"  # what one record is, for the summary ("preference pair" for pair imports)

    @property
    def records(self) -> int:
        """Records seen (valid or not), empty lines excluded."""
        return self.imported + self.duplicates + len(self.errors)

    def summary(self) -> str:
        """A few lines for a dialog or the CLI."""
        if self.cancelled:
            return f"Import of {self.path.name} cancelled: nothing was imported."
        head = (
            f"Imported {self.imported} {self.noun}{'s' if self.imported != 1 else ''} from {self.path.name} "
            f"({self.format}); {self.duplicates} already present, {self.skipped_empty} empty lines skipped, "
            f"{len(self.errors)} invalid."
        )
        lines = [head] + [f"  {issue}" for issue in self.errors[:MAX_LISTED_ISSUES]]
        if len(self.errors) > MAX_LISTED_ISSUES:
            lines.append(f"  ... and {len(self.errors) - MAX_LISTED_ISSUES} more")
        return "\n".join(lines)


class ImportCancelled(Exception):
    """Raised inside the write transaction to roll it back."""


def _check_options(split: str | None, held_out_fraction: float) -> None:
    if split is not None and split not in SPLITS:
        raise StoreValidationError("split", f"{split!r} is not one of {', '.join(SPLITS)}")
    if isinstance(held_out_fraction, bool) or not isinstance(held_out_fraction, int | float):
        raise StoreValidationError("held_out_fraction", f"must be a number, got {held_out_fraction!r}")
    if not 0.0 <= held_out_fraction <= 1.0:
        raise StoreValidationError("held_out_fraction", f"must be between 0 and 1, got {held_out_fraction!r}")
    if split is not None and held_out_fraction:
        raise StoreValidationError("held_out_fraction", "cannot be combined with a split override")


def import_questions(
    store: Store,
    path: str | Path,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    split: str | None = None,
    held_out_fraction: float = 0.0,
    seed: int = 0,
) -> ImportReport:
    """Import a question file or folder; see the module docstring for the guarantees.

    ``progress(done, total)`` is called while reading (units: lines for text files, rows for tables)
    and once more at the end. ``cancel()`` returning True stops the import, writes nothing and returns a
    report with ``cancelled=True``. The split of each new prompt: ``split`` if given, else held out with
    probability ``held_out_fraction`` (random, seeded), else the record's own split, else 'train'.
    """
    _check_options(split, held_out_fraction)
    path = Path(path).expanduser()
    reader = open_reader(path)
    report = ImportReport(path=path, format=reader.format)
    return run_import(
        store, reader, report, progress, cancel,
        read=lambda cancelled: _read_rows(
            store, reader, report, progress, cancelled, split, held_out_fraction, seed
        ),
        write=lambda rows, cancelled: _write_rows(store, reader, report, rows, cancelled),
    )  # fmt: skip


def run_import(
    store: Store,
    reader: Reader,
    report: ImportReport,
    progress: Progress | None,
    cancel: Cancel | None,
    *,
    read: Callable[[Cancel], list[dict[str, Any]] | None],
    write: Callable[[list[dict[str, Any]], Cancel], None],
) -> ImportReport:
    """The shape every import shares: validate everything first (``read``; None when cancelled), then write
    it all in one transaction (``write`` raises ImportCancelled to roll back); a cancel writes nothing."""
    cancelled = cancel or (lambda: False)
    rows = read(cancelled)
    if rows is None or cancelled():
        return _cancelled(report)
    try:
        write(rows, cancelled)
    except ImportCancelled:
        return _cancelled(report)
    except sqlite3.Error as exc:
        raise StoreError(
            f"Database {store.path}: importing {report.path} failed, nothing was imported: {exc}"
        ) from exc
    if progress:
        progress(reader.total, reader.total)
    return report


def _cancelled(report: ImportReport) -> ImportReport:
    report.cancelled = True
    report.imported = report.duplicates = 0
    report.batch_id = None
    return report


def _read_rows(
    store: Store,
    reader: Reader,
    report: ImportReport,
    progress: Progress | None,
    cancelled: Cancel,
    split: str | None,
    held_out_fraction: float,
    seed: int,
) -> list[dict[str, Any]] | None:
    """Parse and validate everything before writing; None when cancelled."""
    rng = random.Random(seed)
    now = store.clock()
    source = f"import:{reader.path.name}"
    rows: list[dict[str, Any]] = []
    for count, item in enumerate(reader, start=1):
        if count % _PROGRESS_EVERY == 0:
            if cancelled():
                return None
            if progress:
                progress(item.done, reader.total)
        row = _row_for(item, report, now, source)
        if row is None:
            continue
        draw = rng.random()  # drawn for every valid record, so the split of each is stable for a seed
        if split is not None:
            row["split"] = split
        elif held_out_fraction:
            row["split"] = "held_out" if draw < held_out_fraction else "train"
        rows.append(row)
    return rows


def _row_for(item: RawItem, report: ImportReport, now: str, source: str) -> dict[str, Any] | None:
    if item.problem is not None:
        report.errors.append(ImportIssue(item.line, item.field, item.problem))
        return None
    if item.empty:
        report.skipped_empty += 1
        return None
    try:
        record = parse_record(item.record)
        return prompt_row(
            record.text,
            created_at=now,
            reference_answer=record.reference_answer,
            answer_key=record.answer_key,
            options=record.options,
            source=source,
            external_id=record.external_id,
            split=record.split or item.split_hint or "train",
        )
    except RecordError as exc:
        report.errors.append(ImportIssue(item.line, exc.field, exc.message))
    except StoreValidationError as exc:
        report.errors.append(ImportIssue(item.line, exc.field, exc.message))
    return None


def _write_rows(
    store: Store, reader: Reader, report: ImportReport, rows: list[dict[str, Any]], cancelled: Cancel
) -> None:
    """One transaction: the batch row, then every new prompt; rolled back if cancelled or nothing is new."""
    sha256 = source_sha256(reader.path)
    with store.exclusive() as db:
        try:
            with transaction(db):
                batch_id = insert(
                    db,
                    "import_batches",
                    {"source_path": str(reader.path.absolute()), "sha256": sha256, "format": reader.format,
                     "created_at": store.clock()},
                )  # fmt: skip
                imported = 0
                for index, row in enumerate(rows, start=1):
                    if index % _PROGRESS_EVERY == 0 and cancelled():
                        raise ImportCancelled
                    if insert_if_new(db, {**row, "import_batch_id": batch_id}) is not None:
                        imported += 1
                report.imported, report.duplicates = imported, len(rows) - imported
                if imported == 0:
                    raise _NothingNew
                db.execute(
                    "UPDATE import_batches SET n_records = ?, n_imported = ?, n_duplicates = ?, n_errors = ?,"
                    " n_skipped_empty = ? WHERE id = ?",
                    [report.records, imported, report.duplicates, len(report.errors), report.skipped_empty,
                     batch_id],
                )  # fmt: skip
                report.batch_id = batch_id
        except _NothingNew:
            pass  # nothing new: no batch row either, so a repeated import leaves no trace


class _NothingNew(Exception):
    """Rolls back the batch row when every record was already present."""
