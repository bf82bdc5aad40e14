"""Schema version 4: evaluation of model versions and blind side-by-side review (issue 7).

Plain SQL, never edited once released (see :mod:`medalign_desktop.store.schema.v1`). Choices:

- Evaluation answers are NOT a table of their own: they are ordinary ``generations`` rows whose settings
  say ``"evaluation": true`` (with the fixed greedy settings), so a blind review is an ordinary comparison
  (mode 'versions') and gives preference pairs by the existing rules.
- ``evaluation_results`` keeps one row per (evaluation job, version): the metrics the evaluation program
  computed and the settings it used, as JSON. Re-running an evaluation adds rows; readers take the newest.
  ``job_id`` may be NULL for results that did not come from a job of this workspace.
- ``review_flags`` holds the safety flags a reviewer put on ONE of the two answers of a blind review, so a
  flag rate per version can be counted. The comparison's own ``comparison_flags`` also get every flag, so
  the export's flag filters keep working for pairs from reviews.
"""

from __future__ import annotations

from medalign_desktop.store.schema.v1 import split_statements

V4_TABLES = """
CREATE TABLE evaluation_results (
    id INTEGER PRIMARY KEY,
    job_id INTEGER REFERENCES jobs(id),
    version_name TEXT NOT NULL,
    metrics_json TEXT NOT NULL DEFAULT '{}',
    settings_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);

CREATE TABLE review_flags (
    comparison_id INTEGER NOT NULL REFERENCES comparisons(id),
    generation_id INTEGER NOT NULL REFERENCES generations(id),
    flag TEXT NOT NULL,
    PRIMARY KEY (comparison_id, generation_id, flag)
) WITHOUT ROWID;
"""

V4_INDEXES = """
CREATE INDEX evaluation_results_version ON evaluation_results(version_name, id);
CREATE INDEX evaluation_results_job ON evaluation_results(job_id);
CREATE INDEX review_flags_generation ON review_flags(generation_id, flag);
CREATE INDEX generations_version_prompt ON generations(model_version_name, prompt_id);
"""


def v4_statements() -> list[str]:
    """Every statement of the step from schema v3 to v4, in order."""
    return split_statements(V4_TABLES + V4_INDEXES)
