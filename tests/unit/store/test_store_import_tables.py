"""Importing CSV, Parquet, JSON arrays and ``datasets`` folders (fixtures are built in each test)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from medalign_desktop.store import ImportIssue, Store, StoreImportError, import_questions

BIG = "ß" * 99_000 + "🩺" * 500  # under the 100,000-character limit, but > 128 KiB of UTF-8 in one cell
ULTRA = [
    {"id": "p1", "type": "mcq", "answer": "B", "score": 3.0,
     "conversations": [{"from": "human", "value": "Q1?\nA. x\nB. y"}, {"from": "gpt", "value": "B. y"}]},
    {"id": "p2", "type": "open", "answer": "", "score": 5.0,
     "conversations": [{"from": "human", "value": BIG}, {"from": "gpt", "value": "עברית 👍"}]},
    {"id": "p3", "type": "open", "answer": "", "score": 1.0,
     "conversations": [{"from": "gpt", "value": "no question"}]},
]  # fmt: skip


def _by_external_id(store: Store) -> dict:
    ids = store.queue(mode="all", include_held_out=True)
    return {p.external_id: p for p in map(store.get_prompt, ids)}


def test_csv(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "questions.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "question", "answer", "answer_key", "options", "split"])
        writer.writerow(["c1", "Multi-line\nquestion\r\nwith CRLF?", "Ref 1", "", "", ""])  # lines 2-4
        writer.writerow(["c2", "Which? A. a B. b", "", "A", '["a", "b"]', "test"])  # line 5
        writer.writerow(["c3", "   ", "ref", "", "", ""])  # line 6: blank question
        writer.writerow([])  # line 7: empty
        writer.writerow(["c4", "Too many", "cells", "", "", "", "extra"])  # line 8
        writer.writerow(["c5", "Bad options", "", "", "[1,", ""])  # line 9
        writer.writerow(["c6", BIG, "0", "", "", "train"])  # line 10
        writer.writerow(["c7", "Bad split", "", "", "", "later"])  # line 11
    report = import_questions(store, path)
    assert (report.format, report.imported, report.skipped_empty) == ("csv", 3, 1)
    assert report.errors == [
        ImportIssue(6, "question", "the question is empty"),
        ImportIssue(8, None, "has 7 cells but the header has 6"),
        ImportIssue(9, "options", "not valid JSON: Expecting value"),
        ImportIssue(11, "split", "'later' is not a known split (train, held_out, test, validation)"),
    ]
    got = _by_external_id(store)
    assert got["c1"].text == "Multi-line\nquestion\r\nwith CRLF?" and got["c1"].reference_answer == "Ref 1"
    assert (got["c2"].answer_key, got["c2"].options, got["c2"].split) == ("A", ["a", "b"], "held_out")
    assert got["c6"].text == BIG and got["c6"].reference_answer == "0"
    assert import_questions(store, path).imported == 0


def test_csv_prompt_and_reference_columns(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "alt.csv"
    path.write_text("prompt,reference\nWhat is BP?,Blood pressure\n", encoding="utf-8-sig")
    assert import_questions(store, path).imported == 1
    prompt = store.get_prompt(store.queue()[0])
    assert (prompt.text, prompt.reference_answer) == ("What is BP?", "Blood pressure")


def test_csv_without_a_question_column(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("title,body\na,b\n", encoding="utf-8")
    with pytest.raises(StoreImportError, match="no question column") as info:
        import_questions(store, path)
    assert str(path) in str(info.value) and "found title, body" in str(info.value)


def test_csv_that_is_not_utf8(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("question\nfièvre\n".encode("latin-1"))
    with pytest.raises(StoreImportError, match="is not UTF-8; it looks like Windows-125") as info:
        import_questions(store, path)
    assert str(path) in str(info.value)


def test_parquet_ultramedical_shape(store: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "ultra.parquet"
    pq.write_table(pa.Table.from_pylist(ULTRA), path)
    report = import_questions(store, path)
    assert (report.format, report.imported) == ("parquet", 2)
    assert report.errors == [ImportIssue(3, "conversations", "no human turn (the question)")]
    got = _by_external_id(store)
    assert (got["p1"].answer_key, got["p1"].options) == ("B", {"A": "x", "B": "y"})
    assert got["p2"].text == BIG and got["p2"].reference_answer == "עברית 👍"


def test_parquet_flat_from_pandas(store: Store, tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "flat.parquet"
    frame = pd.DataFrame({
        "question": ["Q-a", None, "Q-c"],
        "answer": ["A-a", "A-b", None],
        "id": [10, 11, 12],
    })  # fmt: skip
    frame.to_parquet(path)
    report = import_questions(store, path)
    assert report.imported == 2
    assert report.errors == [
        ImportIssue(2, "conversations", "missing field 'conversations' (or a flat 'question' field)")
    ]
    got = _by_external_id(store)
    assert (got["10"].text, got["10"].reference_answer, got["12"].reference_answer) == ("Q-a", "A-a", None)


def test_corrupt_parquet(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(StoreImportError, match="not a readable Parquet file") as info:
        import_questions(store, path)
    assert str(path) in str(info.value)


def test_datasets_folder(store: Store, tmp_path: Path) -> None:
    from datasets import Dataset

    folder = tmp_path / "ultra_ds"
    Dataset.from_list(ULTRA).save_to_disk(str(folder))
    calls: list[tuple[int, int]] = []
    report = import_questions(store, folder, progress=lambda d, t: calls.append((d, t)))
    assert (report.format, report.imported, len(report.errors), calls[-1]) == ("datasets", 2, 1, (3, 3))
    assert _by_external_id(store)["p2"].text == BIG
    assert import_questions(store, folder).duplicates == 2


def test_datasets_dict_test_split_is_held_out(store: Store, tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    folder = tmp_path / "dict_ds"
    DatasetDict({
        "train": Dataset.from_list([{"question": "train q", "answer": "a"}]),
        "test": Dataset.from_list([{"question": "test q", "answer": "b"}]),
    }).save_to_disk(str(folder))  # fmt: skip
    assert import_questions(store, folder).imported == 2
    splits = {store.get_prompt(i).text: store.get_prompt(i).split for i in store.queue(include_held_out=True)}
    assert splits == {"train q": "train", "test q": "held_out"}


def test_json_array(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_text(json.dumps([ULTRA[0], "not a record", {"question": "flat"}]), encoding="utf-8")
    report = import_questions(store, path)
    assert (report.format, report.imported) == ("json", 2)
    assert report.errors == [ImportIssue(2, None, "expected a JSON object, got string")]


def test_json_lines_with_json_extension(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text(json.dumps(ULTRA[0]) + "\n" + json.dumps({"question": "flat"}) + "\n", encoding="utf-8")
    report = import_questions(store, path)
    assert (report.format, report.imported) == ("jsonl", 2)
