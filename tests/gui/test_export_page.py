"""The Export page and importing preference pairs: live counts, filters, export with progress and cancel,
the summary, and the File menu's pair import with its line-numbered report."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from medalign_desktop.store import Store
from medalign_desktop.ui.export.preview import from_divergence
from tests.gui.conftest import run, seed_verdicts

# seed_verdicts(30): verdicts cycle accept / edit / reject, so 10 edits, each an edit pair, annotators
# alternating: edits 1, 7, 13, 19, 25 by Dr Lee and 4, 10, 16, 22, 28 by Dr Test. Its rejects are on
# questions nobody accepted an answer to, so they give no pair.
SEEDED_EDITS = 10
PLANTED_NAME = "Patient John Smith"


def seed_pairs(db_path: Path) -> None:
    """The 30 seeded verdicts, plus one flagged reject pair and one held-out edit pair."""
    seed_verdicts(db_path, 30)
    with Store.open(db_path) as store:
        prompt = store.add_prompt(f"{PLANTED_NAME}, 58, has crushing chest pain. What now?")
        bad = store.add_generation(prompt, "Rest and take an antacid.", model_version="base", settings={})
        good = store.add_generation(prompt, "Call an ambulance: this may be a heart attack.",
                                    model_version="B-iter-1", settings={})  # fmt: skip
        store.record_verdict(bad, "reject", annotator="Dr Lee", reject_reason="unsafe",
                             safety_flags=["unsafe_advice"])  # fmt: skip
        store.record_verdict(good, "accept", annotator="Dr Lee")
        held = store.add_prompt("Held-out: how is gout managed?")
        answer = store.add_generation(held, "Gout is managed with rest.", model_version="base", settings={})
        store.record_verdict(answer, "edit", annotator="Dr Test", edited_text="Gout: NSAIDs or colchicine.")
        store.set_split([held], "held_out")


def open_export(qtbot, make_window, db_path):
    window = make_window()  # with the tiny model: no "No model" box to take the keyboard
    run(qtbot, window.start_task)
    page = window.export
    with qtbot.waitSignal(page.counted, timeout=10000):
        qtbot.keyClick(window, Qt.Key.Key_5, Qt.KeyboardModifier.ControlModifier)
    assert window.pages.currentWidget() is page
    return window, page


def wait_count(qtbot, page, expected: int) -> None:
    qtbot.waitUntil(
        lambda: page.total == expected and page.count_label.text() != "Counting...", timeout=10000
    )


def write_pairs(path: Path, records: list[dict], *, bad_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(record) for record in records]
    for line, text in sorted((bad_lines or {}).items()):
        lines.insert(line - 1, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def preference(n: int) -> dict:
    prompt = f"Imported question {n}: what is the dose of paracetamol for adults?"
    return {
        "prompt": prompt,
        "chosen": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": f"500 mg to 1 g ({n})"},
        ],
        "rejected": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": f"10 g at once ({n})"},
        ],
        "score": 0.9,  # UltraMedical extras are ignored
    }


def test_the_count_and_preview_follow_the_filters(qtbot, make_window, db_path):
    seed_pairs(db_path)
    window, page = open_export(qtbot, make_window, db_path)
    wait_count(qtbot, page, SEEDED_EDITS + 1)  # the held-out edit is left out by default
    assert page.count_label.text() == "11 preference pairs match"
    model = page.preview_model
    assert model.rowCount() == 11 and model.columns == ("Prompt", "Chosen", "Rejected", "Source", "Annotator")
    sources = {model.row_texts(r)[3] for r in range(11)}
    assert sources == {"Edit", "Reject"}
    reject_row = next(model.row_texts(r) for r in range(11) if model.row_texts(r)[3] == "Reject")
    assert reject_row[1].startswith("Call an ambulance") and reject_row[2] == "Rest and take an antacid."

    page.held_out.setChecked(True)
    wait_count(qtbot, page, 12)
    page.held_out.setChecked(False)
    wait_count(qtbot, page, 11)
    page.annotator.setCurrentIndex(page.annotator.findData("Dr Test"))
    wait_count(qtbot, page, 5)
    page.annotator.setCurrentIndex(0)
    page.source_boxes["edit"].setChecked(False)
    wait_count(qtbot, page, 1)
    page.source_boxes["edit"].setChecked(True)
    page.flag.setCurrentIndex(page.flag.findData("__exclude_flagged__"))
    wait_count(qtbot, page, SEEDED_EDITS)
    page.flag.setCurrentIndex(page.flag.findData("unsafe_advice"))
    wait_count(qtbot, page, 1)
    page.flag.setCurrentIndex(0)
    page.model_version.setCurrentIndex(page.model_version.findData("B-iter-1"))
    wait_count(qtbot, page, 1)  # the reject pair's chosen answer came from B-iter-1

    page.kind.setCurrentIndex(page.kind.findData("sft"))  # 10 accepts + 10 edits + the ambulance answer
    page.model_version.setCurrentIndex(0)
    wait_count(qtbot, page, 21)
    assert page.count_label.text() == "21 answers match"
    assert not page.source_boxes["edit"].isEnabled()
    assert page.destination.text().endswith(".jsonl") and "sft-answers-" in page.destination.text()


def test_export_to_jsonl_writes_the_file_and_manifest_and_shows_a_summary(
    qtbot, make_window, db_path, tmp_path
):
    seed_pairs(db_path)
    window, page = open_export(qtbot, make_window, db_path)
    wait_count(qtbot, page, 11)
    dest = tmp_path / "out" / "pairs.jsonl"
    dest.parent.mkdir()
    page.destination.setText(str(dest))
    page.deidentify.setChecked(True)
    with qtbot.waitSignal(page.export_finished, timeout=20000) as finished:
        page.export_button.click()
        assert page.progress.isVisible() and page.cancel_button.isVisible()
        assert not page.export_button.isEnabled()
    report = finished.args[0]
    assert report is not None and report.n_records == 11
    records = [json.loads(line) for line in dest.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 11
    assert all(r["chosen"][0]["role"] == "user" and r["chosen"][1]["role"] == "assistant" for r in records)
    texts = json.dumps(records)
    assert "Held-out" not in texts  # held-out questions stay out unless asked for
    assert "John Smith" not in texts and "[NAME]" in texts  # the planted name was masked
    manifest = json.loads(Path(report.manifest_path).read_text(encoding="utf-8"))
    assert manifest["kind"] == "pairs" and Path(report.manifest_path).parent == dest.parent
    summary = page.result_label.text()
    assert summary.startswith(f"Exported 11 preference pairs to {dest}")
    assert "Edit 10" in summary and "Reject 1" in summary
    assert "De-identification masked" in summary and f"Manifest: {report.manifest_path}" in summary
    assert page.result_label.property("problem") is False
    assert not page.progress.isVisible() and page.export_button.isEnabled()


def test_cancelling_an_export_leaves_no_file(qtbot, make_window, db_path, tmp_path):
    seed_pairs(db_path)
    window, page = open_export(qtbot, make_window, db_path)
    wait_count(qtbot, page, 11)
    dest = tmp_path / "pairs.parquet"
    page.format.setCurrentIndex(page.format.findData("parquet"))
    page.destination.setText(str(dest))
    gate = threading.Event()  # holds the store thread, so Cancel is pressed before the export begins
    held = window.ctx.tasks.start(window.ctx.store.call(lambda _store: gate.wait(10)))
    with qtbot.waitSignal(page.export_finished, timeout=20000) as finished:
        page.start_export()
        page.cancel_button.click()
        gate.set()
    run(qtbot, held)
    assert finished.args[0] is None
    assert page.result_label.text() == "Export cancelled: nothing was written."
    assert page.result_label.property("problem") is True
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pairs")) == []


def test_a_failed_export_is_a_readable_message(qtbot, make_window, db_path, tmp_path):
    seed_pairs(db_path)
    window, page = open_export(qtbot, make_window, db_path)
    wait_count(qtbot, page, 11)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    page.destination.setText(str(blocker / "pairs.jsonl"))
    with qtbot.waitSignal(page.export_finished, timeout=20000) as finished:
        page.export_button.click()
    assert finished.args[0] is None
    text = page.result_label.text()
    assert text.startswith("The export failed:") and "not-a-folder" in text and "Traceback" not in text
    assert page.export_button.isEnabled() and not window.ctx.errors.unexpected


def test_importing_preference_pairs_from_the_menu_adds_pairs(qtbot, make_window, db_path, tmp_path):
    seed_pairs(db_path)
    window, page = open_export(qtbot, make_window, db_path)
    wait_count(qtbot, page, 11)
    source = write_pairs(tmp_path / "prefs.jsonl", [preference(n) for n in range(3)], bad_lines={2: "{oops"})
    with qtbot.waitSignal(window.import_finished, timeout=10000) as finished:
        window.import_preferences(source)
        assert window.import_progress.isVisible() and not window.import_pairs_action.isEnabled()
    report = finished.args[0]
    assert (report.imported, [issue.line for issue in report.errors]) == (3, [2])
    box = window.report_box
    assert box.windowTitle() == "Import preference pairs" and box.icon() == QMessageBox.Icon.Warning
    assert "line 2" in box.informativeText()
    wait_count(qtbot, page, 14)  # the page saw the import and counted again
    assert page.batch_button.text() == "All imported batches (1)" and page.batch_button.isEnabled()
    page.source_boxes["imported"].setChecked(False)
    wait_count(qtbot, page, 11)
    assert not page.batch_button.isEnabled()

    with qtbot.waitSignal(window.import_finished, timeout=10000) as again:
        window.import_preferences(source)  # the same file twice adds nothing
    assert (again.args[0].imported, again.args[0].duplicates) == (0, 3)


def test_a_bad_preference_file_shows_its_lines_and_no_traceback(qtbot, make_window, db_path, tmp_path):
    window = make_window(model=None)
    run(qtbot, window.start_task)
    missing_chosen = {"prompt": "Dose?", "rejected": preference(0)["rejected"]}
    not_a_list = {**preference(1), "chosen": "just text"}
    source = write_pairs(tmp_path / "bad.jsonl", [missing_chosen, not_a_list])
    with qtbot.waitSignal(window.import_finished, timeout=10000) as finished:
        window.import_preferences(source)
    report = finished.args[0]
    assert report.imported == 0 and [issue.line for issue in report.errors] == [1, 2]
    details = window.report_box.informativeText()
    assert "line 1" in details and "chosen" in details and "line 2" in details
    assert "Traceback" not in details and window.report_box.icon() == QMessageBox.Icon.Warning
    assert not window.ctx.errors.unexpected


def test_the_preview_shows_two_answers_from_where_they_differ():
    opening = "Hypertension is managed first with lifestyle advice and then with "
    chosen, rejected = from_divergence(opening + "an ACE inhibitor.", opening + "aspirin.")
    assert (
        chosen == "…lifestyle advice and then with an ACE inhibitor."
        and rejected == "…lifestyle advice and then with aspirin."
    )
    assert from_divergence("Rest it and", "Rest it but") == ("Rest it and", "Rest it but")  # short: as is
