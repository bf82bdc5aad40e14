"""The staged import write (issue 19): short transactions, invisible staging, recovery of killed imports."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from medalign_desktop.store import Store, import_questions
from medalign_desktop.store.imports import staging as staging_module
from medalign_desktop.store.imports.preferences import import_preferences
from medalign_desktop.store.prompts import prompt_row

DEAD = f"{socket.gethostname()}:999999999"  # an owner on this host whose process is gone (above pid_max)


def _questions(path: Path, n: int, prefix: str = "Q") -> Path:
    path.write_text("".join(json.dumps({"question": f"{prefix}{i}?"}) + "\n" for i in range(n)))
    return path


def _rows(n: int, prefix: str = "S") -> list[dict]:
    return [prompt_row(f"{prefix}{i}?", created_at="t", source="import:x") for i in range(n)]


def _batch() -> dict:
    return {"source_path": "/x.jsonl", "sha256": "0", "format": "jsonl", "created_at": "t", "n_records": 0}


def _kill(store: Store, batch_id: int, state: str) -> None:
    """Make a batch look like one left by a process of this host that died while in ``state``."""
    store.db.execute("UPDATE import_batches SET owner = ?, state = ? WHERE id = ?", [DEAD, state, batch_id])


def test_import_writes_in_short_transactions(store: Store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(staging_module, "CHUNK", 100)
    monkeypatch.setattr(staging_module, "MAX_PAUSE", 0.0)
    begins: list[str] = []
    store.db.conn.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
    report = import_questions(store, _questions(tmp_path / "q.jsonl", 1000))
    store.db.conn.set_trace_callback(None)
    assert report.imported == 1000 and len(store.queue()) == 1000
    assert len(begins) >= 20  # 10 staging chunks, 10 publishing chunks, the batch row, the commit point
    assert store.db.execute("SELECT count(*) FROM import_staging").fetchone()[0] == 0
    [batch] = store.import_batches()
    assert (batch.id, batch.n_imported) == (report.batch_id, 1000)
    row = store.db["import_batches"].get(report.batch_id)
    assert (row["state"], row["n_records"], row["n_duplicates"]) == ("done", 1000, 0)


def test_cancel_while_staging_writes_nothing(store: Store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(staging_module, "CHUNK", 100)
    calls = {"n": 0}

    def cancel() -> bool:  # False while reading, True after the third staging chunk
        calls["n"] += 1
        return store.db.execute("SELECT count(*) FROM import_staging").fetchone()[0] >= 300

    report = import_questions(store, _questions(tmp_path / "q.jsonl", 1000), cancel=cancel)
    assert report.cancelled and report.imported == 0 and calls["n"] > 3
    assert store.queue() == [] and store.import_batches() == []
    assert store.db.execute("SELECT count(*) FROM import_staging").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM import_batches").fetchone()[0] == 0


def test_staged_rows_are_invisible(store: Store) -> None:
    batch_id = staging_module.stage(store.db, "questions", _batch(), _rows(50), lambda: False)
    assert store.queue(mode="all") == [] and store.stats()["prompts"] == 0
    assert store.import_batches() == []  # a batch being staged is listed nowhere
    assert staging_module.publish(store.db, batch_id) == 50
    assert len(store.queue()) == 50 and [b.id for b in store.import_batches()] == [batch_id]


def test_a_killed_staging_is_discarded_by_the_next_import(store: Store, tmp_path: Path) -> None:
    batch_id = staging_module.stage(store.db, "questions", _batch(), _rows(30), lambda: False)
    _kill(store, batch_id, "staging")
    live = staging_module.stage(store.db, "questions", _batch(), _rows(5, "L"), lambda: False)  # ours: kept
    report = import_questions(store, _questions(tmp_path / "q.jsonl", 3))
    assert report.imported == 3 and store.stats()["prompts"] == 3
    assert store.db["import_batches"].count_where("id = ?", [batch_id]) == 0
    staged = store.db.execute("SELECT batch_id, count(*) FROM import_staging GROUP BY batch_id").fetchall()
    assert staged == [(live, 5)]


def test_a_killed_publish_is_rolled_forward(store: Store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(staging_module, "CHUNK", 10)
    batch_id = staging_module.stage(store.db, "questions", _batch(), _rows(35), lambda: False)
    _kill(store, batch_id, "publishing")
    assert staging_module.recover(store.db) == [batch_id]
    assert store.stats()["prompts"] == 35 and store.db["import_batches"].get(batch_id)["state"] == "done"
    assert staging_module.recover(store.db) == []  # nothing left to do; cheap


def test_publishing_twice_moves_each_row_once(store: Store) -> None:
    batch_id = staging_module.stage(store.db, "questions", _batch(), _rows(20), lambda: False)
    assert staging_module.publish(store.db, batch_id) == 20
    assert staging_module.publish(store.db, batch_id) == 20  # already done: the same count, nothing added
    assert store.stats()["prompts"] == 20


def test_nothing_new_leaves_no_batch(store: Store, tmp_path: Path) -> None:
    path = _questions(tmp_path / "q.jsonl", 10)
    first = import_questions(store, path)
    again = import_questions(store, path)
    assert (again.imported, again.duplicates, again.batch_id) == (0, 10, None)
    assert [b.id for b in store.import_batches()] == [first.batch_id]


def test_preference_import_uses_the_same_staging(store: Store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(staging_module, "CHUNK", 3)
    pairs = [
        {"prompt": f"P{i}?", "chosen": [{"role": "assistant", "content": f"good {i}"}],
         "rejected": [{"role": "assistant", "content": f"bad {i}"}]}
        for i in range(10)
    ]  # fmt: skip
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    report = import_preferences(store, path)
    assert report.imported == 10 and store.db["imported_pairs"].count == 10
    assert [b.kind for b in store.import_batches()] == ["pairs"]


def test_stale_owner_on_another_host_needs_an_hour(store: Store) -> None:
    now = staging_module.datetime.now(staging_module.UTC)
    recent = (now - staging_module.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert not staging_module._is_stale("other-host:1", recent, now)
    assert staging_module._is_stale("other-host:1", "2000-01-01T00:00:00.000000Z", now)
    assert not staging_module._is_stale(staging_module.owner_tag(), None, now)  # this very process


@pytest.mark.parametrize("held", [0.0, 0.02])
def test_pause_leaves_the_lock_free_about_as_long_as_it_was_held(store: Store, held: float) -> None:
    began = time.perf_counter() - held
    staging_module.pause(store.db, began)
    assert time.perf_counter() - began >= 2 * held
