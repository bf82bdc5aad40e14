"""Imported and typed content is shown literally: no heading, hidden text, link or image from its HTML.

A question, reference answer and external id are imported through the store, and an answer, note,
annotator and model version name are stored with a verdict; the Annotate page, the History table (and
its tooltips) and the verdict's detail dialog must show the angle brackets, never render them.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGuiNamespace
from PySide6.QtWidgets import QLabel, QWidget

from medalign_desktop.store import Store, import_questions
from medalign_desktop.ui.annotate.page import Phase
from tests.gui.conftest import wait_phase

HOSTILE = '<h1>BIG</h1> <span style="color:white">hidden</span> <a href="http://x">link</a> <img src=x>'
RAW_MARKS = ("<h1>", "<span", "<a href", "<img")


def _seed(db_path, tmp_path) -> None:
    rows = [
        {"id": f"ext-{HOSTILE}", "conversations": [
            {"from": "human", "value": f"Question one {HOSTILE}"},
            {"from": "gpt", "value": f"Reference {HOSTILE}"},
        ]},
    ]  # fmt: skip
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    with Store.open(db_path) as store:
        assert import_questions(store, path).imported == 1
        judged = store.add_prompt(f"Question two {HOSTILE}", reference_answer=f"Ref two {HOSTILE}",
                                  external_id=f"id2 {HOSTILE}", source="import")  # fmt: skip
        generation = store.add_generation(judged, f"Answer {HOSTILE}", model_version=f"v {HOSTILE}",
                                          settings={"seed": 1})  # fmt: skip
        store.record_verdict(generation, "reject", annotator=f"Dr {HOSTILE}", reject_reason="incomplete",
                             reject_note=f"note {HOSTILE}", notes=f"notes {HOSTILE}")  # fmt: skip


def _rich(text: str) -> bool:
    return any(mark in text for mark in RAW_MARKS)


def _check_labels(root: QWidget) -> int:
    """Every visible label holding content HTML shows it as plain text; returns how many hold it."""
    holding = 0
    for label in root.findChildren(QLabel):
        if label.isVisible() and _rich(label.text()):
            holding += 1
            assert label.textFormat() == Qt.TextFormat.PlainText, (label.objectName(), label.text())
    return holding


def _check_tip(tooltip: str | None) -> None:
    """A tooltip built from content is escaped (it renders with the angle brackets), never raw HTML."""
    if not tooltip:
        return
    assert not _rich(tooltip), tooltip
    if "BIG" in tooltip:
        assert "&lt;h1&gt;" in tooltip and QtGuiNamespace.mightBeRichText(tooltip), tooltip


def _check_widget_tips(root: QWidget) -> None:
    for widget in root.findChildren(QWidget):
        _check_tip(widget.toolTip())


def test_hostile_html_is_shown_literally(qtbot, make_window, db_path, tmp_path):
    _seed(db_path, tmp_path)
    window = make_window()
    page = window.annotate
    wait_phase(qtbot, page, Phase.READY, Phase.WAITING, timeout=30000)
    qtbot.waitUntil(lambda: page.prompt is not None)
    assert page.prompt.text.startswith("Question one")
    page.question.reference_toggle.setChecked(True)
    assert HOSTILE in page.question.text.toPlainText()  # the question view is plain text
    assert _check_labels(window) >= 2  # the external id and the reference answer
    assert page.question.meta.text() == f"ext-{HOSTILE}"
    assert HOSTILE in page.question.reference.text()
    _check_widget_tips(window)

    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    history = window.history
    qtbot.waitUntil(lambda: history.model.rowCount() == 1 and not history.model.loading, timeout=20000)
    model = history.model
    shown = [model.data(model.index(0, column)) for column in range(model.columnCount())]
    assert f"Dr {HOSTILE}" in shown and f"v {HOSTILE}" in shown  # DisplayRole: plain strings
    for column in range(model.columnCount()):
        _check_tip(model.data(model.index(0, column), Qt.ItemDataRole.ToolTipRole))
    tips = [model.data(model.index(0, c), Qt.ItemDataRole.ToolTipRole) or "" for c in (5, 6, 7)]
    assert all("&lt;h1&gt;BIG&lt;/h1&gt;" in t for t in tips), tips
    _check_labels(window)
    _check_widget_tips(window)

    with qtbot.waitSignal(history.detail_opened) as opened:
        history.open_detail(model.index(0, 0))
    dialog = opened.args[0]
    qtbot.waitUntil(lambda: dialog.detail is not None)
    text = dialog.view.toPlainText()
    for part in (f"Question two {HOSTILE}", f"Answer {HOSTILE}", f"Ref two {HOSTILE}", f"note {HOSTILE}",
                 f"notes {HOSTILE}", f"Dr {HOSTILE}", f"v {HOSTILE}"):  # fmt: skip
        assert part in text, part
    _check_labels(dialog)
    _check_widget_tips(dialog)
    dialog.close()
