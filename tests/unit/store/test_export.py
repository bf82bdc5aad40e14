"""Exports: each format loads back with `datasets`, the manifest describes the files, writes are atomic."""

from __future__ import annotations

import json
import stat
from datetime import date

import pytest

from medalign_desktop.store import Store, StoreError, StoreValidationError
from medalign_desktop.store.exports import export as export_module
from medalign_desktop.store.exports.export import (
    EXPORT_FORMAT_VERSION,
    ExportCancelled,
    checksum,
    export_pairs,
    export_sft,
    manifest_path,
)
from medalign_desktop.store.rows import PairFilter

ALL = PairFilter()
DEST_NAMES = {"jsonl": "pairs.jsonl", "parquet": "pairs.parquet", "datasets": "pairs_ds"}


def seed(store: Store, n: int = 6) -> list[int]:
    """n questions, each with an edited answer (a pair) and an accepted second answer; returns prompt ids."""
    prompt_ids = []
    for i in range(n):
        pid = store.add_prompt(f"Question {i}: what dose of adrenaline for anaphylaxis?")
        first = store.add_generation(pid, f"Original answer {i}.", model_version="base", settings={})
        store.record_verdict(
            first, "edit", annotator="alice" if i % 2 else "bob", edited_text=f"Better answer {i}: 0.5 mg IM.",
            safety_flags=["unsafe_advice"] if i == 0 else [],
        )  # fmt: skip
        second = store.add_generation(pid, f"Second answer {i}.", model_version="v2", settings={})
        store.record_verdict(second, "accept", annotator="carol")
        prompt_ids.append(pid)
    return prompt_ids


def load(path, fmt):
    import datasets

    if fmt == "datasets":
        return datasets.load_from_disk(str(path))
    return datasets.load_dataset("json" if fmt == "jsonl" else "parquet", data_files=str(path), split="train")


def as_triples(rows) -> set[tuple[str, str, str, str]]:
    """(id, question, chosen, rejected) of each exported row, checking the message lists' shape."""
    triples = set()
    for row in rows:
        chosen, rejected = row["chosen"], row["rejected"]
        assert [m["role"] for m in chosen] == [m["role"] for m in rejected] == ["user", "assistant"]
        assert chosen[0]["content"] == rejected[0]["content"]
        triples.add((row["id"], chosen[0]["content"], chosen[1]["content"], rejected[1]["content"]))
    return triples


def store_triples(store: Store, filters: PairFilter = ALL) -> set[tuple[str, str, str, str]]:
    return {(p.key, p.prompt, p.chosen, p.rejected) for p in store.preference_pairs(filters)}


@pytest.fixture
def out(tmp_path):
    """An empty folder for the exports (the store's database lives elsewhere under tmp_path)."""
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "datasets"])
def test_each_format_loads_back_with_datasets(store, out, fmt):
    seed(store)
    dest = out / "out" / DEST_NAMES[fmt]
    report = export_pairs(store, dest, fmt=fmt)
    assert report.path == dest and report.fmt == fmt and report.kind == "pairs"
    assert report.n_records == 6 and report.counts_by_source["edit"] == 6 and report.n_masked == {}
    rows = load(dest, fmt)
    assert len(rows) == 6
    assert as_triples(rows) == store_triples(store)
    first = next(row for row in rows if row["id"] == report_id_of_flagged(store))
    assert first["source"] == "edit" and first["safety_flags"] == ["unsafe_advice"]
    assert first["annotator"] == "bob" and first["chosen_version"] == "base" and first["split"] == "train"
    assert "prompt" not in rows.column_names  # a string prompt would break TRL 1.16 (see export.py)
    assert not list(dest.parent.glob("*.tmp-*"))


def report_id_of_flagged(store: Store) -> str:
    return next(p.key for p in store.preference_pairs() if p.safety_flags)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "datasets"])
