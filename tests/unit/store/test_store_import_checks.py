"""Strict reading (issue 19): CSV quoting and cell counts, encodings, size limits, empty files, ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medalign_desktop.store import ImportIssue, Store, StoreImportError, import_questions
from medalign_desktop.store.imports.preferences import import_preferences
from medalign_desktop.store.validation import MAX_TEXT_CHARS


def _texts(store: Store) -> list[str]:
    return [store.get_prompt(i).text for i in store.queue(mode="all", include_held_out=True)]


def _jsonl(path: Path, records: list[dict], encoding: str = "utf-8") -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding=encoding)
    return path


# CSV ------------------------------------------------------------------------------------------------


def test_csv_unterminated_quote_refuses_the_file_naming_the_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text('question,answer\nFirst?,one\n"Second, open quote,two\nThird?,three\nFourth?,four\n')
    with pytest.raises(StoreImportError) as info:
        import_questions(store, path)
    message = str(info.value)
    assert str(path) in message and "line 3:" in message and "never closed" in message
    assert "nothing was imported" in message and _texts(store) == []


def test_csv_broken_quote_in_the_middle_refuses_the_file(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text('question,answer\nFirst?,one\n"Sec"ond?,two\nThird?,three\n')
    with pytest.raises(StoreImportError, match="line 3: broken quoting"):
        import_questions(store, path)
    assert _texts(store) == []


def test_csv_wrong_number_of_cells_is_reported_and_the_rest_imported(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_text(
        "question,answer,split\n"
        "Too few?,x\n"  # 2
        "Fine?,y,train\n"  # 3
        "Too,many,cells,here\n"  # 4
        '"Multi\nline",z\n'  # 5-6: a quoted newline and a missing cell
        "Also fine?,w,test\n"  # 7
    )
    report = import_questions(store, path)
    assert report.errors == [
        ImportIssue(2, None, "has 2 cells but the header has 3"),
        ImportIssue(4, None, "has 4 cells but the header has 3"),
        ImportIssue(
            5, None, "has 2 cells but the header has 3 (the record runs over lines 5-6: check its quotes)"
        ),
    ]
    assert sorted(_texts(store)) == ["Also fine?", "Fine?"]


# encodings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_bom_are_decoded(store: Store, tmp_path: Path, encoding: str) -> None:
    records = [{"question": "Fièvre et toux ?", "id": "a"}, {"question": "🩺 ألم في الصدر", "id": "b"}]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    bom = "\ufeff" if encoding == "utf-16-be" else ""  # utf-16 / utf-32 write their own BOM
    (tmp_path / "q.jsonl").write_bytes((bom + data).encode(encoding))
    report = import_questions(store, tmp_path / "q.jsonl")
    assert (report.imported, report.errors) == (2, []), report.summary()
    assert sorted(_texts(store)) == sorted(r["question"] for r in records)


def test_utf16_csv_and_json_array_are_decoded(store: Store, tmp_path: Path) -> None:
    (tmp_path / "q.csv").write_text("question,answer\nFièvre ?,oui\n", encoding="utf-16")
    (tmp_path / "q.json").write_text(json.dumps([{"question": "Ça va ?"}]), encoding="utf-16")
    assert import_questions(store, tmp_path / "q.csv").imported == 1
    assert import_questions(store, tmp_path / "q.json").imported == 1


def test_utf8_bom_is_accepted(store: Store, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "q.jsonl", [{"question": "Œdème ?"}], encoding="utf-8-sig")
    assert import_questions(store, path).imported == 1


def test_latin1_file_gets_one_message_naming_the_encoding(store: Store, tmp_path: Path) -> None:
    records = [{"question": f"Fièvre numéro {i} : étiologie ?"} for i in range(50)]
    path = _jsonl(tmp_path / "latin.jsonl", records, encoding="cp1252")
    with pytest.raises(StoreImportError) as info:
        import_questions(store, path)
    message = str(info.value)
    assert (
        str(path) in message and "not UTF-8; it looks like" in message and "Nothing was imported" in message
    )
    assert message.count("\n") == 0 and _texts(store) == []


def test_utf16_without_a_bom_is_refused_by_name(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "nobom.jsonl"
    path.write_bytes(('{"question": "Hello?"}\n' * 20).encode("utf-16-le"))
    with pytest.raises(StoreImportError, match="not UTF-8; it looks like UTF-16"):
        import_questions(store, path)


def test_a_few_damaged_lines_in_utf8_are_reported_one_by_one(store: Store, tmp_path: Path) -> None:
    good = [json.dumps({"question": f"Q{i} é?"}).encode() for i in range(30)]
    (tmp_path / "q.jsonl").write_bytes(b"\n".join(good[:10] + [b'{"question": "\xff"}'] + good[10:]) + b"\n")
    report = import_questions(store, tmp_path / "q.jsonl")
    assert report.imported == 30 and [e.line for e in report.errors] == [11]


# limits ---------------------------------------------------------------------------------------------


def test_a_question_over_the_limit_is_refused_by_line_and_field(store: Store, tmp_path: Path) -> None:
    huge = "x" * (MAX_TEXT_CHARS + 1)
    records = [
        {"question": "Short?"},
        {"conversations": [{"from": "human", "value": huge}]},
        {"question": huge},
        {"question": "Fine, with a long answer?", "answer": "y" * (MAX_TEXT_CHARS + 5)},
        {"question": "x" * MAX_TEXT_CHARS},
    ]
    report = import_questions(store, _jsonl(tmp_path / "big.jsonl", records))
    limit = f"the limit is {MAX_TEXT_CHARS:,}"
    assert [(e.line, e.field) for e in report.errors] == [
        (2, "conversations[0].value"),
        (3, "question"),
        (4, "answer"),
    ]
    assert all(f"is {MAX_TEXT_CHARS + 1:,} characters long; {limit}" in e.message for e in report.errors[:2])
    assert report.imported == 2 and "x" * MAX_TEXT_CHARS in _texts(store)


def test_a_preference_prompt_over_the_limit_is_refused(store: Store, tmp_path: Path) -> None:
    def pair(prompt: str) -> dict:
        return {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad"}],
        }

    path = _jsonl(tmp_path / "pairs.jsonl", [pair("Q?"), pair("p" * (MAX_TEXT_CHARS + 1))])
    report = import_preferences(store, path)
    assert report.imported == 1 and [(e.line, e.field) for e in report.errors] == [(2, "prompt")]


# empty files and duplicate ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "extra"),
    [("e.jsonl", "", ""), ("b.jsonl", "\n  \n\n", " (only blank lines)"), ("h.csv", "question,answer\n", ""),
     ("a.json", "[]", "")],
)  # fmt: skip
def test_a_file_without_questions_warns(
    store: Store, tmp_path: Path, name: str, content: str, extra: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    report = import_questions(store, path)
    assert report.imported == 0 and not report.errors
    assert [w.message for w in report.warnings] == [f"{name} holds no questions{extra}"]
    assert f"1 warning:\n  {name} holds no questions" in report.summary()


def test_empty_pair_file_warns(store: Store, tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text("")
    report = import_preferences(store, tmp_path / "p.jsonl")
    assert [w.message for w in report.warnings] == ["p.jsonl holds no preference pairs"]


def test_one_id_for_different_questions_warns_naming_the_lines(store: Store, tmp_path: Path) -> None:
    store.add_prompt("Stored question?", external_id="db-1")
    records = [
        {"id": "q1", "question": "First?"},  # 1
        {"id": "q2", "question": "Second?"},  # 2
        {"id": "q1", "question": "First?"},  # 3: same id, same question: no warning (a duplicate)
        {"question_id": "q1", "question": "Not the first!"},  # 4
        {"id": "db-1", "question": "Another question?"},  # 5: the id is stored for another question
    ]
    report = import_questions(store, _jsonl(tmp_path / "ids.jsonl", records))
    assert report.imported == 4 and report.duplicates == 1
    assert [(w.line, w.field) for w in report.warnings] == [(4, "id"), (5, "id")]
    assert "already used on line 1 for a different question" in report.warnings[0].message
    assert "'db-1' is already stored with a different question (prompt 1)" in report.warnings[1].message
    assert "line 4, field 'id'" in report.summary()
    again = import_questions(store, tmp_path / "ids.jsonl")  # the file's own ids in the database: no warning
    assert (again.imported, [(w.line, w.field) for w in again.warnings]) == (0, [(4, "id"), (5, "id")])
