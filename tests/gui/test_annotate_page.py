"""The Annotate page, driven by the keyboard, then checked against what the store really recorded."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from medalign_desktop.engine import SamplingSettings
from medalign_desktop.store import Store
from medalign_desktop.ui.annotate import page as annotate_page
from medalign_desktop.ui.annotate.page import Phase
from tests.gui.conftest import ANNOTATOR, QUESTIONS, TEST_SAMPLING, run, wait_answer, wait_phase


def press(qtbot, page, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(QApplication.focusWidget() or page, key, modifier)


def test_keyboard_session_records_exactly_what_the_clinician_did(
    qtbot, make_window, seeded_db, tiny_model_dir
):
    window = make_window(db=seeded_db)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    assert page.position.text() == "Question 1 of 5"
    assert not page.actions.stop.isEnabled() and page.actions.accept.isEnabled()

    # Accept [A]
    with qtbot.waitSignal(page.verdict_saved):
        press(qtbot, page, Qt.Key.Key_A)
    assert page.actions.feedback.text() == "Saved: accepted"
    wait_answer(qtbot, page, QUESTIONS[1])
    assert page.position.text() == "Question 2 of 5"
    original_q2 = page.answer.edited_text()

    # Edit [E]: the answer becomes an editor; letters typed there are text, not shortcuts.
    press(qtbot, page, Qt.Key.Key_E)
    assert page.phase is Phase.EDITING and not page.answer.text.isReadOnly()
    assert QApplication.focusWidget() is page.answer.text
    page.answer.text.selectAll()
    qtbot.keyClicks(page.answer.text, "Start an ACE inhibitor or a thiazide; recheck in 4 weeks.")
    assert page.phase is Phase.EDITING  # 'a', 'r', 'e', 's' did not fire verdicts
    with qtbot.waitSignal(page.verdict_saved):
        press(qtbot, page, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_answer(qtbot, page, QUESTIONS[2])
    assert page.answer.text.isReadOnly()

    # Reject [R]: reason by its number, Tab to the note, Enter confirms; a rating and a flag by mouse.
    qtbot.mouseClick(page.extras.rating.group.button(2), Qt.MouseButton.LeftButton)
    page.extras.flag_boxes["missing_red_flag"].click()
    press(qtbot, page, Qt.Key.Key_R)
    assert page.phase is Phase.REJECTING and page.reject_panel.isVisible()
    press(qtbot, page, Qt.Key.Key_3)
    assert page.reject_panel.reason.currentData() == "incomplete"
    press(qtbot, page, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is page.reject_panel.note
    qtbot.keyClicks(page.reject_panel.note, "Misses red flags")
    with qtbot.waitSignal(page.verdict_saved):
        press(qtbot, page, Qt.Key.Key_Return)
    wait_answer(qtbot, page, QUESTIONS[3])

    # Skip [S]: no verdict for question 4.
    press(qtbot, page, Qt.Key.Key_S)
    wait_answer(qtbot, page, QUESTIONS[4])

    # Undo [Ctrl+Z]: back to question 3 and the answer that was rejected; judge it again.
    press(qtbot, page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    wait_answer(qtbot, page, QUESTIONS[2])
    assert "withdrawn" in page.actions.feedback.text()
    assert (page.extras.rating.value(), page.extras.flags()) == (2, ["missing_red_flag"])  # as left
    rejected_generation = page.generation_id
    with qtbot.waitSignal(page.verdict_saved):
        press(qtbot, page, Qt.Key.Key_A)
    wait_answer(qtbot, page)
    assert page.samples.text() == "3 new samples since last retrain"

    window.close()
    window.shutdown()
    with Store.open(seeded_db) as store:
        rows = store.history(include_withdrawn=True)
        assert [(r.verdict, r.withdrawn) for r in reversed(rows)] == [
            ("accept", False), ("edit", False), ("reject", True), ("accept", False)]  # fmt: skip
        assert {r.annotator for r in rows} == {ANNOTATOR}
        accept_q1, edit_q2, reject_q3, accept_q3 = (
            store.feedback_detail(r.feedback_id) for r in reversed(rows)
        )
        assert accept_q1.prompt_text == QUESTIONS[0]
        assert edit_q2.edited_text == "Start an ACE inhibitor or a thiazide; recheck in 4 weeks."
        assert edit_q2.original_text == original_q2  # the model's answer is kept beside the edit
        assert (reject_q3.reject_reason, reject_q3.reject_note) == ("incomplete", "Misses red flags")
        assert (reject_q3.rating, reject_q3.safety_flags) == (2, ("missing_red_flag",))
        assert (accept_q3.rating, accept_q3.safety_flags) == (2, ("missing_red_flag",))
        assert [e.action for e in reject_q3.audit] == ["create", "undo"]
        assert accept_q3.generation_id == reject_q3.generation_id == rejected_generation
        generation = store.get_generation(accept_q1.generation_id)
        assert generation.settings == TEST_SAMPLING.to_dict()
        assert generation.model_version == tiny_model_dir.name
        assert generation.n_tokens is not None and generation.tokens_per_s is not None
        assert all(QUESTIONS[3] != store.feedback_detail(r.feedback_id).prompt_text for r in rows)


def test_typing_a_question_never_fires_shortcuts(qtbot, make_window, seeded_db):
    window = make_window(db=seeded_db)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    page.ask_box.setFocus()
    qtbot.keyClicks(page.ask_box, "Is aspirin safe after a GI bleed? Regards, A. R. Smith")
    assert page.phase is Phase.READY and page.prompt.text == QUESTIONS[0]
    press(qtbot, page, Qt.Key.Key_Return)
    wait_answer(qtbot, page, "Is aspirin safe after a GI bleed? Regards, A. R. Smith")
    assert page.prompt.source == "typed" and page.ask_box.text() == ""
    assert page.question.meta.text() == "Typed question"
    run(qtbot, window.ctx.tasks.start(window.ctx.store.run(Store.stats)))
    stats = run(qtbot, window.ctx.tasks.start(window.ctx.store.run(Store.stats)))
    assert stats["verdicts"] == 0 and stats["generations"] == 2


def test_stop_while_streaming_keeps_a_partial_answer(qtbot, make_window, seeded_db):
    window = make_window(db=seeded_db, sampling=SamplingSettings(temperature=0.0, max_new_tokens=4000))
    page = window.annotate
    qtbot.waitUntil(lambda: page.phase is Phase.STREAMING and bool(page.answer.edited_text()), timeout=20000)
    assert page.actions.stop.isEnabled()
    assert not any(b.isEnabled() for b in (page.actions.accept, page.actions.edit, page.actions.reject))
    press(qtbot, page, Qt.Key.Key_Escape)
    wait_answer(qtbot, page)
    assert "stopped" in page.answer.status.text()
    # 4,000 tokens do not fit the tiny model's 512 with the question: the budget was cut, and it said so
    assert "shortened to fit the model" in page.answer.status.text()
    generation = run(
        qtbot, window.ctx.tasks.start(window.ctx.store.run(Store.get_generation, page.generation_id))
    )
    assert generation.finish_reason == "cancelled" and generation.n_tokens < 4000


def test_annotator_is_asked_once_on_the_first_verdict(qtbot, make_window, seeded_db, monkeypatch):
    asked = []
    monkeypatch.setattr(
        annotate_page.dialogs, "ask_annotator_name", lambda parent: asked.append(1) or "Dr Who"
    )
    window = make_window(db=seeded_db, annotator=None)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    with qtbot.waitSignal(page.verdict_saved):
        press(qtbot, page, Qt.Key.Key_A)
    wait_answer(qtbot, page, QUESTIONS[1])
    with qtbot.waitSignal(page.verdict_saved):
        press(qtbot, page, Qt.Key.Key_A)
    assert asked == [1] and window.ctx.settings.annotator == "Dr Who"
    rows = run(qtbot, window.ctx.tasks.start(window.ctx.store.run(Store.history)))
    assert {r.annotator for r in rows} == {"Dr Who"}


def test_an_unchanged_edit_is_refused_with_a_readable_message(qtbot, make_window, seeded_db):
    window = make_window(db=seeded_db)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    page.extras.flag_boxes["unsafe_advice"].setChecked(True)
    page.extras.rating.set_value(2)
    press(qtbot, page, Qt.Key.Key_E)
    press(qtbot, page, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_phase(qtbot, page, Phase.EDITING)
    qtbot.waitUntil(lambda: "same as the original" in page.actions.feedback.text())
    press(qtbot, page, Qt.Key.Key_Escape)  # cancel the edit, then reject with the flag and rating set
    assert page.phase is Phase.READY
    press(qtbot, page, Qt.Key.Key_R)
    with qtbot.waitSignal(page.verdict_saved):
        press(qtbot, page, Qt.Key.Key_Return)
    rows = run(qtbot, window.ctx.tasks.start(window.ctx.store.run(Store.history)))
    assert (rows[0].verdict, rows[0].reject_reason, rows[0].flags, rows[0].rating) == (
        "reject", "factually_wrong", ("unsafe_advice",), 2)  # fmt: skip
    assert window.ctx.errors.shown == []


def test_sampling_settings_dialog_persists_and_applies(qtbot, make_window, seeded_db):
    window = make_window(db=seeded_db)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    dialog = page.open_sampling_dialog()
    dialog.max_new_tokens.setValue(5)
    dialog.seed.setValue(-1)
    dialog.accept()
    assert window.ctx.settings.sampling() == TEST_SAMPLING.with_changes(max_new_tokens=5, seed=None)
    assert "up to 5 tokens" in page.settings_button.toolTip()
    press(qtbot, page, Qt.Key.Key_G)
    qtbot.waitUntil(lambda: page.phase is Phase.READY and page.generation_id not in (None, 1), timeout=20000)
    generation = run(
        qtbot, window.ctx.tasks.start(window.ctx.store.run(Store.get_generation, page.generation_id))
    )
    assert generation.settings["max_new_tokens"] == 5 and generation.n_tokens <= 5


def test_a_question_longer_than_the_model_reads_is_refused_with_both_lengths(qtbot, make_window, db_path):
    long_question = "The patient reports chest pain radiating to the left arm, worse on exertion. " * 50
    with Store.open(db_path) as store:
        store.add_prompt(long_question)
        store.add_prompt(QUESTIONS[0])
    window = make_window()
    page = window.annotate
    qtbot.waitUntil(lambda: "the model reads 512" in page.answer.text.placeholderText(), timeout=20000)
    message = page.answer.text.placeholderText()
    assert message.startswith("This question is ") and "tokens; the model reads 512. Shorten it" in message
    assert page.answer.status.text() == annotate_page.TOO_LONG_CAPTION
    assert page.phase is Phase.WAITING and not page.actions.accept.isEnabled()
    assert not window.ctx.errors.shown  # said on the page, not in an error box
    page.actions.skip.click()  # the clinician moves on; the next question is answered as usual
    wait_answer(qtbot, page, QUESTIONS[0])


def test_the_header_and_counter_show_their_whole_text_at_1280(qtbot, make_window, db_path):
    """A fresh workspace at 1,280 px: "No questions in the queue" and the counter are not cut (papercut)."""
    from medalign_desktop.ui.annotate.page import AnnotatePage

    window = make_window(db=db_path, model=None)
    page: AnnotatePage = window.annotate
    qtbot.waitUntil(lambda: page.position.text() != "" and page.samples.text() != "")
    qtbot.wait(50)
    for label in (page.position, page.samples):
        needed = label.fontMetrics().horizontalAdvance(label.text())
        assert label.contentsRect().width() >= needed, (label.text(), label.width(), needed)