def test_manifest_and_checksum(store, out, fmt):
    seed(store)
    dest = out / DEST_NAMES[fmt]
    filters = PairFilter(date_from=date(2020, 1, 1), annotator="alice")
    report = export_pairs(store, dest, fmt=fmt, filters=filters)
    assert report.manifest_path == manifest_path(dest) == out / f"{dest.name}.manifest.json"
    manifest = json.loads(report.manifest_path.read_text())
    assert manifest["kind"] == "pairs" and manifest["format"] == fmt and manifest["n_records"] == 3
    assert manifest["export_format_version"] == EXPORT_FORMAT_VERSION
    assert manifest["store_schema_version"] == store.schema_version
    assert manifest["filters"]["annotator"] == "alice" and manifest["filters"]["date_from"] == "2020-01-01"
    assert manifest["counts_by_source"] == report.counts_by_source == {
        "edit": 3, "comparison": 0, "reject": 0, "imported": 0,
    }  # fmt: skip
    assert manifest["sha256"] == report.sha256 == checksum(dest)[0]
    assert manifest["deidentified"] is False and manifest["app_version"] and manifest["created_at"]
    if fmt == "datasets":
        assert {f["name"] for f in manifest["files"]} >= {"state.json", "dataset_info.json"}
        assert not (dest / "manifest.json").exists()
    # a changed byte changes the checksum
    target = dest if fmt != "datasets" else dest / manifest["files"][0]["name"]
    target.write_bytes(target.read_bytes() + b" ")
    assert checksum(dest)[0] != manifest["sha256"]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "datasets"])
def test_private_modes(store, out, fmt):
    seed(store, 2)
    dest = out / DEST_NAMES[fmt]
    report = export_pairs(store, dest, fmt=fmt)
    assert stat.S_IMODE(report.manifest_path.stat().st_mode) == 0o600
    if fmt == "datasets":
        assert stat.S_IMODE(dest.stat().st_mode) == 0o700
        files = [p for p in dest.rglob("*") if p.is_file()]
        assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    else:
        assert stat.S_IMODE(dest.stat().st_mode) == 0o600


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "datasets"])
def test_cancel_leaves_nothing_and_keeps_the_old_export(store, out, monkeypatch, fmt):
    seed(store, 5)
    monkeypatch.setattr(export_module, "BATCH", 2)
    dest = out / DEST_NAMES[fmt]
    fresh = out / ("fresh" + DEST_NAMES[fmt])
    with pytest.raises(ExportCancelled, match=str(fresh)):
        export_pairs(store, fresh, fmt=fmt, cancel=lambda: True)
    assert list(out.iterdir()) == []

    old = export_pairs(store, dest, fmt=fmt, filters=PairFilter(annotator="bob"))
    old_manifest = old.manifest_path.read_bytes()
    calls = []

    def cancel_after_first_batch() -> bool:
        calls.append(1)
        return len(calls) > 1

    seen = []
    with pytest.raises(ExportCancelled):
        export_pairs(
            store, dest, fmt=fmt, cancel=cancel_after_first_batch, progress=lambda d, t: seen.append(d)
        )
    assert seen[-1] == 2  # one batch was written before the cancel
    assert checksum(dest)[0] == old.sha256 and old.manifest_path.read_bytes() == old_manifest
    assert sorted(p.name for p in out.iterdir()) == sorted([dest.name, old.manifest_path.name])


def test_an_error_mid_way_removes_the_temporary_and_keeps_the_old_file(store, out, monkeypatch):
    seed(store, 5)
    monkeypatch.setattr(export_module, "BATCH", 2)
    dest = out / "pairs.jsonl"
    dest.write_text("old contents\n")

    def broken(done: int, total: int) -> None:
        if done >= 2:
            raise OSError(28, "No space left on device")

    with pytest.raises(StoreError, match="No space left"):
        export_pairs(store, dest, progress=broken)
    assert dest.read_text() == "old contents\n"
    assert sorted(p.name for p in out.iterdir()) == ["pairs.jsonl"]


