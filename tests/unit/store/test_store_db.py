"""The database file itself: permissions, pragmas, opening and closing, bad files."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from medalign_desktop.store import Store, StoreError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_database_and_side_files_are_private(store: Store, make_generation) -> None:
    make_generation()  # a write, so the -wal and -shm files certainly exist
    assert _mode(store.path) == 0o600
    for suffix in ("-wal", "-shm"):
        side = store.path.with_name(store.path.name + suffix)
        assert side.exists()
        assert _mode(side) == 0o600


def test_creates_missing_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "db.sqlite"
    with Store.open(path) as store:
        assert store.path == path
    assert path.is_file()


def test_pragmas(store: Store) -> None:
    conn = store.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        store.db.execute(
            "INSERT INTO generations (prompt_id, text, created_at) VALUES (999, 'x', '2026-01-01T00:00:00Z')"
        )


def test_usable_from_another_thread(store: Store) -> None:
    """The app's store executor thread owns the connection after the GUI thread opened it."""
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(store.add_prompt("Asked from a worker thread")))
    worker.start()
    worker.join()
    assert store.get_prompt(result[0]).text == "Asked from a worker thread"


def test_closed_store_refuses_with_file_name(db_path: Path) -> None:
    store = Store.open(db_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed") as info:
        store.add_prompt("too late")
    assert str(db_path) in str(info.value)


def test_reopen_keeps_data(db_path: Path) -> None:
    with Store.open(db_path) as store:
        prompt_id = store.add_prompt("Persisted?")
    with Store.open(db_path) as store:
        assert store.get_prompt(prompt_id).text == "Persisted?"


def test_not_a_database_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"this is a text file, not SQLite" * 100)
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert str(path) in str(info.value)
    assert "not a MedAlign database" in str(info.value)


def test_foreign_sqlite_database_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a MedAlign one") as info:
        Store.open(path)
    assert str(path) in str(info.value)
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["recipes"]
    conn.close()


def test_unwritable_location_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "db.sqlite"  # a "folder" that is a file
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert str(path) in str(info.value)


def test_sqlite_errors_become_store_errors_naming_the_file(store: Store, monkeypatch) -> None:
    from medalign_desktop.store import prompts

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(prompts, "get_prompt", broken)
    with pytest.raises(StoreError, match="disk I/O error") as info:
        store.get_prompt(1)
    assert str(store.path) in str(info.value)


def test_in_memory_is_refused() -> None:
    with pytest.raises(StoreError, match="needs a database file path"):
        Store.open(":memory:")


def test_two_stores_on_one_file(db_path: Path) -> None:
    """The app and a CLI import may have the same workspace open: WAL lets each see the other's commits."""
    with Store.open(db_path) as app, Store.open(db_path) as cli:
        prompt_id = cli.add_prompt("Imported by the CLI")
        assert app.get_prompt(prompt_id).text == "Imported by the CLI"
        gen = app.add_generation(prompt_id, "answer", settings={})
        app.record_verdict(gen, "accept", annotator="dr a")
        assert cli.stats()["accept"] == 1
