"""Compare mode on the Annotate page, driven by the keyboard, checked against what the store recorded."""

from __future__ import annotations

import random

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from medalign_desktop.engine import EngineError
from medalign_desktop.store import Store
from medalign_desktop.ui.annotate.page import Phase
from medalign_desktop.ui.annotate.view import AnnotateView
from medalign_desktop.ui.core import operations as ops
from medalign_desktop.ui.core.settings import AppSettings
from medalign_desktop.ui.core.two_answers import CHOICE_LABELS
from tests.gui.conftest import QUESTIONS, TEST_SAMPLING, run, wait_answer, wait_phase

# With this seed the first five draws show the answers swapped, not, swapped, not, not.
ORDER_SEED = 3


def press(qtbot, page, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(QApplication.focusWidget() or page, key, modifier)


def wait_pair(qtbot, page, prompt_text: str | None = None, timeout: int = 30000) -> None:
    """Wait until both answers are stored and the choice keys are live, optionally for a given question."""

    def ready() -> bool:
        if page.phase is not Phase.READY or page.compare_flow.pair is None:
            return False
        return prompt_text is None or (page.prompt is not None and page.prompt.text == prompt_text)

    qtbot.waitUntil(ready, timeout=timeout)


def call(qtbot, window, name: str, *args, **kwargs):
    """Run the store operation ``name`` as a page would (a write reports its change); other Store methods
    (the job manager's) directly."""
    op = ops.all_operations().get(name)
    store = window.ctx.store
    work = store.run(op, *args, **kwargs) if op else store.call(getattr(Store, name), *args, **kwargs)
    return run(qtbot, window.ctx.tasks.start(work))


def choose(qtbot, page, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    with qtbot.waitSignal(page.verdict_saved) as saved:
        press(qtbot, page, key, modifier)
    assert saved.args == ["comparison"]


def test_compare_by_keyboard_records_the_shown_order_and_the_choice(qtbot, make_window, seeded_db):
    window = make_window(db=seeded_db)
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    page.rng = random.Random(ORDER_SEED)

    press(qtbot, page, Qt.Key.Key_C)  # single -> compare: the question on screen gets two answers
    assert window.ctx.settings.annotate_mode == "compare" and AnnotateView(window.ctx.settings).compare_mode
    assert page.compare.isVisible() and not page.answer.isVisible()
    assert not page.actions.accept.isVisible() and not page.extras.rating.isVisible()

    shown = []  # per question: (pair, texts as shown)
    for number, (key, choice) in enumerate(
        [(Qt.Key.Key_1, "first"), (Qt.Key.Key_2, "second"), (Qt.Key.Key_T, "tie"), (Qt.Key.Key_B, "both_bad")]
    ):
        wait_pair(qtbot, page, QUESTIONS[number])
        pair, texts = page.compare_flow.pair, page.compare.texts()
        captions = " ".join(panel.status.text() for panel in page.compare.panels)
        assert "seed" not in captions and "tokens/s" not in captions  # nothing identifies an answer
        if choice == "tie":
            page.extras.flag_boxes["unsafe_advice"].setChecked(True)
        shown.append((pair, texts))
        choose(qtbot, page, key)
        assert page.actions.feedback.text().startswith(f"Saved: {CHOICE_LABELS[choice]} (1: seed ")

    # Question 5: E, then 2 opens Answer 2 for correcting; typed letters are text, not choice keys.
    wait_pair(qtbot, page, QUESTIONS[4])
    pair, texts = page.compare_flow.pair, page.compare.texts()
    press(qtbot, page, Qt.Key.Key_E)
    assert page.phase is Phase.PICKING and "Press 1 or 2" in page.compare.choices.hint.text()
    press(qtbot, page, Qt.Key.Key_Escape)
    assert page.phase is Phase.READY
    press(qtbot, page, Qt.Key.Key_E)
    press(qtbot, page, Qt.Key.Key_2)
    assert page.phase is Phase.EDITING and QApplication.focusWidget() is page.compare.panels[1].text
    page.compare.panels[1].text.selectAll()
    qtbot.keyClicks(page.compare.panels[1].text, "Rest, fluids, and see a GP within 2 days. Both bad? T.")
    assert page.phase is Phase.EDITING
    choose(qtbot, page, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    shown.append((pair, texts))
    qtbot.waitUntil(lambda: page.phase is Phase.EMPTY, timeout=20000)  # every question was compared

    swaps = [pair.swapped for pair, _ in shown]
    assert True in swaps and False in swaps  # the order really is drawn
    ids = list(page.compare_flow.saved)
    comparisons = [call(qtbot, window, "get_comparison", i) for i in ids]
    for comparison, (pair, texts), choice in zip(
        comparisons, shown, ["first", "second", "tie", "both_bad", "second"], strict=True
    ):
        assert comparison.choice == choice and comparison.mode == "seeds"
        assert comparison.swapped == pair.swapped
        first = call(qtbot, window, "get_generation", comparison.first_generation_id)
        second = call(qtbot, window, "get_generation", comparison.second_generation_id)
        assert (first.text, second.text) == texts  # Answer 1 / Answer 2 exactly as shown
        # Generations are stored in source order (seed, then seed + 1): swapped means Answer 1 came second.
        assert (first.id > second.id) == comparison.swapped
        assert first.settings["seed"] == TEST_SAMPLING.seed + int(comparison.swapped)
        assert second.settings["seed"] == TEST_SAMPLING.seed + int(not comparison.swapped)
    assert comparisons[2].safety_flags == ("unsafe_advice",)
    assert comparisons[4].edited_text == "Rest, fluids, and see a GP within 2 days. Both bad? T."

    pairs = {p.key: p for p in call(qtbot, window, "preference_pairs") if p.source == "comparison"}
    q1, q2, q5 = shown[0][1], shown[1][1], shown[4][1]
    assert sorted(pairs) == sorted([f"cmp-{ids[0]}", f"cmp-{ids[1]}", f"cmp-{ids[4]}", f"cmp-{ids[4]}-edit"])
    assert (pairs[f"cmp-{ids[0]}"].chosen, pairs[f"cmp-{ids[0]}"].rejected) == (q1[0], q1[1])
    assert (pairs[f"cmp-{ids[1]}"].chosen, pairs[f"cmp-{ids[1]}"].rejected) == (q2[1], q2[0])
    edit_pair = pairs[f"cmp-{ids[4]}-edit"]
    assert (edit_pair.chosen, edit_pair.rejected) == (comparisons[4].edited_text, q5[1])

    # Ctrl+Z withdraws the last comparison and shows its two answers again, in the same order.
    press(qtbot, page, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    wait_pair(qtbot, page, QUESTIONS[4])
    assert page.compare.texts() == q5 and "withdrawn" in page.actions.feedback.text()
    assert call(qtbot, window, "get_comparison", ids[4]).withdrawn
    choose(qtbot, page, Qt.Key.Key_B)
    assert call(qtbot, window, "get_comparison", page.compare_flow.saved[-1]).choice == "both_bad"
    assert not any(p.key.startswith(f"cmp-{ids[4]}") for p in call(qtbot, window, "preference_pairs"))


def test_two_versions_answer_with_each_version_and_the_active_one_is_restored(
    qtbot, make_window, seeded_db, tiny_adapters, tiny_model_dir
):
    with Store.open(seeded_db) as store:
        store.add_model_version("vA", "hitl", adapter_path=str(tiny_adapters[0]))
        active = store.add_model_version("vB", "hitl", adapter_path=str(tiny_adapters[1]))
        store.set_active_model_version(active)
    window = make_window(db=seeded_db)
    page, engine = window.annotate, window.ctx.engine
    wait_answer(qtbot, page, QUESTIONS[0])
    assert engine.adapter_name == "vB"
    page.rng = random.Random(ORDER_SEED)
    press(qtbot, page, Qt.Key.Key_C)
    wait_pair(qtbot, page, QUESTIONS[0])

    options = page.compare_options
    options.source.setCurrentIndex(options.source.findData("versions"))  # base versus base: refused
    wait_phase(qtbot, page, Phase.WAITING)
    qtbot.waitUntil(lambda: "two different" in page.compare.panels[0].text.placeholderText())
    assert [options.version_x.itemText(i) for i in range(options.version_x.count())] == [
        "Base model", "vA", "vB"]  # fmt: skip
    options.version_x.setCurrentIndex(options.version_x.findData("vA"))  # vA versus the base model
    wait_pair(qtbot, page, QUESTIONS[0])
    assert window.ctx.settings.compare_source == "versions"
    assert window.ctx.settings.compare_versions == ("vA", "")
    pair = page.compare_flow.pair
    assert engine.adapter_name == "vB" and engine._engine.active_adapter == "vB"  # restored
    assert sorted(engine._engine.adapters) == ["vA", "vB"]

    choose(qtbot, page, Qt.Key.Key_1)
    comparison = call(qtbot, window, "get_comparison", page.compare_flow.saved[-1])
    first = call(qtbot, window, "get_generation", comparison.first_generation_id)
    second = call(qtbot, window, "get_generation", comparison.second_generation_id)
    assert comparison.mode == "versions" and comparison.swapped == pair.swapped
    # Stored in source order (X = vA, then Y = the base model), shown in the drawn order.
    expected = ["vA", tiny_model_dir.name]
    assert [first.model_version, second.model_version] == (expected[::-1] if pair.swapped else expected)
    assert first.settings["seed"] == second.settings["seed"]  # only the model differs
    assert "vA" in page.actions.feedback.text()  # revealed once saved
    wait_pair(qtbot, page, QUESTIONS[1])
    assert engine._engine.active_adapter == "vB"

    # A version that cannot be loaded fails that answer, and the active adapter is still put back.
    with pytest.raises(EngineError):
        run(
            qtbot,
            window.ctx.tasks.start(
                engine.generate_with_adapter(QUESTIONS[0], TEST_SAMPLING, seeded_db.parent / "gone", "ghost")
            ),
        )
    assert "gone" in window.ctx.errors.shown[-1]  # reported readably, as the clinician would see it
    assert engine._engine.active_adapter == "vB" and "ghost" not in engine._engine.adapters


def test_two_samples_need_a_temperature_above_zero_then_g_answers_twice(qtbot, make_window, seeded_db):
    window = make_window(db=seeded_db, sampling=TEST_SAMPLING.with_changes(temperature=0.0))
    page = window.annotate
    wait_answer(qtbot, page, QUESTIONS[0])
    press(qtbot, page, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: "temperature 0" in page.compare.panels[0].text.placeholderText(), timeout=20000)
    assert page.phase is Phase.WAITING and page.compare_flow.pair is None
    dialog = page.open_sampling_dialog()  # as the message says: raise the temperature, press G
    dialog.temperature.setValue(0.7)
    dialog.accept()
    window.activateWindow()  # the offscreen platform does not give the window back its activation
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    page.setFocus()
    press(qtbot, page, Qt.Key.Key_G)
    wait_pair(qtbot, page, QUESTIONS[0])
    press(qtbot, page, Qt.Key.Key_C)  # back to one answer
    wait_answer(qtbot, page, QUESTIONS[0])
    assert window.ctx.settings.annotate_mode == "single" and page.answer.isVisible()
    assert page.actions.accept.isEnabled()


def test_a_window_opens_in_compare_mode_and_stop_and_skip_work_per_answer(
    qtbot, make_window, seeded_db, tmp_path
):
    remembered = AppSettings(QSettings(str(tmp_path / "gui-0.ini"), QSettings.Format.IniFormat))
    remembered.annotate_mode = "compare"  # as a previous session left it (make_window's first settings file)
    remembered.sync()
    window = make_window(db=seeded_db, sampling=TEST_SAMPLING.with_changes(max_new_tokens=4000))
    page = window.annotate
    assert page.compare_mode and page.compare.isVisible()

    def writing(slot: int) -> bool:
        return page.compare_flow.streaming_slot == slot and bool(page.compare.panels[slot].edited_text())

    # S while Answer 1 is being written: that pair is dropped, nothing is stored for question 1.
    qtbot.waitUntil(lambda: writing(0), timeout=20000)
    press(qtbot, page, Qt.Key.Key_S)
    # Esc stops only the answer being written: Answer 2 is still written, then Esc stops it too.
    qtbot.waitUntil(lambda: page.prompt.text == QUESTIONS[1] and writing(0), timeout=20000)
    press(qtbot, page, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: writing(1), timeout=20000)
    press(qtbot, page, Qt.Key.Key_Escape)
    wait_pair(qtbot, page, QUESTIONS[1])
    stats = call(qtbot, window, "stats")
    assert stats["generations"] == 2  # question 2's pair only
    for slot, generation_id in enumerate(page.compare_flow.pair.generation_ids):
        generation = call(qtbot, window, "get_generation", generation_id)
        assert generation.finish_reason == "cancelled" and generation.n_tokens < 4000
        assert page.compare.panels[slot].status.text() == f"{generation.n_tokens} tokens · stopped"
        assert page.compare.panels[slot].edited_text() == generation.text