def test_progress_in_batches(store, out, monkeypatch):
    seed(store, 5)
    monkeypatch.setattr(export_module, "BATCH", 2)
    seen = []
    export_pairs(store, out / "p.jsonl", progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    assert (
        [done for done, _ in seen] == sorted(done for done, _ in seen) and (2, 5) in seen and (4, 5) in seen
    )


def test_bad_destinations_and_arguments(store, out):
    seed(store, 1)
    with pytest.raises(StoreValidationError, match="is a folder"):
        export_pairs(store, out, fmt="jsonl")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(StoreValidationError, match="holding other files"):
        export_pairs(store, out, fmt="datasets")
    with pytest.raises(StoreValidationError, match="fmt"):
        export_pairs(store, out / "x.csv", fmt="csv")
    with pytest.raises(StoreValidationError, match="date_from"):
        export_pairs(store, out / "x.jsonl", filters=PairFilter(date_from="yesterday"))
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_replacing_an_earlier_datasets_folder(store, out):
    seed(store, 4)
    dest = out / "ds"
    export_pairs(store, dest, fmt="datasets")
    report = export_pairs(store, dest, fmt="datasets", filters=PairFilter(annotator="alice"))
    assert len(load(dest, "datasets")) == report.n_records == 2
    assert sorted(p.name for p in out.iterdir()) == ["ds", "ds.manifest.json"]


def test_filters_are_passed_through(store, out):
    prompt_ids = seed(store, 6)
    store.set_split([prompt_ids[1]], "held_out")
    cases = [
        PairFilter(),
        PairFilter(annotator="alice"),
        PairFilter(include_held_out=True),
        PairFilter(exclude_flagged=True),
        PairFilter(flags=("unsafe_advice",)),
        PairFilter(sources=("comparison",)),
    ]
    for number, filters in enumerate(cases):
        dest = out / f"f{number}.jsonl"
        report = export_pairs(store, dest, filters=filters)
        expected = store_triples(store, filters)
        assert report.n_records == len(expected) == store.count_pairs(filters), filters
        rows = [json.loads(line) for line in dest.read_text().splitlines()]
        assert as_triples(rows) == expected, filters
    assert len(store_triples(store, PairFilter(include_held_out=True))) == 6
    assert len(store_triples(store)) == 5


def test_deidentification_counts(store, out):
    pid = store.add_prompt("Mrs Jane Doe, DOB 03/04/1956, MRN 12345678: is 0.5 mg IM right?")
    gen = store.add_generation(pid, "Ask Dr. House on 020 7946 0958.", model_version="base", settings={})
    store.record_verdict(gen, "edit", annotator="alice", edited_text="Yes, 0.5 mg IM; mail help@example.org.")
    report = export_pairs(store, out / "p.jsonl", deidentify=True)
    # the prompt is counted once although it is written in both message lists
    assert report.n_masked == {"name": 2, "dob": 1, "phone": 1, "email": 1, "record": 1}
    row = json.loads((out / "p.jsonl").read_text())
    assert row["chosen"][0]["content"] == "Mrs [NAME], DOB [DOB], MRN [RECORD]: is 0.5 mg IM right?"
    assert row["chosen"][1]["content"] == "Yes, 0.5 mg IM; mail [EMAIL]."
    assert row["rejected"][1]["content"] == "Ask Dr. [NAME] on [PHONE]."
    manifest = json.loads(report.manifest_path.read_text())
    assert manifest["deidentified"] is True and manifest["n_masked"] == report.n_masked
    plain = export_pairs(store, out / "plain.jsonl")
    assert plain.n_masked == {} and "Jane Doe" in (out / "plain.jsonl").read_text()


def test_prompt_column_for_ultramedical_tools(store, out):
    seed(store, 2)
    export_pairs(store, out / "p.parquet", fmt="parquet", prompt_column=True)
    rows = load(out / "p.parquet", "parquet")
    assert rows.column_names[:3] == ["prompt", "id", "chosen"]
    assert all(row["prompt"] == row["chosen"][0]["content"] for row in rows)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "datasets"])
