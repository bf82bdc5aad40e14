"""The History page: lazy paging, filters, search, the detail dialog with its diff, corrections, withdrawal."""

from __future__ import annotations

from PySide6.QtCore import Qt

from medalign_desktop.store import Store
from medalign_desktop.ui.history.model import PAGE_SIZE
from tests.gui.conftest import run, seed_verdicts


def open_history(qtbot, make_window, db_path, count: int):
    seed_verdicts(db_path, count)
    window = make_window()
    qtbot.waitUntil(lambda: window.ctx.store.is_open, timeout=20000)
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    history = window.history
    assert window.pages.currentWidget() is history
    qtbot.waitUntil(lambda: history.model.rowCount() > 0 and not history.model.loading, timeout=20000)
    return window, history


def test_history_pages_lazily_as_the_view_scrolls(qtbot, make_window, db_path):
    window, history = open_history(qtbot, make_window, db_path, 2 * PAGE_SIZE + 50)
    model = history.model
    assert model.total == 450 and model.rowCount() == PAGE_SIZE
    assert history.count.text() == "450 verdicts"
    for expected in (2 * PAGE_SIZE, 450):
        history.table.scrollToBottom()
        qtbot.waitUntil(lambda n=expected: model.rowCount() == n and not model.loading, timeout=10000)
    assert not model.canFetchMore()
    newest = model.row_at(0)
    assert newest.prompt_excerpt.startswith("Question 449:")


def test_filter_search_open_diff_and_withdraw(qtbot, make_window, db_path, monkeypatch):
    window, history = open_history(qtbot, make_window, db_path, 30)
    model = history.model
    history.verdict.setCurrentIndex(history.verdict.findData("edit"))
    qtbot.waitUntil(lambda: model.total == 10 and model.rowCount() == 10 and not model.loading)
    with qtbot.waitSignal(model.total_changed, timeout=3000):  # the search box is debounced (300 ms)
        qtbot.keyClicks(history.search, "anaemia")
    qtbot.waitUntil(lambda: not model.loading)
    assert model.total == model.rowCount() == 5  # edits are questions 1, 4, 7...; anaemia is every 6th from 4
    assert all("anaemia" in model.row_at(r).prompt_excerpt for r in range(5))

    history.table.setFocus()
    history.table.selectRow(0)
    with qtbot.waitSignal(history.detail_opened) as opened:
        qtbot.keyClick(history.table, Qt.Key.Key_Return)
    dialog = opened.args[0]
    qtbot.waitUntil(lambda: dialog.detail is not None)
    shown = dialog.view.toPlainText()
    assert "lifestyle advice guideline-based care and medication" in shown  # removed, then added
    assert "line-through" in dialog.view.toHtml()  # the removed words are struck through
    assert "Audit trail" in shown

    monkeypatch.setattr(dialog, "_confirm_withdraw", lambda question: True)
    with qtbot.waitSignal(dialog.changed, timeout=10000):
        dialog.withdraw_button.click()
    assert dialog.detail.withdrawn and not dialog.save_button.isEnabled()
    qtbot.waitUntil(lambda: model.total == 4 and not model.loading, timeout=10000)  # the page reloaded itself
    history.withdrawn.setChecked(True)
    qtbot.waitUntil(lambda: model.total == 5 and not model.loading)
    assert sum("withdrawn" in model.data(model.index(r, 2)) for r in range(5)) == 1
    dialog.close()
    history.clear_filters()
    qtbot.waitUntil(lambda: model.total == 29 and not model.loading)  # 30 seeded, one withdrawn
    assert history.search.text() == "" and history.verdict.currentIndex() == 0

    with Store.open(db_path) as store:
        detail = store.feedback_detail(dialog.feedback_id)
        assert detail.withdrawn and [e.action for e in detail.audit] == ["create", "withdraw"]
        assert detail.audit[-1].annotator == "Dr Test"


def test_change_a_verdict_from_the_detail_dialog(qtbot, make_window, db_path):
    window, history = open_history(qtbot, make_window, db_path, 6)
    model = history.model
    row = next(r for r in range(model.rowCount()) if model.row_at(r).verdict == "accept")
    dialog = history.open_detail(model.index(row, 0))
    qtbot.waitUntil(lambda: dialog.detail is not None)
    assert not dialog.reason.isEnabled()
    dialog.verdict.setCurrentIndex(dialog.verdict.findData("reject"))
    assert dialog.reason.isEnabled()
    dialog.reason.setCurrentIndex(dialog.reason.findData("unsafe"))
    dialog.flag_boxes["unsafe_advice"].setChecked(True)
    dialog.rating.set_value(1)
    with qtbot.waitSignal(dialog.changed, timeout=10000):
        dialog.save_button.click()
    assert "audit trail" in dialog.status.text()
    assert "verdict: accept → reject" in dialog.view.toPlainText()
    detail = run(qtbot, window.ctx.tasks.start(window.ctx.store.run(Store.feedback_detail, dialog.feedback_id)))
    assert (detail.verdict, detail.reject_reason, detail.safety_flags, detail.rating) == (
        "reject", "unsafe", ("unsafe_advice",), 1)  # fmt: skip
    assert [e.action for e in detail.audit] == ["create", "change"]
    dialog.close()


def test_the_question_and_answer_columns_take_the_free_width(qtbot, make_window, db_path):
    """At 1,280 px the Question and Answer columns are the widest, not squeezed by the short ones (papercut)."""
    seed_verdicts(db_path, 6)
    window = make_window(db=db_path, model=None)
    window.show_page(1)
    page = window.history
    qtbot.waitUntil(lambda: page.table.model().rowCount() == 6)
    header = page.table.horizontalHeader()
    widths = [header.sectionSize(c) for c in range(header.count())]
    question, answer = widths[6], widths[7]
    assert min(question, answer) > max(widths[:6] + widths[8:])
    assert question + answer >= 0.35 * page.table.viewport().width()
