"""The staged write shared by the question and the preference-pair import: never a long write lock.

A verdict saved from another connection while a file is imported must never wait long (let alone fail
with "database is locked"), and a cancelled or crashed import must never leave half a file visible. So
an import writes in three steps, each transaction short (at most ``CHUNK`` rows, tens of milliseconds):

1. **stage**: the batch row is created in state 'staging' (listed nowhere), then the validated rows go
   into ``import_staging``, ``CHUNK`` per transaction. Nothing reads that table, so no question
   or pair is visible yet. A cancel here deletes the staged rows and the batch row: nothing was written.
2. **commit point**: one statement turns the batch to 'publishing'. From here on the import is decided
   (a cancel is no longer honoured; what is left takes seconds).
3. **publish**: chunk by chunk, ``INSERT … SELECT`` from the staging rows into the target table (skipping
   content already stored) and delete those staging rows, in the same transaction, so each row moves
   exactly once even if two processes publish the same batch. Finally the batch is 'done' (or deleted
   when every row was already present, so a repeated import leaves no trace).

Guarantees and recovery (:func:`recover`, run at the start of every import; call it on open too):

- a process killed while staging leaves only staging rows and a 'staging' batch, invisible; they are
  deleted by the next import (or open) once their owner (``host:pid``) is gone, or after ``STALE_AFTER``
  without progress for an owner on another host;
- a process killed while publishing leaves a 'publishing' batch whose remaining rows are published by
  the next import (or open): rolled forward, because the user asked for the import and part of it may
  already be in use. Questions of such a batch may be visible partly until then.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.db import insert, transaction

CHUNK = 2000
STALE_AFTER = timedelta(hours=1)
MAX_PAUSE = 0.1  # seconds

# batch kind -> (target table, its columns filled from a staged row; import_batch_id is added)
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "questions": (
        "prompts",
        ("text", "reference_answer", "answer_key", "options_json", "source", "external_id", "split",
         "dedup_hash", "created_at"),
    ),
    "pairs": (
        "imported_pairs",
        ("prompt", "chosen", "rejected", "chosen_messages_json", "rejected_messages_json", "dedup_hash",
         "created_at"),
    ),
}  # fmt: skip


class StagingCancelled(Exception):
    """The import was cancelled while staging; nothing was kept."""


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stage(
    db: Database,
    kind: str,
    batch: dict[str, Any],
    rows: list[dict[str, Any]],
    cancelled: Callable[[], bool],
) -> int:
    """Create the batch row ('staging') and stage ``rows`` in short transactions; return the batch id.

    ``cancelled()`` is checked between chunks; when it returns True everything staged is removed and
    StagingCancelled is raised. Any other failure removes what was staged too, as far as it can.
    """
    columns = TARGETS[kind][1]
    slots = ", ".join(f"c{i}" for i in range(len(columns)))
    marks = ", ".join("?" for _ in range(len(columns) + 2))
    insert_sql = f"INSERT INTO import_staging (batch_id, seq, {slots}) VALUES ({marks})"
    with transaction(db):
        batch_id = insert(
            db, "import_batches",
            {**batch, "kind": kind, "state": "staging", "owner": owner_tag(), "touched_at": _now()},
        )  # fmt: skip
    try:
        for start in range(0, len(rows), CHUNK):
            if cancelled():
                raise StagingCancelled
            chunk = rows[start : start + CHUNK]
            values = [
                (batch_id, start + offset, *(row[name] for name in columns))
                for offset, row in enumerate(chunk)
            ]
            began = time.perf_counter()
            with transaction(db):
                db.conn.executemany(insert_sql, values)
                db.execute("UPDATE import_batches SET touched_at = ? WHERE id = ?", [_now(), batch_id])
            pause(db, began)
        if cancelled():
            raise StagingCancelled
    except BaseException:
        discard(db, batch_id)
        raise
    return batch_id


def pause(db: Database, held_since: float) -> None:
    """Between two chunks: checkpoint, then leave the write lock free as long as the chunk held it.

    SQLite gives a waiting writer no turn: its busy handler sleeps and retries, and an importer that
    begins the next chunk at once would keep winning. Leaving the lock free at least half the time (capped
    at ``MAX_PAUSE``) lets a verdict in within a chunk or two. The checkpoint copies the WAL into the
    database here, without the write lock; otherwise SQLite's automatic checkpoint runs in whichever
    connection commits next, often a clinician's verdict, which would then pay for megabytes of import.
    """
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    held = time.perf_counter() - held_since
    time.sleep(min(MAX_PAUSE, max(held, 0.001)))


def discard(db: Database, batch_id: int) -> None:
    """Delete a batch that never reached 'publishing' and its staging rows, chunk by chunk."""
    while True:
        with transaction(db):
            deleted = db.execute(
                "DELETE FROM import_staging WHERE batch_id = ? AND seq IN "
                "(SELECT seq FROM import_staging WHERE batch_id = ? ORDER BY seq LIMIT ?)",
                [batch_id, batch_id, CHUNK],
            ).rowcount
            if deleted == 0:
                db.execute("DELETE FROM import_batches WHERE id = ? AND state = 'staging'", [batch_id])
                return


def publish(db: Database, batch_id: int) -> int | None:
    """Commit the import and move its rows into the target table; return how many were new.

    Returns None when the batch is not (or no longer) there. Idempotent and safe to run from two
    processes at once: each chunk is moved and its staging rows deleted in one transaction.
    """
    with transaction(db):
        db.execute(
            "UPDATE import_batches SET state = 'publishing', touched_at = ? WHERE id = ? AND state = 'staging'",
            [_now(), batch_id],
        )
    found = db.execute("SELECT kind, state FROM import_batches WHERE id = ?", [batch_id]).fetchone()
    if found is None:
        return None
    kind, state = found
    if state == "publishing":
        _move_all(db, kind, batch_id)
    row = db.execute("SELECT n_imported FROM import_batches WHERE id = ?", [batch_id]).fetchone()
    return int(row[0]) if row else 0


def _move_all(db: Database, kind: str, batch_id: int) -> None:
    table, columns = TARGETS[kind]
    picks = ", ".join(f"c{i}" for i in range(len(columns)))
    move = (
        f"INSERT INTO {table} ({', '.join(columns)}, import_batch_id) "
        f"SELECT {picks}, batch_id FROM import_staging WHERE batch_id = ? AND seq >= ? AND seq < ? "
        "ORDER BY seq ON CONFLICT (dedup_hash) DO NOTHING"
    )
    while True:
        began = time.perf_counter()
        with transaction(db):
            low = db.execute("SELECT min(seq) FROM import_staging WHERE batch_id = ?", [batch_id]).fetchone()[
                0
            ]
            if low is None:
                _finish(db, batch_id)
                return
            added = db.execute(move, [batch_id, low, low + CHUNK]).rowcount
            db.execute(
                "DELETE FROM import_staging WHERE batch_id = ? AND seq >= ? AND seq < ?",
                [batch_id, low, low + CHUNK],
            )
            db.execute(
                "UPDATE import_batches SET n_imported = n_imported + ?, touched_at = ? WHERE id = ?",
                [max(added, 0), _now(), batch_id],
            )
        pause(db, began)


def _finish(db: Database, batch_id: int) -> None:
    """Inside the last publish transaction: 'done', or no batch at all when nothing was new."""
    db.execute(
        "UPDATE import_batches SET state = 'done', n_duplicates = n_records - n_errors - n_imported "
        "WHERE id = ? AND state = 'publishing'",
        [batch_id],
    )
    db.execute("DELETE FROM import_batches WHERE id = ? AND n_imported = 0", [batch_id])


def _is_stale(owner: str | None, touched_at: str | None, now: datetime) -> bool:
    host, _, pid = (owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False  # alive, owned by someone else
        return False
    try:
        touched = datetime.strptime(touched_at or "", "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return True
    return now - touched > STALE_AFTER


def recover(db: Database) -> list[int]:
    """Finish what killed imports left: publish 'publishing' batches, discard stale 'staging' ones.

    Returns the ids of the batches that were published or discarded. Cheap when there is nothing to do
    (one indexed query), so it can run on every open and before every import. A database held at an
    older schema (only tests pin one) has no staging and nothing to recover.
    """
    if "state" not in db["import_batches"].columns_dict:
        return []
    pending: Iterable[tuple[int, str, str | None, str | None]] = db.execute(
        "SELECT id, state, owner, touched_at FROM import_batches WHERE state != 'done' ORDER BY id"
    ).fetchall()
    now, handled = datetime.now(UTC), []
    for batch_id, state, owner, touched_at in pending:
        if state == "publishing":
            publish(db, batch_id)
            handled.append(batch_id)
        elif _is_stale(owner, touched_at, now):
            discard(db, batch_id)
            handled.append(batch_id)
    return handled
