"""Schema versions: fresh creation, migrating an older file (with a backup), refusing a newer one."""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path

import pytest

from medalign_desktop.store import Migration, Store, StoreError, latest_version
from medalign_desktop.store.schema import migrations as migrations_module

# These tests are about steps 1 and 2 and the migration machinery; later steps have their own tests
# (v3: tests/unit/store/test_scores.py), so here the app's list is cut to its first two steps.
MIGRATIONS = migrations_module.MIGRATIONS[:2]

V1_TABLES = {
    "prompts", "generations", "feedback", "feedback_flags", "model_versions", "jobs", "job_metrics",
    "import_batches", "audit_log",
}  # fmt: skip
V2_TABLES = {"comparisons", "comparison_flags", "imported_pairs"}
V1_ONLY = MIGRATIONS[:1]


@pytest.fixture(autouse=True)
def _first_two_steps(monkeypatch):
    monkeypatch.setattr(migrations_module, "MIGRATIONS", list(MIGRATIONS))


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def _add_v3_step(monkeypatch, apply=None) -> list[str]:
    """Register a fake version-3 step (as a later issue would) and record when it runs."""
    calls: list[str] = []

    def add_column(db) -> None:
        calls.append("v3")
        db.execute("ALTER TABLE prompts ADD COLUMN difficulty INTEGER")

    step = Migration(3, "test: prompts.difficulty", apply or add_column)
    monkeypatch.setattr(migrations_module, "MIGRATIONS", [*MIGRATIONS, step])
    return calls


def test_fresh_database_gets_the_latest_schema(store: Store) -> None:
    assert store.schema_version == latest_version() == 2
    assert V1_TABLES | V2_TABLES <= set(store.db.table_names())
    assert store.last_backup is None
    assert list(store.path.parent.glob("*.bak-*")) == []


def test_opening_current_version_writes_no_backup(db_path: Path) -> None:
    Store.open(db_path).close()
    with Store.open(db_path) as again:
        assert again.last_backup is None
    assert list(db_path.parent.glob("*.bak-*")) == []


def test_older_database_is_backed_up_then_migrated(db_path: Path, monkeypatch) -> None:
    with Store.open(db_path) as v2:
        prompt_id = v2.add_prompt("Kept across the migration")
    calls = _add_v3_step(monkeypatch)

    with Store.open(db_path) as v3:
        assert calls == ["v3"]
        assert v3.schema_version == 3
        assert "difficulty" in v3.db["prompts"].columns_dict
        assert v3.get_prompt(prompt_id).text == "Kept across the migration"
        backup = v3.last_backup

    assert backup is not None and backup.parent == db_path.parent
    assert re.fullmatch(re.escape(db_path.name) + r"\.bak-v2-\d{8}T\d{6}Z", backup.name)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert _version(backup) == 2
    conn = sqlite3.connect(backup)
    assert conn.execute("SELECT text FROM prompts").fetchall() == [("Kept across the migration",)]
    assert "difficulty" not in [r[1] for r in conn.execute("PRAGMA table_info(prompts)")]
    conn.close()

    with Store.open(db_path):  # already at v3: nothing runs again
        assert calls == ["v3"]


def test_failed_migration_leaves_the_file_unchanged(db_path: Path, monkeypatch) -> None:
    with Store.open(db_path) as v1:
        v1.add_prompt("Still here")

    def half_done(db) -> None:
        db.execute("ALTER TABLE prompts ADD COLUMN difficulty INTEGER")
        db.execute("THIS IS NOT SQL")

    _add_v3_step(monkeypatch, apply=half_done)
    with pytest.raises(StoreError) as info:
        Store.open(db_path)
    message = str(info.value)
    assert str(db_path) in message and "version 2 to 3" in message and "test: prompts.difficulty" in message
    assert _version(db_path) == 2
    assert len(list(db_path.parent.glob("*.bak-v2-*"))) == 1
    monkeypatch.setattr(migrations_module, "MIGRATIONS", list(MIGRATIONS))
    with Store.open(db_path) as v2_again:
        assert "difficulty" not in v2_again.db["prompts"].columns_dict
        assert v2_again.get_prompt(1).text == "Still here"


