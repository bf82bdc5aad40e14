"""Schema version 1: the full first schema, as plain SQL.

Plain SQL on purpose: a migration must produce the same tables forever, whatever library versions run it.
Later issues never edit this text; they append a step in :mod:`medalign_desktop.store.schema.migrations`.

Notes on choices:

- Timestamps are ISO-8601 UTC strings of fixed width (``2026-11-24T18:25:00.000000Z``): they sort as text.
- JSON columns end in ``_json``.
- Reject reasons and safety flags are checked in Python (:mod:`vocab`) rather than by ``CHECK``, so a
  later issue can extend the lists without rebuilding tables; verdicts, splits and job states are core
  and are checked here too.
- Safety flags are a child table (``feedback_flags``) so the History filter is an indexed lookup.
- History search uses FTS5 with the trigram tokenizer (substring, case-insensitive, any script) over the
  question, the original answer and the edited answer, as external-content indexes kept by triggers.
- ``audit_log`` is append-only: triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

V1_TABLES = """
CREATE TABLE import_batches (
    id INTEGER PRIMARY KEY,
    source_path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    format TEXT NOT NULL,
    n_records INTEGER NOT NULL DEFAULT 0,
    n_imported INTEGER NOT NULL DEFAULT 0,
    n_duplicates INTEGER NOT NULL DEFAULT 0,
    n_errors INTEGER NOT NULL DEFAULT 0,
    n_skipped_empty INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE prompts (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    reference_answer TEXT,
    answer_key TEXT,
    options_json TEXT,
    source TEXT NOT NULL DEFAULT 'typed',
    external_id TEXT,
    split TEXT NOT NULL DEFAULT 'train' CHECK (split IN ('train', 'held_out')),
    import_batch_id INTEGER REFERENCES import_batches(id),
    dedup_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    config_json TEXT NOT NULL DEFAULT '{}',
    job_dir TEXT,
    data_size INTEGER,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);

CREATE TABLE job_metrics (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    step INTEGER,
    name TEXT NOT NULL,
    value REAL,
    time TEXT NOT NULL
);

CREATE TABLE model_versions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    parent_id INTEGER REFERENCES model_versions(id),
    job_id INTEGER REFERENCES jobs(id),
    base_model TEXT,
    adapter_path TEXT,
    data_size INTEGER,
    metrics_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 0 CHECK (is_active IN (0, 1))
);

CREATE TABLE generations (
    id INTEGER PRIMARY KEY,
    prompt_id INTEGER NOT NULL REFERENCES prompts(id),
    model_version_id INTEGER REFERENCES model_versions(id),
    model_version_name TEXT,
    text TEXT NOT NULL,
    settings_json TEXT NOT NULL DEFAULT '{}',
    time_to_first_token_s REAL,
    tokens_per_s REAL,
    n_tokens INTEGER,
    finish_reason TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    generation_id INTEGER NOT NULL REFERENCES generations(id),
    verdict TEXT NOT NULL CHECK (verdict IN ('accept', 'edit', 'reject')),
    edited_text TEXT,
    reject_reason TEXT,
    reject_note TEXT,
    rating INTEGER CHECK (rating IS NULL OR rating BETWEEN 1 AND 5),
    notes TEXT,
    annotator TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    withdrawn INTEGER NOT NULL DEFAULT 0 CHECK (withdrawn IN (0, 1)),
    CHECK ((verdict = 'edit') = (edited_text IS NOT NULL)),
    CHECK ((verdict = 'reject') = (reject_reason IS NOT NULL))
);

CREATE TABLE feedback_flags (
    feedback_id INTEGER NOT NULL REFERENCES feedback(id),
    flag TEXT NOT NULL,
    PRIMARY KEY (feedback_id, flag)
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    feedback_id INTEGER NOT NULL REFERENCES feedback(id),
    action TEXT NOT NULL CHECK (action IN ('create', 'change', 'withdraw', 'undo')),
    old_json TEXT,
    new_json TEXT,
    annotator TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

V1_INDEXES = """
CREATE INDEX prompts_split ON prompts(split, id);
CREATE INDEX prompts_import_batch ON prompts(import_batch_id);
CREATE INDEX generations_prompt ON generations(prompt_id);
CREATE INDEX generations_model_version_name ON generations(model_version_name);
CREATE INDEX feedback_generation ON feedback(generation_id, withdrawn);
CREATE INDEX feedback_annotator ON feedback(annotator, id);
CREATE INDEX feedback_verdict ON feedback(verdict, id);
CREATE INDEX feedback_created_at ON feedback(created_at);
CREATE INDEX feedback_live_verdict ON feedback(withdrawn, verdict, created_at);
CREATE INDEX feedback_flags_flag ON feedback_flags(flag, feedback_id);
CREATE INDEX audit_log_feedback ON audit_log(feedback_id, id);
CREATE INDEX job_metrics_job ON job_metrics(job_id, name, step);
CREATE INDEX jobs_kind_state ON jobs(kind, state, finished_at);
CREATE UNIQUE INDEX model_versions_one_active ON model_versions(is_active) WHERE is_active = 1;
"""

V1_AUDIT_GUARDS = """
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is not allowed');
END;
"""

# (fts table, content table, column): one external-content trigram index per searchable text column.
V1_SEARCH_INDEXES: tuple[tuple[str, str, str], ...] = (
    ("prompts_fts", "prompts", "text"),
    ("generations_fts", "generations", "text"),
    ("feedback_fts", "feedback", "edited_text"),
)


def fts_sql(fts: str, table: str, column: str) -> str:
    """An external-content FTS5 index of ``table.column`` kept in step by triggers (no text copied)."""
    return f"""
CREATE VIRTUAL TABLE {fts} USING fts5(
    {column}, content='{table}', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} WHEN new.{column} IS NOT NULL
BEGIN
    INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});
END;
CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} WHEN old.{column} IS NOT NULL
BEGIN
    INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});
END;
CREATE TRIGGER {fts}_au_old AFTER UPDATE OF {column} ON {table} WHEN old.{column} IS NOT NULL
BEGIN
    INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});
END;
CREATE TRIGGER {fts}_au_new AFTER UPDATE OF {column} ON {table} WHEN new.{column} IS NOT NULL
BEGIN
    INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});
END;
"""


def v1_statements() -> list[str]:
    """Every statement of schema v1, in order, one string each (so they can run inside a transaction)."""
    script = V1_TABLES + V1_INDEXES + V1_AUDIT_GUARDS
    script += "".join(fts_sql(*spec) for spec in V1_SEARCH_INDEXES)
    return split_statements(script)


def split_statements(script: str) -> list[str]:
    """Split a script at statement boundaries, keeping trigger bodies whole (uses sqlite3.complete_statement)."""
    import sqlite3

    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement at the end of the schema: {buffer.strip()[:80]}")
    return statements
