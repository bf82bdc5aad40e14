"""Schema version 3: reward-model scores of answers (issue 6).

Plain SQL, never edited once released (see :mod:`medalign_desktop.store.schema.v1`). Choices:

- One score per (answer, reward model version): scoring the same answer again with the same reward model
  replaces the score (an upsert), and a different reward model keeps its own column of scores.
- Deleting a reward model version deletes its scores (``ON DELETE CASCADE``): a score means nothing
  without the model that gave it. Answers are never deleted, so the generation reference needs no action.
- The index on ``model_version_id`` serves "which answers has this reward model not scored yet".
"""

from __future__ import annotations

from medalign_desktop.store.schema.v1 import split_statements

V3_TABLES = """
CREATE TABLE answer_scores (
    generation_id INTEGER NOT NULL REFERENCES generations(id),
    model_version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    score REAL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (generation_id, model_version_id)
) WITHOUT ROWID;
"""

V3_INDEXES = """
CREATE INDEX answer_scores_version ON answer_scores(model_version_id, generation_id);
"""


def v3_statements() -> list[str]:
    """Every statement of the step from schema v2 to v3, in order."""
    return split_statements(V3_TABLES + V3_INDEXES)
