"""Export benchmark: 100,000 preference pairs to JSONL and Parquet, against a plain json.dumps baseline.

1. ``build_pairs_db``: a temporary store with N questions, each with an edited answer (one edit pair each),
   written in one transaction with plain SQL (the verdict path would take minutes for 100,000).
2. ``measure_export``: ``export_pairs`` to JSONL and to Parquet (read from SQLite, message lists built,
   written to a temporary file, fsync'd, checksummed, renamed, manifest written), best of ``--repeat``.
3. ``measure_baseline``: the least any JSONL export must do: the same rows, already in memory as dicts, through
   ``json.dumps`` into a file; no database, no checksum, no fsync. ``jsonl_vs_baseline`` is ours / baseline.

    python benchmarks/export.py [--pairs 100000] [--repeat 3] [--dir DIR]

Last line: one JSON object (see ../shared/DESIGN.md, "benchmark").
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import MEDICAL_WORDS  # noqa: E402

from medalign_desktop.store import Store  # noqa: E402
from medalign_desktop.store.db import transaction  # noqa: E402
from medalign_desktop.store.exports.export import export_pairs  # noqa: E402

TARGETS = {"export_jsonl_s": 5.0, "export_parquet_s": 5.0}
WORDS = MEDICAL_WORDS


def sentence(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."


def build_pairs_db(path: Path, n_pairs: int, seed: int = 0) -> None:
    """n_pairs questions (~40 words), each with a model answer (~80 words) and an edit of it."""
    rng = random.Random(seed)
    stamp = "2026-01-01T00:00:00.000000Z"
    prompts, generations, feedback = [], [], []
    for i in range(1, n_pairs + 1):
        answer = sentence(rng, 80)
        prompts.append((i, f"Q{i}: {sentence(rng, 40)}", f"bench-{i}", stamp))
        generations.append((i, i, answer, stamp))
        feedback.append((i, i, answer + " " + sentence(rng, 10), stamp, stamp))
    with Store.open(path) as store, store.exclusive() as db, transaction(db):
        db.conn.executemany(
            "INSERT INTO prompts (id, text, source, split, dedup_hash, created_at)"
            " VALUES (?, ?, 'bench', 'train', ?, ?)",
            prompts,
        )
        db.conn.executemany(
            "INSERT INTO generations (id, prompt_id, model_version_name, text, created_at)"
            " VALUES (?, ?, 'base', ?, ?)",
            generations,
        )
        db.conn.executemany(
            "INSERT INTO feedback (id, generation_id, verdict, edited_text, annotator, created_at, updated_at)"
            " VALUES (?, ?, 'edit', ?, 'bench', ?, ?)",
            feedback,
        )


def measure_export(store: Store, out: Path, fmt: str, repeat: int) -> tuple[float, int]:
    best, n = float("inf"), 0
    for attempt in range(repeat):
        dest = out / f"pairs-{attempt}.{fmt}"
        started = time.perf_counter()
        report = export_pairs(store, dest, fmt=fmt)
        best = min(best, time.perf_counter() - started)
        n = report.n_records
        dest.unlink()
    return best, n


def measure_baseline(store: Store, out: Path, repeat: int) -> float:
    rows = [
        {"id": p.key, "chosen": [{"role": "user", "content": p.prompt}, {"role": "assistant", "content": p.chosen}],
         "rejected": [{"role": "user", "content": p.prompt}, {"role": "assistant", "content": p.rejected}]}
        for p in store.preference_pairs()
    ]  # fmt: skip
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        with (out / "baseline.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        work_dir = Path(work)
        started = time.perf_counter()
        build_pairs_db(work_dir / "bench.sqlite", args.pairs)
        print(f"built {args.pairs:,} pairs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with Store.open(work_dir / "bench.sqlite") as store:
            jsonl_s, n = measure_export(store, work_dir, "jsonl", args.repeat)
            parquet_s, _ = measure_export(store, work_dir, "parquet", args.repeat)
            baseline_s = measure_baseline(store, work_dir, args.repeat)
    results = {"export_jsonl_s": round(jsonl_s, 3), "export_parquet_s": round(parquet_s, 3)}
    summary = {
        "benchmark": "export",
        "pairs": n,
        **results,
        "baseline_json_dumps_s": round(baseline_s, 3),
        "jsonl_vs_baseline": round(jsonl_s / baseline_s, 2),
        "pairs_per_s_jsonl": round(n / jsonl_s),
        "machine": f"{platform.machine()} {platform.python_version()}",
        "targets": {name: f"< {limit:g}" for name, limit in TARGETS.items()},
        "met": all(results[name] < limit for name, limit in TARGETS.items()) and n == args.pairs,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
