"""Schema version 2: comparisons between two answers, and imported preference pairs (issue 5).

Plain SQL, never edited once released (see :mod:`medalign_desktop.store.schema.v1`). Choices:

- Pairs from verdicts and comparisons are NOT stored: they are derived by :mod:`pairs` from the live rows
  each time, so a withdrawn or corrected verdict can never leave a stale pair behind. Only imported pairs,
  which have no other source, get a table.
- ``comparisons`` keeps both generations in the order shown (Answer 1 / Answer 2) plus whether that order
  was swapped, so a position bias can be measured later. The prompt id is stored (it is implied by the
  generations) because the Compare page lists comparisons per question.
- Safety flags of a comparison live in ``comparison_flags``, like ``feedback_flags``, so the flag filters
  of an export are indexed lookups.
- ``imported_pairs`` keeps the original message lists as JSON so an export reproduces the file it came
  from; ``dedup_hash`` makes a repeated import add nothing.
- ``import_batches.kind`` tells question imports from preference imports (existing rows: questions).
"""

from __future__ import annotations

from medalign_desktop.store.schema.v1 import split_statements

V2_TABLES = """
CREATE TABLE comparisons (
    id INTEGER PRIMARY KEY,
    prompt_id INTEGER NOT NULL REFERENCES prompts(id),
    first_generation_id INTEGER NOT NULL REFERENCES generations(id),
    second_generation_id INTEGER NOT NULL REFERENCES generations(id),
    swapped INTEGER NOT NULL DEFAULT 0 CHECK (swapped IN (0, 1)),
    mode TEXT NOT NULL CHECK (mode IN ('seeds', 'versions')),
    choice TEXT NOT NULL CHECK (choice IN ('first', 'second', 'tie', 'both_bad')),
    edited_text TEXT,
    notes TEXT,
    annotator TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    withdrawn INTEGER NOT NULL DEFAULT 0 CHECK (withdrawn IN (0, 1)),
    withdrawn_by TEXT,
    CHECK (first_generation_id != second_generation_id),
    CHECK (edited_text IS NULL OR choice IN ('first', 'second'))
);

CREATE TABLE comparison_flags (
    comparison_id INTEGER NOT NULL REFERENCES comparisons(id),
    flag TEXT NOT NULL,
    PRIMARY KEY (comparison_id, flag)
) WITHOUT ROWID;

CREATE TABLE imported_pairs (
    id INTEGER PRIMARY KEY,
    prompt TEXT NOT NULL,
    chosen TEXT NOT NULL,
    rejected TEXT NOT NULL,
    chosen_messages_json TEXT NOT NULL,
    rejected_messages_json TEXT NOT NULL,
    import_batch_id INTEGER NOT NULL REFERENCES import_batches(id),
    dedup_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

ALTER TABLE import_batches ADD COLUMN kind TEXT NOT NULL DEFAULT 'questions'
    CHECK (kind IN ('questions', 'pairs'));
"""

V2_INDEXES = """
CREATE INDEX comparisons_prompt ON comparisons(prompt_id, id);
CREATE INDEX comparisons_live ON comparisons(withdrawn, created_at);
CREATE INDEX comparisons_annotator ON comparisons(annotator, created_at);
CREATE INDEX comparisons_first_generation ON comparisons(first_generation_id);
CREATE INDEX comparisons_second_generation ON comparisons(second_generation_id);
CREATE INDEX comparison_flags_flag ON comparison_flags(flag, comparison_id);
CREATE INDEX imported_pairs_created_at ON imported_pairs(created_at);
CREATE INDEX imported_pairs_batch ON imported_pairs(import_batch_id, created_at);
CREATE INDEX import_batches_kind ON import_batches(kind, id);
"""


def v2_statements() -> list[str]:
    """Every statement of the step from schema v1 to v2, in order."""
    return split_statements(V2_TABLES + V2_INDEXES)
