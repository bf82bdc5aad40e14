"""The UI's pure pieces: queue position, diff, audit wording, labels, settings persistence."""

from __future__ import annotations

import re

from PySide6.QtCore import QSettings

from medalign_desktop.engine import SamplingSettings
from medalign_desktop.store import AuditEntry, HistoryRow
from medalign_desktop.ui.annotate.session import QueueCursor
from medalign_desktop.ui.core import labels
from medalign_desktop.ui.core.dialogs import describe_sampling
from medalign_desktop.ui.core.settings import AppSettings
from medalign_desktop.ui.history.detail_dialog import audit_summary
from medalign_desktop.ui.history.diff import diff_html
from medalign_desktop.ui.history.model import cell_text


def test_queue_cursor_positions_and_jumps():
    cursor = QueueCursor([10, 11, 12])
    assert (cursor.current, cursor.position_text()) == (10, "Question 1 of 3")
    cursor.advance()
    cursor.go_to(99)  # a typed question is inserted where the clinician is
    assert (cursor.ids, cursor.current, cursor.position_text()) == ([10, 99, 11, 12], 99, "Question 2 of 4")
    cursor.go_to(10)
    assert cursor.index == 0
    for _ in range(5):
        cursor.advance()
    assert cursor.current is None and cursor.position_text() == "End of the queue (4 questions)"
    assert QueueCursor().position_text() == "No questions in the queue"


def test_diff_marks_removed_and_added_phrases():
    html = diff_html("Give 5 mg <b>daily</b>.\nReview.", "Give 10 mg <b>daily</b>.\nReview.")
    assert "<del>" in html and "<ins>" in html
    assert ">5 </span></del>" in html and ">10 </span></ins>" in html
    assert "&lt;b&gt;daily&lt;/b&gt;" in html and "<br>" in html  # escaped, line breaks kept
    assert diff_html("same", "same") == "same"


def test_audit_summary_in_words():
    change = AuditEntry(1, 7, "change", {"verdict": "accept", "rating": None, "safety_flags": []},
                        {"verdict": "reject", "rating": 4, "safety_flags": ["unsafe_advice"],
                         "reject_reason": "unsafe"}, "Dr A", "2026-01-01T00:00:00.000000Z")  # fmt: skip
    text = audit_summary(change)
    assert "verdict: accept → reject" in text and "rating: none → 4" in text
    assert "safety_flags: none → Unsafe advice" in text
    undo = AuditEntry(2, 7, "undo", {}, {"withdrawn": True, "withdraw_reason": "undo"}, "Dr A", "")
    assert audit_summary(undo) == "withdrawn"


def test_labels_and_history_cells():
    assert labels.code_label("missing_red_flag") == "Missing red flag"
    assert labels.verdict_label("edit") == "Edited"
    row = HistoryRow(3, "2026-01-01T12:00:00.000000Z", "Dr A", "reject", "Q", "A", "base", 4,
                     ("privacy",), True, reject_reason="off_topic")  # fmt: skip
    assert cell_text(row, 2) == "Rejected (withdrawn)"
    assert (cell_text(row, 3), cell_text(row, 4), cell_text(row, 7)) == ("4 / 5", "Privacy", "A")
    assert re.fullmatch(r"\d\d [A-Z][a-z]{2} (\d\d:\d\d|\d{4})", cell_text(row, 0))  # local, compact


def test_sampling_settings_round_trip_through_qsettings(tmp_path):
    path = str(tmp_path / "gui.ini")
    settings = AppSettings(QSettings(path, QSettings.Format.IniFormat))
    assert settings.sampling() == SamplingSettings()
    chosen = SamplingSettings(
        temperature=0.3, top_p=0.8, max_new_tokens=200, seed=11, system_prompt="Be brief."
    )
    settings.set_sampling(chosen)
    settings.annotator = "  Dr B  "
    settings.sync()
    again = AppSettings(QSettings(path, QSettings.Format.IniFormat))
    assert again.sampling() == chosen and again.annotator == "Dr B"
    assert describe_sampling(chosen) == "Temperature 0.3 · top-p 0.8 · up to 200 tokens · seed 11"


def test_uncaught_errors_are_logged_with_traceback_and_shown_in_one_sentence(qapp, tmp_path, monkeypatch):
    import logging
    import sys

    from medalign_desktop.store import StoreValidationError
    from medalign_desktop.ui.core import errors

    log_file = tmp_path / "logs" / "app.log"
    handler = errors.setup_logging(log_file)
    monkeypatch.setattr(errors, "_configured_log", log_file)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    reporter = errors.ErrorReporter()
    errors.install_excepthook(reporter)
    try:
        try:
            raise KeyError("boom")
        except KeyError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        sys.excepthook(StoreValidationError, StoreValidationError("rating", "must be 1-5"), None)
    finally:
        logging.getLogger("medalign_desktop").removeHandler(handler)
        handler.close()
    unexpected, expected = reporter.shown
    assert "KeyError" in unexpected and str(log_file) in unexpected and "Traceback" not in unexpected
    assert expected == "rating: must be 1-5"
    logged = log_file.read_text()
    assert "Traceback (most recent call last)" in logged and 'raise KeyError("boom")' in logged
    for widget in qapp.topLevelWidgets():
        if widget.objectName() == "errorMessage":
            widget.close()
