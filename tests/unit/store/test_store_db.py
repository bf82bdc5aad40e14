"""The database file itself: permissions, pragmas, opening and closing, bad files."""

from __future__ import annotations

import sqlite3
import stat
import threading
import time
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


# -- private files on open (issue 19) -------------------------------------------------------------------


def test_an_existing_open_database_is_tightened_and_reported(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.add_prompt("written, so the side files exist")
        assert store.tightened == ()  # created private: nothing to tighten
    for suffix in ("", "-wal", "-shm"):
        side = db_path.with_name(db_path.name + suffix)
        if side.exists():
            side.chmod(0o644)
    db_path.parent.chmod(0o755)
    with Store.open(db_path) as store:
        assert db_path in store.tightened and db_path.parent in store.tightened
        assert _mode(db_path) == 0o600 and _mode(db_path.parent) == 0o700
        for suffix in ("-wal", "-shm"):
            assert _mode(db_path.with_name(db_path.name + suffix)) == 0o600
    with Store.open(db_path) as store:
        assert store.tightened == ()  # said once


def test_new_parent_folders_are_private(tmp_path: Path, monkeypatch) -> None:
    import os

    previous = os.umask(0o022)
    try:
        with Store.open(tmp_path / "a" / "b" / "db.sqlite"):
            pass
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "a") == 0o700 and _mode(tmp_path / "a" / "b") == 0o700


def test_create_false_refuses_a_missing_file_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "db.sqlite"
    with pytest.raises(StoreError, match="No database at"):
        Store.open(path, create=False)
    assert not path.parent.exists()


def _rollback_journal_database(path: Path, *, user_version: int, tables: bool = True) -> bytes:
    conn = sqlite3.connect(path)
    if tables:
        conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO things (name) VALUES ('kept as it was')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    "user_version, message", [(999, "newer version of MedAlign"), (0, "not a MedAlign one")]
)
def test_newer_or_foreign_database_is_refused_before_anything_changes(tmp_path, user_version, message):
    path = tmp_path / "other.sqlite"
    before = _rollback_journal_database(path, user_version=user_version)
    path.chmod(0o644)
    with pytest.raises(StoreError, match=message):
        Store.open(path)
    assert path.read_bytes() == before
    assert _mode(path) == 0o644  # not ours to change either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]  # no -wal, -shm, backup
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


# -- a write waits for another writer's lock (issue 19) -----------------------------------------------


def _hold_write_lock(path: Path, seconds: float, started: threading.Event) -> threading.Thread:
    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO prompts (text, dedup_hash, created_at) VALUES ('held', 'held', 'x')")
        started.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert started.wait(10)
    return thread


@pytest.mark.slow
def test_a_six_second_write_lock_does_not_fail_a_verdict(store: Store, make_generation) -> None:
    generation_id = make_generation()
    holder = _hold_write_lock(store.path, 6.0, threading.Event())
    began = time.monotonic()
    feedback_id = store.record_verdict(generation_id, "accept", annotator="dr a")
    waited = time.monotonic() - began
    holder.join()
    assert waited > 5.0  # it really waited past SQLite's 5 s busy timeout
    assert feedback_id > 0 and store.stats()["accept"] == 1


def test_a_lock_held_past_the_wait_gives_a_clear_busy_error(db_path: Path) -> None:
    from medalign_desktop.store.db import StoreBusyError

    with Store.open(db_path, lock_wait_s=0.6) as store:
        holder = _hold_write_lock(db_path, 2.0, threading.Event())
        began = time.monotonic()
        with pytest.raises(StoreBusyError, match=r"The database is busy \(another MedAlign window or "
                           r"import is writing\); tried for 0.6 s"):  # fmt: skip
            store.add_prompt("blocked")
        assert 0.6 <= time.monotonic() - began < 1.9
        holder.join()
        assert store.add_prompt("after the lock") > 0  # and the connection works afterwards


def test_a_raise_inside_the_transaction_is_not_retried(store: Store) -> None:
    from medalign_desktop.store.db import transaction

    calls = []
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        with transaction(store.db):
            calls.append(1)
            raise sqlite3.OperationalError("database is locked")
    assert calls == [1]
    assert not store.db.conn.in_transaction


def test_data_version_changes_when_another_connection_commits(store: Store) -> None:
    before = store.data_version()
    store.add_prompt("Own write: what is the normal range of serum sodium?")
    assert store.data_version() == before  # this connection's own commit does not count
    with Store.open(store.path) as other:
        other.add_prompt("Another connection's write: what is a normal adult heart rate?")
    assert store.data_version() != before
