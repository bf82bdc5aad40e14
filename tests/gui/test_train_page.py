"""The Train and Models pages with the real training program on the tiny model: retrain from the page,
watch the plot receive points, cancel one job, let another finish, and see the new version answer."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from medalign_desktop.store import Store
from tests.gui.conftest import TEST_SAMPLING, run, seed_verdicts

FAST = {"max_length": 64, "per_device_train_batch_size": 2, "gradient_checkpointing": False, "max_steps": 3}


def job_states(db_path):
    with Store.open(db_path) as store:
        return [(job.kind, job.state) for job in store.list_jobs()]


@pytest.mark.slow
def test_retrain_cancel_and_finish_from_the_train_page(qtbot, make_window, db_path):
    seed_verdicts(db_path, 6)  # 4 accepted or edited answers, 2 rejected
    window = make_window(db=db_path)
    assert run(qtbot, window.start_task) is True
    window.training.overrides = dict(FAST)
    window.show_page(2)
    page = window.training.train_page
    qtbot.waitUntil(lambda: page.counter_label.text() == "4 new samples since the last retrain")

    # first job: cancel it while it starts up
    qtbot.mouseClick(page.retrain_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: window.training.jobs.running_job_id is not None and page.cancel_button.isEnabled(),
        timeout=10000,
    )
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.training.jobs.busy, timeout=30000)
    assert job_states(db_path) == [("hitl", "cancelled")]

    # second job: runs to the end; the plot receives the loss points
    qtbot.mouseClick(page.retrain_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.plot.buffer.count("loss") == 3, timeout=120000)
    qtbot.waitUntil(lambda: window.ctx.engine.adapter_name == "B-iter-1", timeout=60000)
    assert job_states(db_path) == [("hitl", "cancelled"), ("hitl", "succeeded")]
    assert page.plot.redraws >= 1 and page.plot.curves["loss"].getData()[0] is not None
    qtbot.waitUntil(lambda: window.ctx.model_version == "B-iter-1")
    qtbot.waitUntil(lambda: page.counter_label.text() == "0 new samples since the last retrain")

    # the Models page shows the new version as active; the base model alone can be chosen again
    window.show_page(3)
    models = window.training.models_page
    qtbot.waitUntil(lambda: models.active_label.text() == "Answering with: B-iter-1")
    qtbot.mouseClick(models.base_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: models.active_label.text() == "Answering with: the base model only")
    assert window.ctx.engine.adapter_name is None

    # every answer says which adapter wrote it; that is what the Annotate page records
    answer = run(qtbot, window.ctx.tasks.start(window.ctx.engine.generate("Define sepsis.", TEST_SAMPLING)))
    assert answer.adapter is None
    models.tree.setCurrentItem(models.tree.topLevelItem(0))
    qtbot.mouseClick(models.activate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: models.active_label.text() == "Answering with: B-iter-1")
    answer = run(qtbot, window.ctx.tasks.start(window.ctx.engine.generate("Define sepsis.", TEST_SAMPLING)))
    assert answer.adapter == "B-iter-1"


def test_every_job_column_fits_at_the_default_window_size(qtbot, make_window):
    """At 1,280 x 800 no column of the job table hides behind a horizontal scroll bar (papercut)."""
    from datetime import datetime
    from types import SimpleNamespace

    window = make_window(model=None, start=False)
    window.show_page(2)
    page = window.training.train_page
    jobs = [
        SimpleNamespace(id=i, kind=kind, state=state, started_at="2026-12-04T09:00:00Z",
                        finished_at="2026-12-04T10:02:03Z", created_at="2026-12-04T08:59:00Z", data_size=1234)
        for i, (kind, state) in enumerate([("reward", "succeeded"), ("ppo", "cancelled"), ("evaluate", "failed")])
    ]  # fmt: skip
    page.table.show_jobs(jobs, datetime.now().astimezone())
    qtbot.waitUntil(lambda: page.table.viewport().width() > 0)
    qtbot.wait(50)  # the header lays its sections out on the next turn of the event loop
    header = page.table.horizontalHeader()
    assert page.table.horizontalScrollBar().maximum() == 0
    assert header.length() <= page.table.viewport().width()
    # and no text is elided: every column is as wide as its longest cell
    assert all(header.sectionSize(c) >= page.table.sizeHintForColumn(c) for c in range(header.count()))
