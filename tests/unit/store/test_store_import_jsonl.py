"""Importing UltraMedical JSONL: exact error reports, dedup, all-or-nothing, progress, cancel, splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medalign_desktop.store import (
    ImportIssue,
    Store,
    StoreImportError,
    StoreValidationError,
    import_questions,
)


def um(question: str, reply: str | None = "A reference answer.", **extra) -> dict:
    """An UltraMedical record: the human turn is the question, the gpt turn the reference answer."""
    turns = [{"from": "human", "value": question}]
    if reply is not None:
        turns.append({"from": "gpt", "value": reply})
    return {"conversations": turns, **extra}


def line(record) -> str:
    return json.dumps(record, ensure_ascii=False)


MCQ = "A 60-year-old man has crushing chest pain. Next step?\nA. Discharge\nB. Antacid\nC. ECG\nD. Wait"

MIXED_LINES = [
    line(um("What causes scurvy?", "Vitamin C deficiency.", id="um-1", type="open", score=4.5)),  # 1 ok
    "",  # 2 empty
    line(um(MCQ, "C. An ECG within 10 minutes.", id=2, type="mcq", answer="C")),  # 3 ok
    '{"id": "um-3", "conversations": [',  # 4 bad JSON
    "   \t",  # 5 empty
    line({"id": "um-4", "type": "open"}),  # 6 no conversations
    line({"id": "um-5", "conversations": "What is sepsis?"}),  # 7 wrong type
    line({"id": "um-6", "conversations": [{"from": "gpt", "value": "An answer without a question"}]}),  # 8
    "[1, 2]",  # 9 not an object
    line(um("What causes scurvy?", "Vitamin C deficiency.", id="um-1-copy")),  # 10 duplicate of line 1
    line(um("Valid text, bad id", id=["x"])),  # 11 id of the wrong type
    line(um("   ")),  # 12 blank question
    line({"conversations": [{"from": "human"}]}),  # 13 turn without value
    '{"conversations": [{"from": "human", "value": "bad \\ud800 surrogate"}]}',  # 14 lone surrogate
    line(
        {
            "conversations": [
                {"from": "system", "value": "Be brief."},
                {"from": "human", "value": "Q15?"},
                {"from": "gpt", "value": "A15."},
            ]
        }
    ),  # 15 ok, system turn ignored  # fmt: skip
    None,  # 16 invalid UTF-8 (written as bytes below)
    line(um("Last line, no newline at the end", None, id="um-17")),  # 17 ok
]

EXPECTED_ERRORS = [
    ImportIssue(4, None, "not valid JSON: Expecting value (column 34)"),
    ImportIssue(6, "conversations", "missing field 'conversations' (or a flat 'question' field)"),
    ImportIssue(7, "conversations", "expected a list of turns, got string"),
    ImportIssue(8, "conversations", "no human turn (the question)"),
    ImportIssue(9, None, "expected a JSON object, got array"),
    ImportIssue(11, "id", "expected a string, got array"),
    ImportIssue(12, "conversations[0].value", "the question is empty"),
    ImportIssue(13, "conversations[0].value", "missing field 'value'"),
    ImportIssue(
        14, "conversations[0].value", "text is not valid Unicode (lone surrogate U+D800 at character 4)"
    ),
    ImportIssue(16, None, "not valid UTF-8 (invalid start byte at byte 13)"),
]


def write_jsonl(path: Path, lines: list[str | None]) -> Path:
    data = b""
    for index, text in enumerate(lines):
        raw = b'{"broken": "\xff\xfe"}' if text is None else text.encode("utf-8")
        data += raw + (b"\n" if index < len(lines) - 1 else b"")
    path.write_bytes(data)
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "ultramedical_mixed.jsonl", MIXED_LINES)


def _prompt_count(store: Store) -> int:
    return store.stats()["prompts"]


def test_mixed_file_exact_report(store: Store, mixed: Path) -> None:
    report = import_questions(store, mixed)
    assert (report.format, report.imported, report.duplicates, report.skipped_empty) == ("jsonl", 4, 1, 2)
    assert report.errors == EXPECTED_ERRORS
    assert report.records == 15 and not report.cancelled and report.batch_id is not None
    assert _prompt_count(store) == 4
    summary = report.summary()
    assert summary.splitlines()[0] == (
        "Imported 4 questions from ultramedical_mixed.jsonl (jsonl); 1 already present, "
        "2 empty lines skipped, 10 invalid."
    )
    assert "  line 7, field 'conversations': expected a list of turns, got string" in summary
    assert "  line 4: not valid JSON: Expecting value (column 34)" in summary


def test_record_fields(store: Store, mixed: Path) -> None:
    import_questions(store, mixed)
    prompts = {p.external_id: p for p in map(store.get_prompt, store.queue(mode="all"))}
    assert set(prompts) == {"um-1", "2", None, "um-17"}
    scurvy, mcq, last = prompts["um-1"], prompts["2"], prompts["um-17"]
    assert (scurvy.text, scurvy.reference_answer, scurvy.answer_key, scurvy.options) == (
        "What causes scurvy?",
        "Vitamin C deficiency.",
        None,
        None,
    )
    assert mcq.text == MCQ and mcq.answer_key == "C"
    assert mcq.options == {"A": "Discharge", "B": "Antacid", "C": "ECG", "D": "Wait"}
    assert mcq.reference_answer == "C. An ECG within 10 minutes."
    assert last.reference_answer is None
    assert prompts[None].text == "Q15?" and prompts[None].reference_answer == "A15."
    assert scurvy.source == "import:ultramedical_mixed.jsonl" and scurvy.split == "train"
    batch = store.db.execute("SELECT * FROM import_batches").fetchall()
    assert len(batch) == 1 and scurvy.import_batch_id == batch[0][0]


def test_import_batch_row(store: Store, mixed: Path) -> None:
    import hashlib

    report = import_questions(store, mixed)
    row = store.db["import_batches"].get(report.batch_id)
    assert row["source_path"] == str(mixed.absolute())
    assert row["sha256"] == hashlib.sha256(mixed.read_bytes()).hexdigest()
    assert (row["format"], row["n_records"], row["n_imported"], row["n_duplicates"]) == ("jsonl", 15, 4, 1)
    assert (row["n_errors"], row["n_skipped_empty"]) == (10, 2)


def test_importing_twice_adds_nothing(store: Store, mixed: Path) -> None:
    first = import_questions(store, mixed)
    second = import_questions(store, mixed)
    assert (second.imported, second.duplicates, second.errors) == (0, 5, first.errors)
    assert second.batch_id is None
    assert _prompt_count(store) == 4
    assert store.db.execute("SELECT count(*) FROM import_batches").fetchone()[0] == 1


def test_answer_key_variants(store: Store, tmp_path: Path) -> None:
    records = [
        um("Q1\nA. one\nB. two", answer="(b)", id="lower-paren"),
        um("Q2\n(A) one\n(B) two", answer="two", id="by-text"),
        um("Q3", answer="Some free text", id="no-ref", type="open")
        | {"conversations": [{"from": "user", "value": "Q3"}]},  # fmt: skip
        um("Q4", answer="Paris", id="exam", type="Exam"),
    ]
    path = write_jsonl(tmp_path / "keys.jsonl", [line(r) for r in records])
    assert import_questions(store, path).imported == 4
    got = {p.external_id: p for p in map(store.get_prompt, store.queue(mode="all"))}
    assert got["lower-paren"].answer_key == "B"
    assert (got["by-text"].answer_key, got["by-text"].options) == ("B", {"A": "one", "B": "two"})
    assert (got["no-ref"].answer_key, got["no-ref"].reference_answer) == (None, "Some free text")
    assert got["exam"].answer_key == "Paris"


def test_unicode_and_huge_texts_are_kept_exactly(store: Store, tmp_path: Path) -> None:
    question = "😷🫀 Douleur thoracique — ألم في الصدر — כאב בחזה — n\u0303a\u0301 — \x00 — 𠜎 " * 3
    answer = "𝔉𝔢𝔳𝔢𝔯 " + "x" * 99_000 + " \u202eRTL-override\u202c \r\n end"  # just under the limit
    path = write_jsonl(tmp_path / "unicode.jsonl", [line(um(question, answer, id="🆔"))])
    report = import_questions(store, path)
    assert report.imported == 1, report.summary()
    prompt = store.get_prompt(store.queue()[0])
    assert prompt.text == question and prompt.reference_answer == answer and prompt.external_id == "🆔"
    assert import_questions(store, path).duplicates == 1  # the same big record is recognised again


def test_byte_order_mark_and_crlf(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + line(um("Q with BOM")).encode() + b"\r\n\r\n" + line(um("Q2")).encode()
    )
    report = import_questions(store, path)
    assert (report.imported, report.skipped_empty, report.errors) == (2, 1, [])


def test_json_null_line_is_an_error_not_an_empty_line(store: Store, tmp_path: Path) -> None:
    report = import_questions(store, write_jsonl(tmp_path / "n.jsonl", ["null"]))
    assert report.errors == [ImportIssue(1, None, "expected a JSON object, got null")]


def _many(tmp_path: Path, n: int = 1000) -> Path:
    return write_jsonl(tmp_path / "many.jsonl", [line(um(f"Question {i}?", id=f"q{i}")) for i in range(n)])


def test_progress_is_reported_to_the_end(store: Store, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    import_questions(store, _many(tmp_path), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (1000, 1000)
    assert len(calls) >= 3 and all(total == 1000 for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.parametrize("cancel_on_call", [1, 4, 5])
def test_cancel_writes_nothing(store: Store, tmp_path: Path, cancel_on_call: int) -> None:
    """Call 1 is during reading; 4 is the check between reading and writing; 5 is inside the transaction."""
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) >= cancel_on_call

    report = import_questions(store, _many(tmp_path), cancel=cancel)
    assert report.cancelled and report.imported == 0 and report.batch_id is None
    assert len(calls) == cancel_on_call
    assert _prompt_count(store) == 0
    assert store.db.execute("SELECT count(*) FROM import_batches").fetchone()[0] == 0
    assert report.summary() == "Import of many.jsonl cancelled: nothing was imported."
    assert import_questions(store, tmp_path / "many.jsonl").imported == 1000  # and it works afterwards


def test_held_out_fraction_is_seeded(tmp_path: Path) -> None:
    path = _many(tmp_path)

    def held_out(seed: int, name: str) -> set[str]:
        with Store.open(tmp_path / name) as store:
            report = import_questions(store, path, held_out_fraction=0.2, seed=seed)
            assert report.imported == 1000
            ids = set(store.queue(mode="all", include_held_out=True)) - set(store.queue(mode="all"))
            return {store.get_prompt(i).external_id for i in ids}

    first, again, other = held_out(7, "a.sqlite"), held_out(7, "b.sqlite"), held_out(8, "c.sqlite")
    assert 150 <= len(first) <= 250
    assert first == again and first != other


def test_split_override(store: Store, tmp_path: Path) -> None:
    import_questions(store, _many(tmp_path, 10), split="held_out")
    assert store.queue() == [] and store.stats()["prompts_held_out"] == 10


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"split": "test"}, "split"),
        ({"held_out_fraction": 1.5}, "held_out_fraction"),
        ({"held_out_fraction": "0.1"}, "held_out_fraction"),
        ({"held_out_fraction": 0.1, "split": "train"}, "held_out_fraction"),
    ],
)
def test_bad_options(store: Store, mixed: Path, kwargs, field) -> None:
    with pytest.raises(StoreValidationError) as info:
        import_questions(store, mixed, **kwargs)
    assert info.value.field == field


def test_missing_file_and_unknown_format(store: Store, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(StoreImportError, match="no such file or folder") as info:
        import_questions(store, missing)
    assert str(missing) in str(info.value)
    text = tmp_path / "questions.txt"
    text.write_text("What is it?")
    with pytest.raises(StoreImportError, match=r"unknown format '\.txt'") as info:
        import_questions(store, text)
    assert str(text) in str(info.value)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(StoreImportError, match="not a datasets folder") as info:
        import_questions(store, folder)
    assert str(folder) in str(info.value)
    assert isinstance(info.value, ImportError)  # callers may catch it as an ImportError-like error


def test_empty_file(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = import_questions(store, path)
    assert (report.imported, report.errors, report.batch_id) == (0, [], None)
    assert report.summary().startswith("Imported 0 questions from empty.jsonl")
