"""`medalign export` and `medalign import-pairs`: files written, filters applied, errors as one line (exit 2)."""

from __future__ import annotations

import json

import pytest

from medalign_desktop import cli
from medalign_desktop.store import Store
from medalign_desktop.store.rows import PairFilter


@pytest.fixture
def db(tmp_path):
    """A database with 4 edits (two annotators; one on a held-out question, one flagged) and one accept."""
    path = tmp_path / "work.sqlite"
    with Store.open(path) as store:
        for i in range(4):
            pid = store.add_prompt(f"Question {i}: Patient Jane Doe, DOB 03/04/1956 — what dose?")
            gen = store.add_generation(pid, f"Answer {i}.", model_version="base", settings={})
            flags = ["privacy"] if i == 0 else []
            store.record_verdict(gen, "edit", annotator="alice" if i % 2 else "bob",
                                 edited_text=f"Better answer {i}.", safety_flags=flags)  # fmt: skip
            if i == 3:
                store.set_split([pid], "held_out")
        other = store.add_generation(pid, "Another answer.", model_version="v2", settings={})
        store.record_verdict(other, "accept", annotator="carol")
    return path


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_pairs_jsonl_with_progress_and_summary(db, tmp_path, capsys):
    dest = tmp_path / "out" / "pairs.jsonl"
    assert cli.main(["export", "pairs", str(dest), "--db", str(db)]) == 0
    captured = capsys.readouterr()
    assert "Exported 3 pairs records" in captured.out and "Manifest:" in captured.out
    assert "Exporting 3/3" in captured.err
    assert len(lines(dest)) == 3 and (tmp_path / "out" / "pairs.jsonl.manifest.json").exists()


def test_export_filters_and_formats(db, tmp_path, capsys):
    import datasets

    parquet = tmp_path / "alice.parquet"  # the suffix picks the format
    assert cli.main(["export", "pairs", str(parquet), "--db", str(db), "--annotator", "alice",
                     "--include-held-out"]) == 0  # fmt: skip
    rows = datasets.load_dataset("parquet", data_files=str(parquet), split="train")
    assert sorted(rows["id"]) == ["edit-2", "edit-4"]
    assert set(rows["annotator"]) == {"alice"}

    folder = tmp_path / "flagged"
    assert cli.main(["export", "pairs", str(folder), "--format", "datasets", "--db", str(db),
                     "--flag", "privacy", "--source", "edit"]) == 0  # fmt: skip
    flagged = datasets.load_from_disk(str(folder))
    assert len(flagged) == 1 and flagged[0]["safety_flags"] == ["privacy"]

    dest = tmp_path / "unflagged.jsonl"
    assert cli.main(["export", "pairs", str(dest), "--db", str(db), "--exclude-flagged",
                     "--from", "2000-01-01", "--to", "2999-12-31", "--model-version", "base"]) == 0  # fmt: skip
    assert len(lines(dest)) == 2
    manifest = json.loads((tmp_path / "unflagged.jsonl.manifest.json").read_text())
    assert manifest["filters"]["exclude_flagged"] is True and manifest["filters"]["date_to"] == "2999-12-31"


def test_export_sft_deidentified(db, tmp_path, capsys):
    dest = tmp_path / "sft.jsonl"
    assert cli.main(["export", "sft", str(dest), "--db", str(db), "--deidentify"]) == 0
    out = capsys.readouterr().out
    assert "Exported 3 sft records" in out and "de-identification masked 6" in out
    records = lines(dest)
    assert {r["source"] for r in records} == {"edit"}  # the accept is on the held-out question
    assert all(r["conversations"][0]["value"].startswith("Question") for r in records)
    assert "Jane Doe" not in dest.read_text() and "[NAME]" in dest.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["x.jsonl", "--from", "last week"], "date_from"),
        ([".", "--format", "jsonl"], "is a folder"),
    ],
)
def test_export_errors_are_one_line(db, tmp_path, capsys, argv, message):
    dest, *options = argv
    code = cli.main(["export", "pairs", str(tmp_path / dest), "--db", str(db), *options])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    assert err.strip().splitlines()[-1].startswith("error: ") and message in err and "Traceback" not in err


def test_sft_refuses_pair_only_options(db, tmp_path, capsys):
    assert cli.main(["export", "sft", str(tmp_path / "s.jsonl"), "--db", str(db), "--source", "edit"]) == 2
    assert "apply to `medalign export pairs` only" in capsys.readouterr().err
    assert not (tmp_path / "s.jsonl").exists()


def test_import_pairs_round_trip(db, tmp_path, capsys):
    dest = tmp_path / "pairs.jsonl"
    assert cli.main(["export", "pairs", str(dest), "--db", str(db)]) == 0
    fresh = tmp_path / "fresh.sqlite"
    assert cli.main(["import-pairs", str(dest), "--db", str(fresh)]) == 0
    assert "3" in capsys.readouterr().out
    with Store.open(db) as old, Store.open(fresh) as new:
        before = {(p.prompt, p.chosen, p.rejected) for p in old.preference_pairs()}
        after = {
            (p.prompt, p.chosen, p.rejected) for p in new.preference_pairs(PairFilter(sources=("imported",)))
        }
    assert before == after and len(after) == 3
    # the same file again adds nothing
    assert cli.main(["import-pairs", str(dest), "--db", str(fresh)]) == 0
    with Store.open(fresh) as new:
        assert new.count_pairs() == 3


def test_import_pairs_errors(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert cli.main(["import-pairs", str(missing), "--db", str(tmp_path / "x.sqlite")]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err and "Traceback" not in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "not a list", "rejected": []}\n')
    assert cli.main(["import-pairs", str(bad), "--db", str(tmp_path / "x.sqlite")]) == 1
    assert "line 1" in capsys.readouterr().out
