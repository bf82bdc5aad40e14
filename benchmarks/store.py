"""Store benchmark: verdict insert latency and the History page's first query, against bare SQLite.

Measurements, each in its own function so more can be added (the GUI-stall figure comes later):

1. ``measure_insert_latency``: ``Store.record_verdict`` (validation + feedback row + flags + audit row,
   one transaction, fsync'd with synchronous=FULL) timed call by call, side by side with the baseline of a
   bare ``sqlite3`` one-row INSERT + COMMIT under the same pragmas, alternating so noise hits both alike.
2. ``build_history_db`` + ``measure_history_first_page``: a database of 100,000 verdicts, then, for each
   of several fresh ``Store.open`` (cold connection and page cache of SQLite), the time of what the
   History page runs first: ``history(limit=200)`` + ``history_count()``.
3. ``measure_search``: a History text search through the trigram FTS index vs a plain LIKE scan.
4. ``measure_streaming_stall``: the real main window (offscreen) on the demo model answers a question
   on the Annotate page; a 10 ms heartbeat timer on the GUI thread records the longest event-loop stall
   while the answer streams and is saved (``--no-gui`` skips it).

    python benchmarks/store.py [--inserts 2000] [--verdicts 100000] [--dir DIR]

Last line: one JSON object (see ../shared/DESIGN.md, "benchmark").
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import MEDICAL_WORDS  # noqa: E402

from medalign_desktop.store import Store  # noqa: E402
from medalign_desktop.store.db import transaction, utc_now  # noqa: E402

TARGETS = {"insert_p99_ms": 5.0, "history_first_page_ms": 100.0, "streaming_stall_ms": 50.0}


class TextMaker:
    """Pseudo-text with a Zipf word distribution over 20,000 words, like natural language.

    A tiny vocabulary would make every trigram occur in every document, which no real text does and
    which would misrepresent the FTS index (it skips through rare trigrams).
    """

    def __init__(self, seed: int = 0, vocabulary: int = 20_000) -> None:
        self.rng = random.Random(seed)
        letters = "etaoinshrdlucmfwypvbgkjqxz"
        made = {"".join(self.rng.choices(letters[:20], k=self.rng.randint(2, 11))) for _ in range(vocabulary)}
        self.words = MEDICAL_WORDS + sorted(made)
        self.cum_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(self.words))))

    def __call__(self, n_words: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum_weights, k=n_words))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _verdict_args(i: int) -> tuple[str, dict]:
    kind = ("accept", "accept", "edit", "reject")[i % 4]
    extra = {
        "accept": {"rating": 4},
        "edit": {"edited_text": f"Corrected answer number {i}: give 1 g paracetamol every 6 hours."},
        "reject": {"reject_reason": "factually_wrong", "safety_flags": ["hallucinated_fact"]},
    }[kind]
    return kind, extra


def measure_insert_latency(workdir: Path, n: int) -> dict[str, float]:
    """Per-call latency of record_verdict vs a bare INSERT + COMMIT, alternating, same disk and pragmas."""
    store = Store.open(workdir / "insert.sqlite")
    prompt_id = store.add_prompt("Benchmark question: dose of paracetamol for an adult?")
    generation_id = store.add_generation(prompt_id, "Up to 4 g per day in divided doses.", settings={})
    bare = sqlite3.connect(workdir / "bare.sqlite", isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
        bare.execute(f"PRAGMA {pragma}")
    bare.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, verdict TEXT, annotator TEXT, created_at TEXT)")
    ours, baseline = [], []
    for i in range(n):
        kind, extra = _verdict_args(i)
        started = time.perf_counter()
        store.record_verdict(generation_id, kind, annotator="bench", **extra)
        ours.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        bare.execute("BEGIN IMMEDIATE")
        bare.execute(
            "INSERT INTO t (verdict, annotator, created_at) VALUES (?, ?, ?)", (kind, "bench", utc_now())
        )
        bare.execute("COMMIT")
        baseline.append((time.perf_counter() - started) * 1000)
    store.close()
    bare.close()
    return {
        "insert_median_ms": statistics.median(ours),
        "insert_p99_ms": percentile(ours, 99),
        "insert_max_ms": max(ours),
        "baseline_insert_median_ms": statistics.median(baseline),
        "baseline_insert_p99_ms": percentile(baseline, 99),
    }


def build_history_db(path: Path, n_verdicts: int, seed: int = 0) -> float:
    """Bulk-fill a database shaped like real use (same rows record_verdict writes); returns seconds taken.

    Rows go in with executemany in one transaction: 100,000 single fsync'd verdicts would take minutes
    and measure the disk, not the History query.
    """
    text = TextMaker(seed)
    started = time.perf_counter()
    store = Store.open(path)
    db = store.db
    n_prompts = max(1, n_verdicts // 5)
    now = utc_now()
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO prompts (text, dedup_hash, created_at) VALUES (?, ?, ?)",
            ((f"Q{i}: {text(40)}?", f"h{i}", now) for i in range(n_prompts)),
        )
        db.conn.executemany(
            "INSERT INTO generations (prompt_id, model_version_name, text, created_at) VALUES (?, ?, ?, ?)",
            (
                (1 + i % n_prompts, ("base", "sft-1", "hitl-1")[i % 3], text(60), now)
                for i in range(n_verdicts)
            ),
        )
        db.conn.executemany(
            "INSERT INTO feedback (generation_id, verdict, edited_text, reject_reason, rating, annotator,"
            " created_at, updated_at, withdrawn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_feedback_row(i, text, now) for i in range(n_verdicts)),
        )
        db.conn.executemany(
            "INSERT INTO feedback_flags (feedback_id, flag) VALUES (?, 'hallucinated_fact')",
            ((fid,) for fid in range(4, n_verdicts + 1, 4)),
        )
        db.conn.executemany(
            "INSERT INTO audit_log (feedback_id, action, new_json, annotator, created_at) VALUES (?, 'create', '{}', ?, ?)",
            ((fid, f"dr {fid % 7}", now) for fid in range(1, n_verdicts + 1)),
        )
    store.close()
    return time.perf_counter() - started


def _feedback_row(i: int, text: TextMaker, now: str) -> tuple:
    kind = ("accept", "accept", "edit", "reject")[i % 4]
    edited = text(50) if kind == "edit" else None
    reason = "factually_wrong" if kind == "reject" else None
    return (i + 1, kind, edited, reason, 1 + i % 5, f"dr {(i + 1) % 7}", now, now, 1 if i % 50 == 0 else 0)


def measure_history_first_page(path: Path, repeats: int = 5) -> dict[str, float]:
    """Time Store.open, then history(limit=200) + history_count() on that fresh connection."""
    opens, pages = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        store = Store.open(path)
        opened = time.perf_counter()
        rows = store.history(limit=200)
        total = store.history_count()
        pages.append((time.perf_counter() - opened) * 1000)
        opens.append((opened - started) * 1000)
        assert len(rows) == 200 and total > 0
        store.close()
    return {
        "open_ms": statistics.median(opens),
        "history_first_page_ms": max(pages),
        "history_first_page_median_ms": statistics.median(pages),
    }


def measure_search(path: Path, term: str = "ketoacidosis insulin") -> dict[str, float]:
    """First page + count of a text search: our FTS path vs the LIKE scan a naive History would do."""
    store = Store.open(path)
    started = time.perf_counter()
    rows = store.history(search=term)
    count = store.history_count(search=term)
    ours = (time.perf_counter() - started) * 1000
    like = f"%{term}%"
    sql = (
        "FROM feedback f JOIN generations g ON g.id = f.generation_id JOIN prompts p ON p.id = g.prompt_id"
        " WHERE f.withdrawn = 0 AND (p.text LIKE ? OR g.text LIKE ? OR f.edited_text LIKE ?)"
    )
    started = time.perf_counter()
    like_rows = store.db.execute(f"SELECT f.id {sql} ORDER BY f.id DESC LIMIT 200", [like] * 3).fetchall()
    like_count = store.db.execute(f"SELECT count(*) {sql}", [like] * 3).fetchone()[0]
    baseline = (time.perf_counter() - started) * 1000
    store.close()
    assert count == like_count and [r.feedback_id for r in rows] == [r[0] for r in like_rows]
    return {"search_ms": ours, "baseline_like_search_ms": baseline, "search_hits": count}


def measure_streaming_stall(workdir: Path, max_new_tokens: int = 128) -> dict[str, float]:
    """Longest GUI-thread stall while the Annotate page streams one answer from SmolLM2."""
    import asyncio
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from medalign_desktop.engine import SamplingSettings
    from medalign_desktop.engine.gguf_import import install_demo_model
    from medalign_desktop.ui.annotate.page import Phase
    from medalign_desktop.ui.core.settings import AppSettings
    from medalign_desktop.ui.shell.main_window import MainWindow, StartupOptions

    model = install_demo_model().path
    db = workdir / "stall.sqlite"
    with Store.open(db) as store:
        store.add_prompt("What are the first steps in managing suspected sepsis in the emergency department?")
    app = QApplication.instance() or QApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    settings = AppSettings(QSettings(str(workdir / "gui.ini"), QSettings.Format.IniFormat))
    settings.set_sampling(SamplingSettings(temperature=0.0, max_new_tokens=max_new_tokens))
    settings.annotator = "benchmark"
    window = MainWindow(StartupOptions(db_path=db, model_dir=model), settings=settings)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        if window.annotate.phase in (Phase.STREAMING, Phase.SAVING):
            gaps.append(now - last[0] - 0.010)
        last[0] = now

    async def run() -> None:
        window.show()
        await window.start()
        while window.annotate.phase is not Phase.READY:
            await asyncio.sleep(0.05)

    heartbeat = QTimer(interval=10)
    heartbeat.timeout.connect(beat)
    heartbeat.start()
    try:
        loop.run_until_complete(run())
    finally:
        heartbeat.stop()
        window.close()
        loop.run_until_complete(window.wind_down())
        window.shutdown()
        loop.close()  # stops the loop's executor threads before the QApplication goes (no "QThread: Destroyed")
    return {"streaming_stall_ms": max(gaps) * 1000, "streaming_heartbeats": float(len(gaps))}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inserts", type=int, default=2000)
    parser.add_argument("--verdicts", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary databases go")
    parser.add_argument("--no-gui", action="store_true", help="skip the streaming-stall measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="medalign-store-bench-") as tmp:
        workdir = Path(tmp)
        print(
            f"machine: {platform.platform()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
        )
        print(f"databases in {workdir}")
        results: dict[str, float] = {}

        results.update(measure_insert_latency(workdir, args.inserts))
        print(
            f"record_verdict x{args.inserts}: median {results['insert_median_ms']:.2f} ms, "
            f"p99 {results['insert_p99_ms']:.2f} ms, max {results['insert_max_ms']:.2f} ms "
            f"(bare INSERT+COMMIT: median {results['baseline_insert_median_ms']:.2f} ms, "
            f"p99 {results['baseline_insert_p99_ms']:.2f} ms)"
        )

        history_path = workdir / "history.sqlite"
        build_s = build_history_db(history_path, args.verdicts)
        size_mb = history_path.stat().st_size / 1e6
        print(f"built a {args.verdicts:,}-verdict database in {build_s:.1f} s ({size_mb:.0f} MB)")

        results.update(measure_history_first_page(history_path))
        print(
            f"History first page (history(limit=200) + history_count()) after a fresh open: "
            f"worst {results['history_first_page_ms']:.1f} ms, median {results['history_first_page_median_ms']:.1f} ms "
            f"(Store.open itself: {results['open_ms']:.1f} ms)"
        )

        results.update(measure_search(history_path))
        print(
            f"History search ({results['search_hits']:.0f} hits): trigram FTS {results['search_ms']:.1f} ms "
            f"vs LIKE scan {results['baseline_like_search_ms']:.1f} ms"
        )

        if not args.no_gui:
            results.update(measure_streaming_stall(workdir))
            print(
                f"Annotate page streaming an answer: longest event-loop stall "
                f"{results['streaming_stall_ms']:.1f} ms over {results['streaming_heartbeats']:.0f} heartbeats"
            )

    met = all(results[name] < limit for name, limit in TARGETS.items() if name in results)
    summary = {"benchmark": "store", **{k: round(v, 3) for k, v in results.items()}}
    summary["targets"] = {name: f"< {limit:g}" for name, limit in TARGETS.items() if name in results}
    summary["met"] = met
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
