"""De-identification benchmark: recall and precision on a labelled synthetic set, ours against the old pass.

The set is ``tests/data/deid_labelled.jsonl`` (written by ``tests/data/deid_corpus.py``): clinical sentences
with every identifier labelled by span and class, and medical terms / values that must survive.

- recall: identifiers whose every letter and digit was masked, per class and overall;
- precision: masked spans that overlap a labelled identifier, over all masked spans;
- medical_terms_kept: labelled medical terms with no masked character.

The baseline is the regex pass this one replaced (``git show <rev>:medalign_desktop/store/deid.py``, text
output only; its masked spans are recovered by diffing its output against the input).

    python benchmarks/deid.py [--data FILE] [--baseline-rev a6365dc] [--show-misses]

Last line: one JSON object (see ../shared/DESIGN.md, "benchmark").
"""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
import time
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medalign_desktop.store.deid import deidentify, find_identifiers  # noqa: E402

DATA = ROOT / "tests" / "data" / "deid_labelled.jsonl"
Spans = list[tuple[int, int, str]]


def load(path: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def spans_by_diff(text: str, masked: str) -> Spans:
    """Where a text-only de-identifier changed the input: the input ranges it replaced or deleted."""
    matcher = difflib.SequenceMatcher(None, text, masked, autojunk=False)
    return [
        (i1, i2, "?") for op, i1, i2, _, _ in matcher.get_opcodes() if op in ("replace", "delete") and i2 > i1
    ]


def score(rows: list[dict], find: Callable[[str], Spans]) -> dict:
    """Per-class recall, precision and medical terms kept of ``find`` on ``rows``."""
    found, total = Counter[str](), Counter[str]()
    n_spans = n_true = kept = n_terms = 0
    misses, false_positives, lost = [], [], []
    for row in rows:
        text, spans = row["text"], find(row["text"])
        masked = [False] * len(text)
        for start, end, _ in spans:
            masked[start:end] = [True] * (end - start)
        for ident in row["identifiers"]:
            total[ident["kind"]] += 1
            chars = range(ident["start"], ident["end"])
            if all(masked[i] for i in chars if text[i].isalnum()):
                found[ident["kind"]] += 1
            else:
                misses.append((ident["kind"], ident["text"], text))
        for start, end, _ in spans:
            n_spans += 1
            if any(i["start"] < end and start < i["end"] for i in row["identifiers"]):
                n_true += 1
            else:
                false_positives.append((text[start:end], text))
        for term in row["keep"]:
            n_terms += 1
            if any(masked[term["start"] : term["end"]]):
                lost.append((term["text"], text))
            else:
                kept += 1
    per_class = {
        kind: {"n": total[kind], "recall": round(found[kind] / total[kind], 3)} for kind in sorted(total)
    }
    return {
        "recall": round(sum(found.values()) / max(1, sum(total.values())), 4),
        "precision": round(n_true / max(1, n_spans), 4),
        "medical_terms_kept": round(kept / max(1, n_terms), 4),
        "per_class": per_class, "misses": misses, "false_positives": false_positives, "lost": lost,
        "n_identifiers": sum(total.values()), "n_terms": n_terms,
    }  # fmt: skip


def baseline_finder(rev: str) -> Callable[[str], Spans] | None:
    try:
        source = subprocess.run(["git", "show", f"{rev}:medalign_desktop/store/deid.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("old_deid")
    exec(compile(source, "old_deid.py", "exec"), module.__dict__)  # noqa: S102 - our own file at an old commit
    return lambda text: spans_by_diff(text, module.deidentify(text)[0])


def speed(n: int = 200) -> float:
    """Milliseconds per ``deidentify`` of a ~2,000-character clinical note, after warm-up."""
    rows = load()
    note = ""
    for row in rows:
        if len(note) > 2000:
            break
        note += row["text"] + "\n"
    note = note[:2000]
    deidentify(note)
    started = time.perf_counter()
    for _ in range(n):
        deidentify(note)
    return (time.perf_counter() - started) / n * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--baseline-rev", default="a6365dc")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args(argv)
    rows = load(args.data)
    ours = score(rows, find_identifiers)
    old_find = baseline_finder(args.baseline_rev)
    old = score(rows, old_find) if old_find else None
    print(f"{len(rows)} texts, {ours['n_identifiers']} identifiers, {ours['n_terms']} medical terms")
    print(f"{'class':<12} {'n':>4} {'ours':>6} {'old':>6}")
    for kind, figures in ours["per_class"].items():
        before = old["per_class"][kind]["recall"] if old else float("nan")
        print(f"{kind:<12} {figures['n']:>4} {figures['recall']:>6.3f} {before:>6.3f}")
    for label, result in (("ours", ours), ("old", old)):
        if result:
            print(f"{label}: recall {result['recall']:.3f}, precision {result['precision']:.3f}, "
                  f"medical terms kept {result['medical_terms_kept']:.3f}")  # fmt: skip
    holdout = [row for row in rows if row.get("set") == "holdout"]
    if holdout:
        later = score(holdout, find_identifiers)
        print(f"held-out part ({len(holdout)} texts written after the rules, {later['n_identifiers']} identifiers):"
              f" recall {later['recall']:.3f}, precision {later['precision']:.3f}")  # fmt: skip
    ms = speed()
    print(f"speed: {ms:.2f} ms per 2,000-character note")
    if args.show_misses:
        for kind, value, text in ours["misses"]:
            print(f"MISS {kind}: {value!r} in {text!r}")
        for value, text in ours["false_positives"]:
            print(f"FALSE POSITIVE {value!r} in {text!r}")
        for value, text in ours["lost"]:
            print(f"LOST TERM {value!r} in {text!r}")
    met = ours["recall"] >= 0.95 and ours["medical_terms_kept"] == 1.0
    print(json.dumps({
        "benchmark": "deid", "recall": ours["recall"], "precision": ours["precision"],
        "medical_terms_kept": ours["medical_terms_kept"], "baseline_recall": old["recall"] if old else None,
        "baseline_precision": old["precision"] if old else None,
        "baseline_medical_terms_kept": old["medical_terms_kept"] if old else None, "ms_per_2k_note": round(ms, 2),
        "targets": {"recall": ">= 0.95", "medical_terms_kept": "== 1.0"}, "met": met,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
