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
- A locked database (another window or an import is writing) is retried with backoff for
  :data:`LOCK_WAIT_S` in all before :class:`StoreBusyError`; only taking the lock and committing are retried.
- The schema version is read before anything is changed: a newer-schema or foreign SQLite file is refused
  before it is switched to WAL, so it is left byte for byte as it was.
- An existing database, its side files and its folder are tightened to 0600 / 0700 when we own them;
  :func:`tighten_database_files` returns what it changed (``Store.tightened``), for a one-time notice.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.errors import StoreError, StoreValidationError

FILE_MODE, DIR_MODE = 0o600, 0o700
SIDE_FILE_SUFFIXES = ("-wal", "-shm")
BUSY_TIMEOUT_MS = 5000  # SQLite's own wait per attempt (and for reads)
LOCK_WAIT_S = 30.0  # how long a write waits in all for another writer's lock before giving up
_BACKOFF_S = (0.05, 1.0)  # first and largest pause between attempts (with jitter)


class StoreBusyError(StoreError):
    """Another connection held the write lock for longer than the lock wait; nothing was written."""


class _Connection(sqlite3.Connection):
    """A connection that knows how long its writes may wait for the lock (``connect(lock_wait_s=...)``)."""

    lock_wait_s: float = LOCK_WAIT_S


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


def _tighten(path: Path, mode: int) -> bool:
    """chmod ``path`` to ``mode`` if it is ours and more open; True when it changed (best effort)."""
    try:
        info = os.stat(path, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or not stat.S_IMODE(info.st_mode) & 0o077:
            return False
        os.chmod(path, mode)
        return True
    except OSError:
        return False


def _folder_may_be_tightened(folder: Path) -> bool:
    """Not the home folder and not a shared sticky folder (/tmp): those are the user's, not ours."""
    try:
        if folder.resolve() in (Path.home().resolve(), Path(folder.anchor)):
            return False
        return not folder.stat().st_mode & stat.S_ISVTX
    except (OSError, RuntimeError):
        return False


def tighten_side_files(path: Path) -> tuple[Path, ...]:
    """Give the ``-wal``/``-shm`` files mode 0600 if they exist and are ours; returns those changed."""
    sides = (path.with_name(path.name + suffix) for suffix in SIDE_FILE_SUFFIXES)
    return tuple(side for side in sides if _tighten(side, FILE_MODE))


def tighten_database_files(path: Path) -> tuple[Path, ...]:
    """Tighten an existing database to 0600, its side files too, and its folder to 0700 (when ours and
    not the home folder); returns the paths whose mode changed, for a one-time notice."""
    changed = [path] if _tighten(path, FILE_MODE) else []
    changed += tighten_side_files(path)
    if _folder_may_be_tightened(path.parent) and _tighten(path.parent, DIR_MODE):
        changed.append(path.parent)
    return tuple(changed)


def make_private_dirs(folder: Path) -> None:
    """``mkdir -p`` where every folder created gets mode 0700, whatever the umask."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(created, DIR_MODE)


def _uri(path: Path) -> str:
    from urllib.parse import quote

    return f"file:{quote(str(path))}?mode=rw"


def connect(
    path: Path,
    *,
    create: bool = True,
    latest_version: int | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
) -> tuple[Database, tuple[Path, ...]]:
    """Open the database file with the house pragmas; returns it and the paths whose mode was tightened.

    ``create=False``: a missing file is refused (StoreError "No database at ..."), nothing is created.
    ``latest_version``: the newest schema this app understands; a newer or foreign (non-MedAlign) SQLite
    file is refused before anything is changed (no WAL switch, no side files, no chmod).
    """
    existed = path.exists()
    if not existed and not create:
        raise StoreError(f"No database at {path}")
    try:
        make_private_dirs(path.parent)
        create_private_file(path)
    except OSError as exc:
        raise StoreError(f"Cannot create the database file {path}: {exc}") from exc
    try:
        conn = sqlite3.connect(
            _uri(path), uri=True, check_same_thread=False, isolation_level=None,
            timeout=min(BUSY_TIMEOUT_MS / 1000, lock_wait_s), factory=_Connection,
        )  # fmt: skip
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot open the database file {path}: {exc}") from exc
    assert isinstance(conn, _Connection)
    conn.lock_wait_s = lock_wait_s
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(min(BUSY_TIMEOUT_MS, lock_wait_s * 1000))}")
        if latest_version is not None:
            check_schema(conn, path, latest_version)
        tightened = tighten_database_files(path) if existed else ()
        _apply_pragmas(conn, path)
        db = Database(conn, execute_plugins=False)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path} is not a MedAlign database or is damaged: {exc}") from exc
    except StoreError:
        conn.close()
        raise
    return db, tightened + tighten_side_files(path)


def check_schema(conn: sqlite3.Connection, path: Path, latest_version: int) -> None:
    """Refuse, reading only, a file of a newer schema or somebody else's SQLite file (version 0 with tables)."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > latest_version:
        raise StoreError(
            f"{path} was written by a newer version of MedAlign Desktop (schema version {found}); "
            f"this version understands schema versions up to {latest_version}. Update the application to open it."
        )
    if found == 0:
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )]  # fmt: skip
        if tables:
            raise StoreError(
                f"{path} is a SQLite database but not a MedAlign one (it has tables {', '.join(tables[:5])} "
                "and no schema version); refusing to change it."
            )


def _apply_pragmas(conn: sqlite3.Connection, path: Path) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(
            f"Cannot switch {path} to WAL journal mode (got {mode!r}); is it on a network drive?"
        )
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _retry_locked(conn: sqlite3.Connection, sql: str) -> None:
    """Run BEGIN IMMEDIATE / COMMIT, retrying while another connection holds the lock, up to the wait."""
    limit = getattr(conn, "lock_wait_s", LOCK_WAIT_S)
    started, pause = time.monotonic(), _BACKOFF_S[0]
    while True:
        try:
            conn.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            waited = time.monotonic() - started
            if not _is_busy(exc):
                raise
            if waited >= limit:
                raise StoreBusyError(
                    f"The database is busy (another MedAlign window or import is writing); tried for "
                    f"{limit:g} s. Nothing was saved by this attempt; try again. ({exc})"
                ) from exc
        time.sleep(min(pause * random.uniform(0.5, 1.0), max(0.0, limit - waited)))
        pause = min(pause * 2, _BACKOFF_S[1])


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """One atomic unit of work: everything inside is committed together or not at all.

    Nested use becomes a savepoint (through sqlite-utils' ``atomic``), so helpers compose. Taking the write
    lock and committing wait for another writer up to the connection's lock wait (StoreBusyError after).
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    _retry_locked(db.conn, "BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:  # the body's own errors are never retried
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    try:
        _retry_locked(db.conn, "COMMIT")
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


# What a row of each table is called in "no ... with id N" messages.
ROW_NOUNS = {
    "prompts": "prompt", "generations": "generation", "feedback": "verdict", "comparisons": "comparison",
    "model_versions": "model version", "jobs": "job", "import_batches": "import batch",
}  # fmt: skip


def require_row(db: Database, table: str, row_id: Any, field: str, columns: str = "*") -> dict[str, Any]:
    """The ``columns`` of ``table``'s row ``row_id``; StoreValidationError(field, "no <noun> with id N") if none."""
    row = query_one(db, f"SELECT {columns} FROM {table} WHERE id = ?", [row_id])
    if row is None:
        raise StoreValidationError(field, f"no {ROW_NOUNS[table]} with id {row_id}")
    return row
