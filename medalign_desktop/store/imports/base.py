"""The one import driver shared by every kind of record (questions, preference pairs).

Every import has the same shape: open a reader, parse and validate every record first (holding no lock;
a bad record is reported with its line / row and the field at fault while the good ones go on), then
write the valid rows through :mod:`staging` in short transactions (a cancel writes nothing), then report.
A kind of record supplies only how one record becomes a row (``parse``) and, optionally, a check of all
rows against the database before writing (``finish``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medalign_desktop.store.errors import StoreError, StoreValidationError
from medalign_desktop.store.imports import staging
from medalign_desktop.store.imports.readers import RawItem, Reader, source_sha256
from medalign_desktop.store.imports.records import RecordError

if TYPE_CHECKING:
    from medalign_desktop.store.store import Store

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]
Parse = Callable[[RawItem], dict[str, Any]]  # one valid record -> its row; RecordError names the field

PROGRESS_EVERY = 256
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


def run_import(
    store: Store,
    reader: Reader,
    report: ImportReport,
    progress: Progress | None,
    cancel: Cancel | None,
    *,
    kind: str,
    parse: Parse,
    finish: Callable[[], None] | None = None,
) -> ImportReport:
    """Read and validate everything (no lock held), call ``finish`` (a last check of the whole file),
    then write through :mod:`staging` in short transactions as one import batch; a cancel writes nothing."""
    cancelled = cancel or (lambda: False)
    rows = read_rows(reader, report, progress, cancelled, parse)
    if rows is not None and finish is not None:
        finish()
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


def read_rows(
    reader: Reader, report: ImportReport, progress: Progress | None, cancelled: Cancel, parse: Parse
) -> list[dict[str, Any]] | None:
    """Parse and validate every record before anything is written; None when cancelled."""
    rows: list[dict[str, Any]] = []
    for count, item in enumerate(reader, start=1):
        if count % PROGRESS_EVERY == 0:
            if cancelled():
                return None
            if progress:
                progress(item.done, reader.total)
        row = _row_for(item, report, parse)
        if row is not None:
            rows.append(row)
    return rows


def _row_for(item: RawItem, report: ImportReport, parse: Parse) -> dict[str, Any] | None:
    """The record's row, or None with the reason counted (an empty line) or reported (line and field)."""
    if item.problem is not None:
        report.errors.append(ImportIssue(item.line, item.field, item.problem))
        return None
    if item.empty:
        report.skipped_empty += 1
        return None
    try:
        return parse(item)
    except (RecordError, StoreValidationError) as exc:
        report.errors.append(ImportIssue(item.line, exc.field, exc.message))
    return None


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
