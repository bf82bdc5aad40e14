"""The main window: start-up in the background, status bar, import with progress, model errors as dialogs."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QPushButton

from medalign_desktop.store import Store
from medalign_desktop.ui.annotate.page import Phase
from medalign_desktop.ui.shell.main_window import NO_MODEL_MESSAGE
from tests.gui.conftest import QUESTIONS, run, wait_answer, write_questions


def test_window_shows_at_once_and_loads_the_model_in_the_background(
    qtbot, make_window, seeded_db, tiny_model_dir
):
    window = make_window(db=seeded_db)
    assert window.isVisible() and not window.start_task.done()  # shown before anything was loaded
    wait_answer(qtbot, window.annotate, QUESTIONS[0])
    assert window.start_task.result() is True
    model_text = window.status.model.text()
    assert model_text.startswith(f"{tiny_model_dir.name} · CPU · float32 ·") and model_text.endswith("MiB")
    qtbot.waitUntil(lambda: window.status.database.text() == "workspace.sqlite · 5 questions · 0 verdicts")
    assert window.ctx.model_version == tiny_model_dir.name


def test_import_shows_progress_and_a_report_with_line_numbers(qtbot, make_window, tmp_path):
    window = make_window()
    assert run(qtbot, window.start_task) is True
    source = write_questions(tmp_path / "in.jsonl", QUESTIONS[:3], bad_lines={2: "{not json"})
    with qtbot.waitSignal(window.import_finished, timeout=10000) as finished:
        window.import_questions(source)
        assert window.import_progress.isVisible() and not window.import_action.isEnabled()
    report = finished.args[0]
    assert (report.imported, [issue.line for issue in report.errors]) == (3, [2])
    box = window.report_box
    assert box.text().startswith("Imported 3 questions from in.jsonl")
    assert "line 2" in box.informativeText() and box.icon() == QMessageBox.Icon.Warning
    assert not window.import_progress.isVisible() and window.import_action.isEnabled()
    wait_answer(qtbot, window.annotate, QUESTIONS[0])  # the queue reloaded and the first question is answered
    assert window.annotate.position.text() == "Question 1 of 3"


def test_cancelling_an_import_writes_nothing(qtbot, make_window, tmp_path):
    window = make_window()
    run(qtbot, window.start_task)
    source = write_questions(tmp_path / "in.jsonl", QUESTIONS)
    with qtbot.waitSignal(window.import_finished, timeout=10000) as finished:
        task = window.import_questions(source)
        window.import_progress.findChild(QPushButton).click()  # Cancel, before the store thread reads a line
    assert finished.args[0].cancelled and "nothing was imported" in window.report_box.text()
    run(qtbot, task)
    stats = run(qtbot, window.ctx.tasks.start(window.ctx.store.run(Store.stats)))
    assert stats["prompts"] == 0


def test_a_bad_model_folder_is_shown_as_a_readable_dialog(qtbot, make_window, tmp_path):
    window = make_window(model=tmp_path / "missing-model")
    assert run(qtbot, window.start_task) is False
    message = f"{tmp_path / 'missing-model'}: the model folder does not exist."
    assert window.startup_error == message and window.ctx.errors.shown == [message]
    box = window.findChild(QMessageBox, "errorMessage")
    assert box is not None and box.isVisible() and box.text() == message
    assert window.status.model.text() == "No model loaded"
    assert not window.annotate.ask_box.isEnabled()


def test_no_model_configured_explains_what_to_do(qtbot, make_window, seeded_db):
    window = make_window(model=None, db=seeded_db)
    assert run(qtbot, window.start_task) is False
    assert window.startup_error == NO_MODEL_MESSAGE
    qtbot.waitUntil(lambda: window.annotate.phase is Phase.WAITING)
    assert window.annotate.question.text.toPlainText() == QUESTIONS[0]
    assert window.annotate.actions.skip.isEnabled() and not window.annotate.actions.accept.isEnabled()


def test_open_model_folder_validates_before_loading(qtbot, make_window, tmp_path):
    window = make_window(model=None)
    run(qtbot, window.start_task)
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    assert window.open_model_folder(empty) is None
    assert "the model configuration is missing (config.json)" in window.ctx.errors.shown[-1]


def test_an_adapter_is_loaded_on_top_and_named_in_the_status_bar(
    qtbot, make_window, seeded_db, tiny_adapters
):
    adapter = tiny_adapters[0]
    window = make_window(db=seeded_db, start=False)
    window.options.adapter_dir = adapter
    assert run(qtbot, window.ctx.tasks.start(window.start())) is True
    assert f"+ {adapter.name} · CPU" in window.status.model.text()
    assert window.ctx.model_version == adapter.name
    wait_answer(qtbot, window.annotate, QUESTIONS[0])
    generation = run(
        qtbot, window.ctx.tasks.start(window.ctx.store.run(Store.get_generation, window.annotate.generation_id))
    )
    assert generation.model_version == window.ctx.model_version


def test_open_model_folder_loads_it_and_remembers_it(
    qtbot, make_window, seeded_db, tiny_model_dir, tmp_path, monkeypatch
):
    from medalign_desktop.config import load_config

    monkeypatch.setenv("MEDALIGN_HOME", str(tmp_path / "home"))  # the shared settings file stays untouched
    window = make_window(model=None, db=seeded_db)
    run(qtbot, window.start_task)
    run(qtbot, window.open_model_folder(tiny_model_dir))
    wait_answer(qtbot, window.annotate, QUESTIONS[0])
    assert load_config().base_model == str(tiny_model_dir.resolve())


def test_a_database_readable_by_others_is_made_private_and_the_status_bar_says_so_once(
    qtbot, make_window, seeded_db
):
    import os
    import stat

    os.chmod(seeded_db, 0o644)
    window = make_window(db=seeded_db, model=None)
    assert run(qtbot, window.start_task) is False  # no model: only the database matters here
    assert stat.S_IMODE(seeded_db.stat().st_mode) == 0o600
    assert "Made the workspace private: others could read workspace.sqlite" in window.status.message.text()
    again = make_window(db=seeded_db, model=None)
    assert run(qtbot, again.start_task) is False
    assert "private" not in again.status.message.text()  # nothing changed the second time: no notice
