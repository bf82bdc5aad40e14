"""A large import never blocks a verdict saved meanwhile from another connection (issue 19).

The import (100,000 questions, its own Store in a thread) writes in short transactions through
``store.staging``; 200 verdicts are saved from a second Store while it stages and publishes. None may
fail, each must be quick, and afterwards every verdict and every imported question is there.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from medalign_desktop.store import Store, import_questions

N_QUESTIONS = 100_000
N_VERDICTS = 200


def _write_questions(path: Path, n: int) -> None:
    pad = "A patient presents with fever, cough and shortness of breath; history of asthma. Next step?"
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(
            f'{{"id": "q{i}", "question": "Q{i}: {pad}", "answer": "A{i}"}}\n' for i in range(n)
        )


def _state(store: Store) -> str | None:
    row = store.db.execute(
        "SELECT state FROM import_batches WHERE kind = 'questions' ORDER BY id DESC"
    ).fetchone()
    return row[0] if row else None


def test_verdicts_are_saved_while_a_large_import_runs(tmp_path: Path) -> None:
    db_path = tmp_path / "medalign.sqlite"
    questions = tmp_path / "big.jsonl"
    _write_questions(questions, N_QUESTIONS)
    clinician = Store.open(db_path)
    generations = []
    for i in range(N_VERDICTS):
        prompt_id = clinician.add_prompt(f"Typed question {i}?")
        generations.append(clinician.add_generation(prompt_id, f"Answer {i}.", settings={}))

    outcome: dict[str, object] = {}

    def run_import() -> None:
        with Store.open(db_path) as importer:
            try:
                outcome["report"] = import_questions(importer, questions)
            except BaseException as exc:  # reported by the main thread
                outcome["error"] = exc

    worker = threading.Thread(target=run_import)
    began = time.monotonic()
    worker.start()
    deadline = time.monotonic() + 60
    while _state(clinician) is None and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)  # wait until the import starts writing (reading 100k lines comes first)
    states, latencies, feedback_ids = set(), [], []
    for i, generation_id in enumerate(generations):
        states.add(_state(clinician))
        started = time.perf_counter()
        feedback_ids.append(clinician.record_verdict(generation_id, "accept", annotator=f"dr {i % 3}"))
        latencies.append(time.perf_counter() - started)
        time.sleep(0.015)  # a clinician's pace, compressed: spread the verdicts over staging and publishing
    worker.join(timeout=120)
    elapsed = time.monotonic() - began

    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert report.imported == N_QUESTIONS and not report.errors, report.summary()
    assert states & {"staging", "publishing"}, f"the verdicts did not overlap the import's writes: {states}"
    stored = {row[0] for row in clinician.db.execute("SELECT id FROM feedback WHERE verdict = 'accept'")}
    assert stored == set(feedback_ids) and len(stored) == N_VERDICTS
    assert clinician.stats()["prompts"] == N_QUESTIONS + N_VERDICTS
    assert clinician.db.execute("SELECT count(*) FROM import_staging").fetchone()[0] == 0
    assert max(latencies) < 2.0, (
        f"slowest verdict {max(latencies):.2f}s (median {sorted(latencies)[100]:.3f}s)"
    )
    ordered = sorted(latencies)
    print(f"\np50 {ordered[100]:.3f} p90 {ordered[180]:.3f} p99 {ordered[198]:.3f}")
    print(
        f"\nimport {elapsed:.1f}s; verdicts: {len(latencies)}, slowest {max(latencies):.3f}s, states seen {sorted(states)}"
    )
    clinician.close()
