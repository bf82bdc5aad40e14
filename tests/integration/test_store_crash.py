"""What the store reported as saved survives the writer being killed at any moment (200 SIGKILLs).

A writer records verdicts, edits (verdict changes), comparisons and, every tenth round, an import of a
question file, and reports each one only after the store call returned. The test SIGKILLs it at a random
point soon after it reports progress, 200 times; after every kill everything reported must be in the
database, every verdict with its audit row, and SQLite's integrity check must pass.

Speed: a fresh ``python`` per writer costs ~0.2 s of imports, which for 200 kills would be most of the test.
So one "zygote" process imports the store once and forks a writer per round (a few milliseconds); the
writer reports through a FIFO, and the zygote tells the test its pid and when it was reaped.
"""

from __future__ import annotations

import json
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
ROUNDS = 200
IMPORT_EVERY = 10  # every tenth writer starts with an import of the question file (killed in flight or not)
N_IMPORT = 2000
INTEGRITY_EVERY = 10
TIME_BUDGET_S = 60

# sqlite-utils imports pandas and numpy when they are installed (0.4 s); the writer needs neither.
ZYGOTE = r"""
import os, sys
sys.modules["pandas"] = None
sys.modules["numpy"] = None
from medalign_desktop.store import Store, import_questions

db, fifo, questions = sys.argv[1:4]
first, second = (int(g) for g in sys.argv[4].split(","))


def write(round_no, with_import):
    out = os.open(fifo, os.O_WRONLY)  # first of all: the test is waiting on the other end

    def say(text):
        os.write(out, (text + "\n").encode())

    store = Store.open(db)
    if with_import:
        say("import-started")
        report = import_questions(store, questions)
        say(f"imported {report.imported + report.duplicates}")
    i, last = round_no * 1000, None
    while True:
        step = i % 5
        if step < 3:
            kind = ("accept", "edit", "reject")[step]
            extra = {"edit": {"edited_text": f"corrected answer {i} " * 20},
                     "reject": {"reject_reason": "unsafe", "safety_flags": ["unsafe_advice"]}}.get(kind, {})
            last = store.record_verdict(first, kind, annotator="crash-test", rating=1 + i % 5, **extra)
            say(f"verdict {last}")
        elif step == 3:
            cid = store.record_comparison(first, second, ("first", "second", "tie")[i % 3],
                                          annotator="crash-test", swapped=bool(i % 2), mode="seeds")
            say(f"comparison {cid}")
        elif last is not None:
            store.change_verdict(last, annotator="crash-test", verdict="edit", edited_text=f"changed {i}")
            say(f"changed {last}")
            last = None
        i += 1


for line in sys.stdin:
    round_no, with_import = (int(x) for x in line.split())
    pid = os.fork()
    if pid == 0:
        try:
            write(round_no, with_import)
        finally:
            os._exit(1)
    print(pid, flush=True)
    print(f"exited {os.waitpid(pid, 0)[1]}", flush=True)
"""


def _complete_lines(data: bytes) -> list[str]:
    """Reports from complete lines only: a line cut by the kill was never fully reported."""
    return data[: data.rfind(b"\n") + 1].decode().split("\n")[:-1]


class Reported:
    def __init__(self) -> None:
        self.verdicts: set[int] = set()
        self.comparisons: set[int] = set()
        self.changed: set[int] = set()
        self.import_done = False
        self.imports_killed = 0

    def add(self, lines: list[str]) -> None:
        for line in lines:
            what, _, value = line.partition(" ")
            if what == "verdict":
                self.verdicts.add(int(value))
            elif what == "comparison":
                self.comparisons.add(int(value))
            elif what == "changed":
                self.changed.add(int(value))
            elif what == "imported":
                assert int(value) == N_IMPORT
                self.import_done = True