def test_sft_export(store, out, fmt):
    prompt_ids = seed(store, 4)
    store.set_split([prompt_ids[3]], "held_out")
    withdrawn = next(
        row.feedback_id for row in store.history(annotator="carol") if row.prompt_id == prompt_ids[0]
    )
    store.withdraw_verdict(withdrawn, annotator="carol")
    dest = out / ("sft" + DEST_NAMES[fmt])
    report = export_sft(store, dest, fmt=fmt)
    # 3 train questions x (edit + accept), minus the withdrawn accept
    assert report.kind == "sft" and report.n_records == 5
    assert report.counts_by_source == {"accept": 2, "edit": 3}
    rows = load(dest, fmt)
    answers = set()
    for row in rows:
        human, gpt = row["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt" and human["value"].startswith("Question ")
        assert row["id"] == f"{row['source']}-{row['id'].split('-')[1]}" and row["split"] == "train"
        answers.add(gpt["value"])
    assert "Better answer 0: 0.5 mg IM." in answers and not any(a.startswith("Original") for a in answers)
    manifest = json.loads(report.manifest_path.read_text())
    assert manifest["kind"] == "sft" and "sources" not in manifest["filters"]


def test_sft_filters(store, out):
    prompt_ids = seed(store, 4)
    store.set_split([prompt_ids[3]], "held_out")
    cases = {
        PairFilter(annotator="carol"): 3,
        PairFilter(include_held_out=True): 8,
        PairFilter(model_version="base"): 3,
        PairFilter(flags=("unsafe_advice",)): 1,
        PairFilter(exclude_flagged=True): 5,
        PairFilter(date_to=date(2020, 1, 1)): 0,
    }
    for number, (filters, expected) in enumerate(cases.items()):
        report = export_sft(store, out / f"s{number}.jsonl", filters=filters)
        assert report.n_records == expected, filters
        assert len((out / f"s{number}.jsonl").read_text().splitlines()) == expected


def test_jsonl_lines_are_what_json_dumps_writes(out):
    """The column-wise JSON writer matches json.dumps(ensure_ascii=False), U+2028/9 escaped for splitlines()."""
    from medalign_desktop.store.exports.formats import JsonLinesWriter, layout_for

    layout = layout_for("pairs", prompt_column=True)
    question = 'Dose "x"?\n\tβ-blocker — 用量 \\ \u2028'
    batch = {
        "prompt": [question, "q2"], "id": ["edit-1", "cmp-2"],
        "chosen": [(question, "A \u2029 é"), ("q2", "")], "rejected": [(question, "B"), ("q2", "c")],
        "source": ["edit", "comparison"], "annotator": [None, "bob"], "split": ["train", "held_out"],
        "safety_flags": [[], ["privacy", "unsafe_advice"]], "created_at": ["t1", "t2"],
        "chosen_version": [None, "v2"], "rejected_version": ["base", None],
    }  # fmt: skip
    writer = JsonLinesWriter(out / "rows.jsonl", layout)
    writer.write(batch)
    writer.finish()
    written = (out / "rows.jsonl").read_text(encoding="utf-8").split("\n")
    assert written[-1] == "" and len(written) == 3
    for number, line in enumerate(written[:2]):
        row = {}
        for name in layout.names():
            value = batch[name][number]
            if name in ("chosen", "rejected"):
                value = [{"role": "user", "content": value[0]}, {"role": "assistant", "content": value[1]}]
            row[name] = value
        expected = (
            json.dumps(row, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        )
        assert line == expected
        assert json.loads(line) == row
    assert len((out / "rows.jsonl").read_text(encoding="utf-8").splitlines()) == 2
