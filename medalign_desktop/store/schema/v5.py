"""Schema version 5: staged imports, so that a large import never holds the write lock for long (issue 19).

Plain SQL, never edited once released (see :mod:`medalign_desktop.store.schema.v1`). Choices:

- ``import_staging`` holds the validated rows of an import in progress, in generic untyped columns
  ``c0`` … ``c9`` (one table for question and preference-pair imports; :mod:`staging` maps them to the
  target's columns; untyped so values are kept exactly, and not JSON because SQLite's JSON functions
  cut text at a NUL character). Nothing reads it but the importer, so staged rows are never visible as
  questions or pairs. A persistent table rather than a TEMP one: publishing is done in short transactions
  too, and a publish interrupted by a crash must be completed from these rows by the next process.
- ``import_batches.state``: 'staging' (rows being staged; the batch is not listed anywhere), 'publishing'
  (staging complete: the import is committed and is moved into its table chunk by chunk; a crash here is
  rolled forward) or 'done'. Existing batches are 'done'.
- ``import_batches.owner`` ('host:pid') and ``touched_at`` tell a live import from one whose process died,
  so stale staging rows are discarded on the next import without touching a concurrent one.
"""

from __future__ import annotations

from medalign_desktop.store.schema.v1 import split_statements

V5_TABLES = """
CREATE TABLE import_staging (
    batch_id INTEGER NOT NULL REFERENCES import_batches(id),
    seq INTEGER NOT NULL,
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9,
    PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;

ALTER TABLE import_batches ADD COLUMN state TEXT NOT NULL DEFAULT 'done'
    CHECK (state IN ('staging', 'publishing', 'done'));

ALTER TABLE import_batches ADD COLUMN owner TEXT;

ALTER TABLE import_batches ADD COLUMN touched_at TEXT;
"""

V5_INDEXES = """
CREATE INDEX import_batches_state ON import_batches(state) WHERE state != 'done';
"""


def v5_statements() -> list[str]:
    """Every statement of the step from schema v4 to v5, in order."""
    return split_statements(V5_TABLES + V5_INDEXES)
