"""Import batches: one row per finished import (questions or preference pairs), for choosing the data a job
or an export uses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from medalign_desktop.store.validation import check_choice

BATCH_KINDS: tuple[str, ...] = ("questions", "pairs")


@dataclass(frozen=True)
class ImportBatch:
    """One import, for choosing which imported data a job or an export uses."""

    id: int
    kind: str  # "questions" or "pairs"
    source_path: str
    format: str
    n_imported: int
    created_at: str


def list_import_batches(db: Database, kind: str | None = None) -> list[ImportBatch]:
    """Finished import batches newest first, of one kind if given (one still being written is left out)."""
    # 'state' exists from schema v5 on (a test may open an older schema on purpose).
    done = "state = 'done'" if "state" in db["import_batches"].columns_dict else "1"
    where, params = f"WHERE {done}", []
    if kind is not None:
        where, params = f"WHERE {done} AND kind = ?", [check_choice("kind", kind, BATCH_KINDS)]
    sql = f"""
        SELECT id, kind, source_path, format, n_imported, created_at FROM import_batches {where}
        ORDER BY id DESC
    """
    return [ImportBatch(*row) for row in db.execute(sql, params).fetchall()]
