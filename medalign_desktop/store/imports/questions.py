"""Import question sets (UltraMedical JSONL, JSON, CSV, Parquet, ``datasets`` folders) into prompts.

How an import behaves, and why:

- Everything is read and validated first, holding no lock; then the rows are written in short
  transactions through :mod:`staging` (staged invisibly, then published chunk by chunk), so a verdict
  saved meanwhile from another connection never waits long, a cancelled import writes nothing at all,
  and a crash never leaves a half-staged file visible (see :mod:`staging` for the recovery).
- Every invalid record is reported with its line (text files) or row (tables) and the field at fault;
  the valid ones are still imported. Empty lines are skipped silently (counted, not reported).
- Prompts are deduplicated by content, so importing the same file twice adds nothing the second time.
- Texts are stored exactly as read (any Unicode), up to ``MAX_TEXT_CHARS`` characters per field.
- Warnings (the import still happens): a file with no records, and one external id (``id``,
  ``question_id``) naming different questions within the file or against the database.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medalign_desktop.store.errors import StoreError, StoreValidationError
from medalign_desktop.store.imports import staging
from medalign_desktop.store.imports.readers import RawItem, Reader, open_reader, source_sha256
from medalign_desktop.store.imports.records import RecordError, parse_record
from medalign_desktop.store.prompts import prompt_row
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
        if not self.line:  # about the whole file
            return self.message
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
    warnings: list[ImportIssue] = field(default_factory=list)
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
        lines = [head] + _listed(self.errors)
        if self.warnings:
            lines += [f"{len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}:"]
            lines += _listed(self.warnings)
        return "\n".join(lines)

    def warn(self, message: str, line: int = 0, field: str | None = None) -> None:
        self.warnings.append(ImportIssue(line, field, message))


def _listed(issues: list[ImportIssue]) -> list[str]:
    lines = [f"  {issue}" for issue in issues[:MAX_LISTED_ISSUES]]
    if len(issues) > MAX_LISTED_ISSUES:
        lines.append(f"  ... and {len(issues) - MAX_LISTED_ISSUES} more")
    return lines


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
        kind="questions",
        read=lambda cancelled: _read_rows(
            store, reader, report, progress, cancelled, split, held_out_fraction, seed
        ),
    )  # fmt: skip


def run_import(
    store: Store,
    reader: Reader,
    report: ImportReport,
    progress: Progress | None,
    cancel: Cancel | None,
    *,
    kind: str,
    read: Callable[[Cancel], list[dict[str, Any]] | None],
) -> ImportReport:
    """The shape every import shares: validate everything first (``read``; None when cancelled; no lock
    held), then write through :mod:`staging` in short transactions; a cancel writes nothing."""
    cancelled = cancel or (lambda: False)
    rows = read(cancelled)
    if rows is None or cancelled():
        return _cancelled(report)
    if not rows and not report.errors:
        nouns = report.noun + "s"
        report.warn(
            f"{report.path.name} holds no {nouns}" + (" (only blank lines)" if report.skipped_empty else "")
        )
    if rows:
        try:
            _write(store, reader, report, kind, rows, cancelled)
        except staging.StagingCancelled:
            return _cancelled(report)
        except sqlite3.Error as exc:
            raise StoreError(
                f"Database {store.path}: importing {report.path} failed: {exc}. Nothing was imported, "
                "or, if the failure came while publishing, the rest is added on the next import or open."
            ) from exc
    if progress:
        progress(reader.total, reader.total)
    return report


def _write(
    store: Store,
    reader: Reader,
    report: ImportReport,
    kind: str,
    rows: list[dict[str, Any]],
    cancelled: Cancel,
) -> None:
    batch = {
        "source_path": str(reader.path.absolute()), "sha256": source_sha256(reader.path),
        "format": reader.format, "created_at": store.clock(), "n_records": len(rows) + len(report.errors),
        "n_errors": len(report.errors), "n_skipped_empty": report.skipped_empty,
    }  # fmt: skip
    with store.exclusive() as db:
        staging.recover(db)
        batch_id = staging.stage(db, kind, batch, rows, cancelled)
        imported = staging.publish(db, batch_id) or 0
    report.imported, report.duplicates = imported, len(rows) - imported
    report.batch_id = batch_id if imported else None


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
    seen_ids: dict[str, dict[str, int]] = {}
    for count, item in enumerate(reader, start=1):
        if count % _PROGRESS_EVERY == 0:
            if cancelled():
                return None
            if progress:
                progress(item.done, reader.total)
        row = _row_for(item, report, now, source)
        if row is None:
            continue
        note_external_id(report, seen_ids, item.line, row)
        draw = rng.random()  # drawn for every valid record, so the split of each is stable for a seed
        if split is not None:
            row["split"] = split
        elif held_out_fraction:
            row["split"] = "held_out" if draw < held_out_fraction else "train"
        rows.append(row)
    if seen_ids:
        _check_external_ids(store, report, seen_ids)
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


def _check_external_ids(store: Store, report: ImportReport, seen: dict[str, dict[str, int]]) -> None:
    """Warn when an external id is stored for a question this file does not hold (a read, no lock)."""
    ids = list(seen)
    with store.exclusive() as db:
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ", ".join("?" for _ in part)
            sql = (
                f"SELECT external_id, id, dedup_hash FROM prompts WHERE external_id IN ({marks}) ORDER BY id"
            )
            for external_id, prompt_id, dedup_hash in db.execute(sql, part):
                hashes = seen[external_id]
                if dedup_hash not in hashes:
                    report.warn(
                        f"id {external_id!r} is already stored with a different question (prompt {prompt_id});"
                        " both are kept", min(hashes.values()), "id",
                    )  # fmt: skip


def note_external_id(
    report: ImportReport, seen: dict[str, dict[str, int]], line: int, row: dict[str, Any]
) -> None:
    """Warn when one external id names different questions within the file (``seen``: id -> hash -> line)."""
    external_id = row.get("external_id")
    if external_id is None:
        return
    hashes = seen.setdefault(external_id, {})
    if hashes and row["dedup_hash"] not in hashes:
        report.warn(
            f"id {external_id!r} was already used on line {min(hashes.values())} for a different question;"
            " both are kept", line, "id",
        )  # fmt: skip
    hashes.setdefault(row["dedup_hash"], line)