def test_v1_database_migrates_to_v2_with_a_backup(db_path: Path, monkeypatch) -> None:
    """A workspace written before issue 5 gains comparisons and imported pairs; its verdicts give pairs."""
    monkeypatch.setattr(migrations_module, "MIGRATIONS", list(V1_ONLY))
    with Store.open(db_path) as v1:
        assert v1.schema_version == 1 and not V2_TABLES & set(v1.db.table_names())
        prompt_id = v1.add_prompt("Dose of IM adrenaline?")
        generation = v1.add_generation(prompt_id, "1 mg.", model_version="base", settings={})
        feedback_id = v1.record_verdict(generation, "edit", annotator="dr a", edited_text="0.5 mg.")
        v1.db.execute(
            "INSERT INTO import_batches (source_path, sha256, format, created_at) VALUES ('q.jsonl', '0', 'jsonl', 't')"
        )
    monkeypatch.setattr(migrations_module, "MIGRATIONS", list(MIGRATIONS))

    with Store.open(db_path) as v2:
        assert v2.schema_version == 2
        assert V2_TABLES <= set(v2.db.table_names())
        backup = v2.last_backup
        assert [(b.kind, b.source_path) for b in v2.import_batches()] == [("questions", "q.jsonl")]
        [pair] = v2.preference_pairs()
        assert (pair.key, pair.chosen, pair.rejected) == (f"edit-{feedback_id}", "0.5 mg.", "1 mg.")
        second = v2.add_generation(prompt_id, "2 mg.", settings={})
        assert v2.record_comparison(generation, second, "first", annotator="a", swapped=False, mode="seeds")
    assert backup is not None and re.fullmatch(
        re.escape(db_path.name) + r"\.bak-v1-\d{8}T\d{6}Z", backup.name
    )
    assert _version(backup) == 1
    conn = sqlite3.connect(backup)
    assert "comparisons" not in [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    conn.close()


def test_newer_database_is_refused_untouched(db_path: Path) -> None:
    Store.open(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    before = db_path.read_bytes()

    with pytest.raises(StoreError) as info:
        Store.open(db_path)
    message = str(info.value)
    assert str(db_path) in message
    assert "schema version 7" in message and "up to 2" in message
    assert db_path.read_bytes() == before
    assert list(db_path.parent.glob("*.bak-*")) == []


def test_backup_names_never_collide(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    path = tmp_path / "db.sqlite"
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    first = migrations_module.backup_path_for(path, 3, moment)
    assert first.name == "db.sqlite.bak-v3-20260304T050607Z"
    first.write_text("taken")
    assert migrations_module.backup_path_for(path, 3, moment).name == "db.sqlite.bak-v3-20260304T050607Z-2"


def test_migration_list_must_be_in_order(db_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        migrations_module, "MIGRATIONS", [*MIGRATIONS, Migration(5, "skips", lambda db: None)]
    )
    with pytest.raises(StoreError, match="out of order"):
        Store.open(db_path)


def test_audit_log_is_append_only(store: Store, make_generation) -> None:
    feedback_id = store.record_verdict(make_generation(), "accept", annotator="dr a")
    with pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE"):
        store.db.execute("UPDATE audit_log SET annotator = 'mallory' WHERE feedback_id = ?", [feedback_id])
    with pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE"):
        store.db.execute("DELETE FROM audit_log")
    assert [e.annotator for e in store.audit_trail(feedback_id)] == ["dr a"]


def test_verdicts_cannot_be_deleted_while_audited(store: Store, make_generation) -> None:
    feedback_id = store.record_verdict(make_generation(), "accept", annotator="dr a")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        store.db.execute("DELETE FROM feedback WHERE id = ?", [feedback_id])
