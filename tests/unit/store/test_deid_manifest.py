"""The export manifest says what de-identification scanned for, what it found, and what it cannot promise."""

from __future__ import annotations

import json

from medalign_desktop.store.deid import KINDS, NOTE
from medalign_desktop.store.exports.export import export_pairs
from medalign_desktop.store.exports.formats import Masker


def _seed(store) -> None:
    pid = store.add_prompt(
        "Patient: SMITH, John (DOB 03041956), NINO QQ 12 34 56 C, lives at 12 Acacia Avenue."
    )
    gen = store.add_generation(pid, "Give 0.5 mg IM; BP 120/80.", model_version="base", settings={})
    store.record_verdict(gen, "edit", annotator="alice", edited_text="Call +44 20 7946 0958; 0.5 mg IM.")


def test_manifest_lists_classes_counts_and_the_caveat(store, tmp_path):
    _seed(store)
    report = export_pairs(store, tmp_path / "p.jsonl", deidentify=True)
    manifest = json.loads(report.manifest_path.read_text())
    section = manifest["deidentification"]
    assert section["classes"] == list(KINDS)
    assert set(section["counts"]) == set(KINDS)
    expected = {"name": 1, "dob": 1, "national_id": 1, "address": 1, "phone": 1}
    assert {k: v for k, v in section["counts"].items() if v} == expected
    assert "not guaranteed" in section["note"] and section["note"] == NOTE
    # the older keys stay, and agree
    assert manifest["deidentified"] is True
    assert {k: v for k, v in manifest["n_masked"].items() if v} == expected
    row = json.loads((tmp_path / "p.jsonl").read_text())
    assert row["chosen"][0]["content"] == (
        "Patient: [NAME] (DOB [DOB]), NINO [NATIONAL_ID], lives at [ADDRESS]."
    )
    assert row["chosen"][1]["content"] == "Call [PHONE]; 0.5 mg IM."


def test_no_section_without_deidentification(store, tmp_path):
    _seed(store)
    report = export_pairs(store, tmp_path / "plain.jsonl")
    manifest = json.loads(report.manifest_path.read_text())
    assert manifest["deidentified"] is False and manifest["deidentification"] is None
    assert manifest["n_masked"] == {}


def test_masker_reports_core_kinds_even_when_nothing_was_found():
    mask = Masker(True)
    assert mask("BP 120/80, K 4.1 mmol/L") == "BP 120/80, K 4.1 mmol/L"
    assert mask.reported() == {"name": 0, "dob": 0, "phone": 0, "email": 0, "record": 0}
    assert mask.manifest()["counts"] == dict.fromkeys(KINDS, 0)
    assert Masker(False).manifest() is None and Masker(False).reported() == {}
