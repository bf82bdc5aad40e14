"""A verdict reported as saved survives the process being killed at any moment.

A child process records verdicts in a loop and prints each feedback id only after ``record_verdict``
returned. The parent SIGKILLs it at random points, many times; after every kill each id the child
reported must be in the database, and SQLite's integrity check must pass.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medalign_desktop.store import Store

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 30
TIME_BUDGET_S = 45

# sqlite-utils imports pandas and numpy when they are installed (0.4 s); the child needs neither, and a
# fast start means more kills per second.
CHILD = r"""
import sys
sys.modules["pandas"] = None
sys.modules["numpy"] = None
from medalign_desktop.store import Store

store = Store.open(sys.argv[1])
generation_id = int(sys.argv[2])
i = 0
while True:
    kind = ("accept", "edit", "reject")[i % 3]
    extra = {"edit": {"edited_text": f"corrected answer {i} " * 20},
             "reject": {"reject_reason": "unsafe", "safety_flags": ["unsafe_advice"]}}.get(kind, {})
    feedback_id = store.record_verdict(generation_id, kind, annotator="crash-test", rating=1 + i % 5, **extra)
    sys.stdout.write(f"{feedback_id}\n")
    sys.stdout.flush()
    i += 1
"""


def _ids(data: bytes) -> list[int]:
    """Ids from complete lines only: a line cut by the kill was never fully reported."""
    complete = data[: data.rfind(b"\n") + 1]
    return [int(line) for line in complete.split()]


def _check(path: Path, reported: set[int]) -> int:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in conn.execute("SELECT id FROM feedback")}
        audited = {
            row[0] for row in conn.execute("SELECT feedback_id FROM audit_log WHERE action = 'create'")
        }
    finally:
        conn.close()
    missing = reported - stored
    assert not missing, f"verdicts reported saved but lost: {sorted(missing)[:10]}"
    assert stored == audited, "a verdict without its audit row (or the reverse) survived a crash"
    return len(stored)


def _one_round(path: Path, generation_id: int, rng: random.Random, log: Path) -> list[int]:
    with log.open("ab") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(generation_id)],
            stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT,
        )  # fmt: skip
    try:
        reported: list[int] = []
        for _ in range(rng.randint(0, 25)):
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"the child stopped by itself:\n{log.read_text()}")
            reported.append(int(line))
        time.sleep(rng.uniform(0, 0.004))  # land the kill anywhere, including inside a commit
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        return reported + _ids(child.stdout.read())  # ids printed after the last one we read
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()


@pytest.mark.slow
def test_reported_verdicts_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    with Store.open(path) as store:
        prompt_id = store.add_prompt("Crash-test question")
        generation_id = store.add_generation(prompt_id, "Crash-test answer", settings={})
    rng = random.Random(20261124)
    reported: set[int] = set()
    started = time.monotonic()
    for _ in range(ROUNDS):
        reported.update(_one_round(path, generation_id, rng, tmp_path / "child-stderr.log"))
        _check(path, reported)
        assert time.monotonic() - started < TIME_BUDGET_S
    assert len(reported) > ROUNDS  # the child did get verdicts through between kills
    with Store.open(path) as store:  # and the store opens and works normally afterwards
        assert store.history_count() >= len(reported)
        store.record_verdict(generation_id, "accept", annotator="after the crashes")