def _check(path: Path, reported: Reported, *, integrity: bool) -> None:
    conn = sqlite3.connect(path)
    try:
        if integrity:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in conn.execute("SELECT id FROM feedback")}
        audited = {r[0] for r in conn.execute("SELECT feedback_id FROM audit_log WHERE action = 'create'")}
        comparisons = {row[0] for row in conn.execute("SELECT id FROM comparisons")}
        changed = {
            row[0]
            for row in conn.execute(
                "SELECT f.id FROM feedback f JOIN audit_log a ON a.feedback_id = f.id AND a.action = 'change' "
                "WHERE f.verdict = 'edit' AND f.edited_text LIKE 'changed %'"
            )
        }
        imported = conn.execute("SELECT COUNT(*) FROM prompts WHERE text LIKE 'Crash import question %'")
        n_imported = imported.fetchone()[0]
    finally:
        conn.close()
    missing = reported.verdicts - stored
    assert not missing, f"verdicts reported saved but lost: {sorted(missing)[:10]}"
    assert stored == audited, "a verdict without its audit row (or the reverse) survived a crash"
    assert not reported.comparisons - comparisons, "comparisons reported saved but lost"
    assert not reported.changed - changed, "verdict changes reported saved but lost"
    assert n_imported in (0, N_IMPORT) or not reported.import_done, "a finished import lost questions"
    if reported.import_done:
        assert n_imported == N_IMPORT


def _write_questions(path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(N_IMPORT):
            record = {"id": f"c{i}", "question": f"Crash import question {i}: fever and cough?", "answer": "A"}
            handle.write(json.dumps(record) + "\n")


class Zygote:
    def __init__(self, path: Path, fifo: Path, questions: Path, generations: str, log: Path) -> None:
        self.fifo, self.log = fifo, log
        with log.open("ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", ZYGOTE, str(path), str(fifo), str(questions), generations],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT, text=True, bufsize=1,
            )  # fmt: skip

    def round(self, round_no: int, with_import: bool, rng: random.Random) -> list[str]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{round_no} {int(with_import)}\n")
        self.process.stdin.flush()
        pid = int(self.process.stdout.readline() or self._died())
        with self.fifo.open("rb") as reports:  # rendezvous with the writer
            lines = []
            for _ in range(1 if with_import else rng.randint(0, 6)):
                line = reports.readline()
                if not line.endswith(b"\n"):
                    pytest.fail(f"the writer stopped by itself:\n{self.log.read_text()[-3000:]}")
                lines.append(line.decode().strip())
            # land the kill anywhere: inside a commit, or (import rounds) anywhere in the import
            time.sleep(rng.uniform(0, 0.08) if with_import else rng.uniform(0, 0.004))
            os.kill(pid, signal.SIGKILL)
            rest = reports.read()  # EOF once the writer is gone
        status = self.process.stdout.readline()
        assert status.startswith("exited"), status or self._died()
        return lines + _complete_lines(rest)

    def _died(self) -> str:
        pytest.fail(f"the zygote died:\n{self.log.read_text()[-3000:]}")

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


@pytest.mark.slow
def test_reported_writes_survive_200_sigkills(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    with Store.open(path) as store:
        prompt_id = store.add_prompt("Crash-test question")
        first = store.add_generation(prompt_id, "Crash-test answer", settings={})
        second = store.add_generation(prompt_id, "Another crash-test answer", settings={})
    questions = tmp_path / "questions.jsonl"
    _write_questions(questions)  # one file for every import round
    fifo = tmp_path / "reports.fifo"
    os.mkfifo(fifo)
    rng = random.Random(20261124)
    reported = Reported()
    started = time.monotonic()
    zygote = Zygote(path, fifo, questions, f"{first},{second}", tmp_path / "writer-stderr.log")
    try:
        for round_no in range(ROUNDS):
            with_import = round_no % IMPORT_EVERY == IMPORT_EVERY - 1
            lines = zygote.round(round_no, with_import, rng)
            reported.imports_killed += with_import and not any(x.startswith("imported") for x in lines)
            reported.add(lines)
            _check(path, reported, integrity=round_no % INTEGRITY_EVERY == 0 or round_no == ROUNDS - 1)
            assert time.monotonic() - started < TIME_BUDGET_S, f"too slow: {round_no} rounds"
    finally:
        zygote.close()
    assert len(reported.verdicts) > ROUNDS // 2  # the writers did get verdicts through between kills
    assert reported.comparisons and reported.changed
    assert reported.imports_killed >= 1  # at least one import was killed in flight
    with Store.open(path) as store:  # and the store opens and works normally afterwards
        assert store.history_count() >= len(reported.verdicts)
        store.record_verdict(first, "accept", annotator="after the crashes")
