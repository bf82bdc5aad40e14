"""The SQLite connection: file permissions, pragmas and transactions.

Why these settings:

- ``journal_mode=WAL`` lets the History page read while a verdict is being written, and a crashed
  writer never corrupts the file.
- ``synchronous=FULL``: in WAL mode the default (NORMAL) may lose the last commits on a power cut; a
  verdict reported as saved must survive one, so every commit waits for fsync.
- ``foreign_keys=ON``: SQLite leaves them off by default.
- The file is created with mode 0600 because it holds clinical free text; SQLite creates the ``-wal`` and
  ``-shm`` files with the database file's permissions, and we tighten them too in case they pre-exist.
- ``isolation_level=None``: the driver never opens transactions behind our back; :func:`transaction`
  does it explicitly with ``BEGIN IMMEDIATE`` so a writer never fails half-way on a lock upgrade.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.errors import StoreError

FILE_MODE = 0o600
SIDE_FILE_SUFFIXES = ("-wal", "-shm")
BUSY_TIMEOUT_MS = 5000


def utc_now() -> str:
    """ISO-8601 UTC with fixed width, so that timestamps sort and compare correctly as strings."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; return whether it was created.

    Creating it ourselves (rather than letting SQLite do it) is the only way to get the mode right from the
    first byte, whatever the process umask.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    os.chmod(path, FILE_MODE)  # in case the umask removed nothing but the platform ignored the mode
    return True


def tighten_side_files(path: Path) -> None:
    """Give the ``-wal``/``-shm`` files mode 0600 if they exist (best effort: we may not own them)."""
    for suffix in SIDE_FILE_SUFFIXES:
        side = path.with_name(path.name + suffix)
        try:
            if side.exists() and (side.stat().st_mode & 0o777) != FILE_MODE:
                os.chmod(side, FILE_MODE)
        except OSError:
            pass


def connect(path: Path) -> Database:
    """Open (creating if needed) the database file with the house pragmas; StoreError names the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        create_private_file(path)
    except OSError as exc:
        raise StoreError(f"Cannot create the database file {path}: {exc}") from exc
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=5)
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot open the database file {path}: {exc}") from exc
    try:
        _apply_pragmas(conn, path)
        db = Database(conn, execute_plugins=False)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path} is not a MedAlign database or is damaged: {exc}") from exc
    except StoreError:
        conn.close()
        raise
    tighten_side_files(path)
    return db


def _apply_pragmas(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(
            f"Cannot switch {path} to WAL journal mode (got {mode!r}); is it on a network drive?"
        )
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """One atomic unit of work: everything inside is committed together or not at all.

    Nested use becomes a savepoint (through sqlite-utils' ``atomic``), so helpers compose.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    try:
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise


def insert(db: Database, table: str, row: Mapping[str, Any]) -> int:
    """Insert one row and return its id.

    Plain SQL rather than ``Table.insert``: the verdict path is latency-critical and the table names and
    columns here come from our own code, never from input.
    """
    columns = ", ".join(f'"{name}"' for name in row)
    marks = ", ".join("?" for _ in row)
    cursor = db.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', list(row.values()))
    return int(cursor.lastrowid)


def query_one(db: Database, sql: str, params: Any = ()) -> dict[str, Any] | None:
    """First row of a query as a dict, or None."""
    return next(iter(db.query(sql, params)), None)


def query_value(db: Database, sql: str, params: Any = ()) -> Any:
    """First column of the first row, or None."""
    row = db.execute(sql, params).fetchone()
    return row[0] if row else None
