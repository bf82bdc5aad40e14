"""Import question sets (UltraMedical JSONL, JSON, CSV, Parquet, ``datasets`` folders) into prompts.

How an import behaves, and why:

- Everything is read and validated first, holding no lock; then the rows are written in short
  transactions through :mod:`staging` (staged invisibly, then published chunk by chunk), so a verdict
  saved meanwhile from another connection never waits long, a cancelled import writes nothing at all,
  and a crash never leaves a half-staged file visible (see :mod:`staging` for the recovery). The driver
  is :mod:`base`, shared with the preference-pair import; this module says how a record becomes a row.
- Every invalid record is reported with its line (text files) or row (tables) and the field at fault;
  the valid ones are still imported. Empty lines are skipped silently (counted, not reported).
- Prompts are deduplicated by content, so importing the same file twice adds nothing the second time.
- Texts are stored exactly as read (any Unicode), up to ``MAX_TEXT_CHARS`` characters per field.
- Warnings (the import still happens): a file with no records, and one external id (``id``,
  ``question_id``) naming different questions within the file or against the database.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.imports.base import Cancel, ImportReport, Parse, Progress, run_import
from medalign_desktop.store.imports.readers import RawItem, Reader, open_reader
from medalign_desktop.store.imports.records import parse_record
from medalign_desktop.store.prompts import prompt_row
from medalign_desktop.store.vocab import SPLITS

if TYPE_CHECKING:
    from medalign_desktop.store.store import Store


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
    seen_ids: dict[str, dict[str, int]] = {}
    parse = _question_parser(report, seen_ids, store.clock(), reader, split, held_out_fraction, seed)
    return run_import(
        store, reader, report, progress, cancel, kind="questions", parse=parse,
        finish=lambda: _check_external_ids(store, report, seen_ids) if seen_ids else None,
    )  # fmt: skip


def _question_parser(
    report: ImportReport,
    seen_ids: dict[str, dict[str, int]],
    now: str,
    reader: Reader,
    split: str | None,
    held_out_fraction: float,
    seed: int,
) -> Parse:
    """How one record becomes a prompt row, noting its external id and drawing its split."""
    rng = random.Random(seed)
    source = f"import:{reader.path.name}"

    def parse(item: RawItem) -> dict[str, Any]:
        record = parse_record(item.record)
        row = prompt_row(
            record.text,
            created_at=now,
            reference_answer=record.reference_answer,
            answer_key=record.answer_key,
            options=record.options,
            source=source,
            external_id=record.external_id,
            split=record.split or item.split_hint or "train",
        )
        note_external_id(report, seen_ids, item.line, row)
        draw = rng.random()  # drawn for every valid record, so the split of each is stable for a seed
        if split is not None:
            row["split"] = split
        elif held_out_fraction:
            row["split"] = "held_out" if draw < held_out_fraction else "train"
        return row

    return parse


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
