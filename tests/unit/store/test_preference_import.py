"""Importing preference pairs (UltraMedical-Preferences format): errors by line, idempotence, cancel, formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medalign_desktop.store import (
    ImportIssue,
    PairFilter,
    Store,
    StoreImportError,
    StoreValidationError,
    import_preferences,
    import_questions,
)


def _record(prompt: str | None, chosen: str, rejected: str, **extra) -> dict:
    """A record shaped like UltraMedical-Preferences (extra keys such as id / score are ignored)."""
    user = {"role": "user", "content": prompt or "Q from the messages?"}
    record = {
        "chosen": [user, {"role": "assistant", "content": chosen}],
        "rejected": [user, {"role": "assistant", "content": rejected}],
        **extra,
    }
    if prompt is not None:
        record["prompt"] = prompt
    return record


GOOD = [
    _record("Dose of IM adrenaline in adults?", "0.5 mg.", "5 mg.", id="u1", score=[9.0, 2.0]),
    _record("Первая помощь при ожоге? 🩹", "Охладить водой.", "Смазать маслом.", id="u2"),
]


def _write_jsonl(path: Path, lines: list) -> Path:
    text = "\n".join(
        line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _count(store: Store, table: str) -> int:
    return store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_jsonl_import_with_errors_by_line(store: Store, clock, tmp_path: Path) -> None:
    bad_messages = _record("Q?", "a", "b")
    bad_messages["chosen"] = [{"role": "user", "content": "Q?"}, "just text"]
    no_role = _record("Q?", "a", "b")
    del no_role["rejected"][1]["role"]
    path = _write_jsonl(
        tmp_path / "prefs.jsonl",
        [
            GOOD[0],  # 1
            "{not json",  # 2
            "",  # 3: empty, skipped
            ["a list"],  # 4
            {"prompt": "Q?", "rejected": GOOD[0]["rejected"]},  # 5
            {**_record("Q?", "a", "b"), "chosen": "a plain string"},  # 6
            bad_messages,  # 7
            no_role,  # 8
            {**_record("Q?", "a", "b"), "chosen": [{"role": "user", "content": "Q?"}]},  # 9
            _record("Q?", "   ", "b"),  # 10
            _record("Q?", "Same answer.", " Same answer.\n"),  # 11
            {"chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]},  # 12
            _record("  ", "a", "b"),  # 13
            _record(None, "Taken from the messages.", "Other."),  # 14: prompt from the last user message
            {**GOOD[1], "prompt": 7},  # 15
            GOOD[1],  # 16
        ],
    )  # fmt: skip
    report = import_preferences(store, path)
    assert (report.format, report.imported, report.duplicates, report.skipped_empty) == ("jsonl", 3, 0, 1)
    assert report.errors == [
        ImportIssue(2, None, "not valid JSON: Expecting property name enclosed in double quotes (column 2)"),
        ImportIssue(4, None, "expected a JSON object, got array"),
        ImportIssue(5, "chosen", "missing field 'chosen'"),
        ImportIssue(6, "chosen", "expected a list of messages {role, content}, got string"),
        ImportIssue(7, "chosen[1]", "expected an object with 'role' and 'content', got string"),
        ImportIssue(8, "rejected[1].role", "missing field 'role'"),
        ImportIssue(9, "chosen", "no assistant message (the answer)"),
        ImportIssue(10, "chosen[1].content", "the answer is empty"),
        ImportIssue(11, "rejected", "is the same answer as 'chosen'"),
        ImportIssue(12, "prompt", "missing field 'prompt' (and no user message in 'chosen')"),
        ImportIssue(13, "prompt", "the prompt is empty"),
        ImportIssue(15, "prompt", "expected a string, got number"),
    ]
    assert "Imported 3 preference pairs from prefs.jsonl" in report.summary()
    assert "line 6, field 'chosen': expected a list" in report.summary()

    pairs = store.preference_pairs()
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [
        ("Dose of IM adrenaline in adults?", "0.5 mg.", "5 mg."),
        ("Q from the messages?", "Taken from the messages.", "Other."),
        ("Первая помощь при ожоге? 🩹", "Охладить водой.", "Смазать маслом."),
    ]
    assert {(p.source, p.split, p.annotator, p.prompt_id, p.import_batch_id) for p in pairs} == {
        ("imported", "train", None, None, report.batch_id)
    }
    stored = store.db.execute(
        "SELECT chosen_messages_json, rejected_messages_json FROM imported_pairs ORDER BY id LIMIT 1"
    ).fetchone()
    assert [json.loads(v) for v in stored] == [GOOD[0]["chosen"], GOOD[0]["rejected"]]  # reproducible
    [batch] = store.import_batches(kind="pairs")
    assert (batch.id, batch.kind, batch.format, batch.n_imported, batch.source_path) == (
        report.batch_id, "pairs", "jsonl", 3, str(path.absolute()),
    )  # fmt: skip
    assert store.import_batches(kind="questions") == []


def test_reimport_adds_nothing(store: Store, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", GOOD + [GOOD[0]])  # a repeat inside the file too
    first = import_preferences(store, path)
    assert (first.imported, first.duplicates) == (2, 1)
    again = import_preferences(store, path)
    assert (again.imported, again.duplicates, again.batch_id) == (0, 3, None)
    assert _count(store, "imported_pairs") == 2 and len(store.import_batches()) == 1


def test_same_texts_with_other_messages_are_distinct(store: Store, tmp_path: Path) -> None:
    """The identity is the prompt and both full message lists, so an export can reproduce each record."""
    with_system = json.loads(json.dumps(GOOD[0]))
    with_system["chosen"].insert(0, {"role": "system", "content": "Be brief."})
    path = _write_jsonl(tmp_path / "p.jsonl", [GOOD[0], with_system])
    assert import_preferences(store, path).imported == 2


@pytest.mark.parametrize("when", ["reading", "writing"])
def test_cancel_writes_nothing(store: Store, tmp_path: Path, when: str) -> None:
    path = _write_jsonl(
        tmp_path / "many.jsonl", [_record(f"Q{i}?", f"good {i}", f"bad {i}") for i in range(600)]
    )
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        # Reading checks every 256 records (twice for 600), then once before writing.
        return calls["n"] >= (2 if when == "reading" else 4)

    report = import_preferences(store, path, cancel=cancel)
    assert report.cancelled and report.imported == 0 and report.batch_id is None
    assert "cancelled: nothing was imported" in report.summary()
    assert _count(store, "imported_pairs") == _count(store, "import_batches") == 0


def test_progress_reaches_the_total(store: Store, tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "many.jsonl", [_record(f"Q{i}?", f"good {i}", f"bad {i}") for i in range(300)]
    )
    seen: list[tuple[int, int]] = []
    import_preferences(store, path, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (256, 300) and seen[-1] == (300, 300)


def test_parquet(store: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [*GOOD, _record("Q?", "same", "same", id="u3")]
    path = tmp_path / "prefs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    report = import_preferences(store, path)
    assert (report.format, report.imported) == ("parquet", 2)
    assert report.errors == [ImportIssue(3, "rejected", "is the same answer as 'chosen'")]
    assert [p.chosen for p in store.preference_pairs()] == ["0.5 mg.", "Охладить водой."]
    assert import_preferences(store, path).imported == 0


def test_datasets_folder(store: Store, tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    folder = tmp_path / "prefs_ds"
    DatasetDict({"train": Dataset.from_list(GOOD[:1]), "test": Dataset.from_list(GOOD[1:])}).save_to_disk(
        str(folder)
    )
    report = import_preferences(store, folder)
    assert (report.format, report.imported, report.errors) == ("datasets", 2, [])
    assert store.count_pairs(PairFilter(sources=("imported",))) == 2


def test_json_array(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "prefs.json"
    path.write_text(json.dumps([GOOD[0], {"prompt": "x"}]), encoding="utf-8")
    report = import_preferences(store, path)
    assert (report.format, report.imported) == ("json", 1)
    assert report.errors == [ImportIssue(2, "chosen", "missing field 'chosen'")]


def test_files_that_cannot_hold_pairs_are_refused(store: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    questions = tmp_path / "questions.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "Q?", "chosen": "x"}]), questions)
    with pytest.raises(StoreImportError, match="no 'rejected' column for preference pairs") as info:
        import_preferences(store, questions)
    assert str(questions) in str(info.value) and "found prompt, chosen" in str(info.value)
    csv_file = tmp_path / "prefs.csv"
    csv_file.write_text("prompt,chosen,rejected\nQ,a,b\n", encoding="utf-8")
    with pytest.raises(StoreImportError, match="CSV cannot hold"):
        import_preferences(store, csv_file)
    with pytest.raises(StoreImportError, match="no such file"):
        import_preferences(store, tmp_path / "missing.jsonl")
    assert _count(store, "import_batches") == 0


def test_batches_of_both_kinds_are_listed(store: Store, tmp_path: Path) -> None:
    questions = _write_jsonl(tmp_path / "q.jsonl", [{"question": "What is BP?"}])
    question_batch = import_questions(store, questions).batch_id
    pair_batch = import_preferences(store, _write_jsonl(tmp_path / "p.jsonl", GOOD)).batch_id
    assert [(b.id, b.kind) for b in store.import_batches()] == [
        (pair_batch, "pairs"),
        (question_batch, "questions"),
    ]
    assert [b.id for b in store.import_batches("questions")] == [question_batch]
    assert store.count_pairs(PairFilter(import_batch_ids=(question_batch,))) == 0
    assert store.count_pairs(PairFilter(import_batch_ids=(pair_batch,))) == 2
    with pytest.raises(StoreValidationError, match="'answers' is not one of questions, pairs"):
        store.import_batches("answers")
