"""Past runs compared: two or more finished jobs selected on the Train page are overlaid on one plot, each
job's curves in its own colour with the values stored in the database; one job selected is replayed alone."""

from __future__ import annotations

from PySide6.QtCore import Qt

from medalign_desktop.store import Store
from medalign_desktop.ui.train.loss_plot import LossPlot, overlay_panels, run_colour
from tests.gui.conftest import run

SFT_POINTS = [(1, "loss", 2.0), (2, "loss", 1.5), (2, "eval_loss", 1.8), (1, "learning_rate", 1e-4)]
DPO_POINTS = [(1, "loss", 0.69), (2, "loss", 0.6), (1, "rewards/accuracies", 0.5), (1, "learning_rate", 5e-5)]


def xy(curve) -> tuple[list[float], list[float]]:
    xs, ys = curve.getData()
    return ([], []) if xs is None else (list(xs), list(ys))


def test_overlay_panels_keep_the_loss_and_the_metrics_every_run_logged():
    panels = overlay_panels("dpo", [{"loss", "rewards/accuracies"}, {"loss", "rewards/accuracies", "margin"}])
    assert [panel.title for panel in panels] == ["loss", "reward accuracy"]
    assert [curve.metric for curve in panels[1].curves] == ["rewards/accuracies"]
    assert [c.metric for c in overlay_panels("sft", [{"loss"}, {"eval_loss"}])[0].curves] == [
        "loss",
        "eval_loss",
    ]


def test_overlay_draws_each_run_in_its_colour_then_a_replay_shows_one_job(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    redraws = plot.redraws
    plot.show_overlay([("#1 A SFT", "sft", SFT_POINTS), ("#2 D DPO", "dpo", DPO_POINTS)])
    assert plot.comparing and plot.kind == "sft" and plot.redraws == redraws + 1
    assert [panel.title for panel in plot.panels] == ["loss", "learning rate"]  # the first run's panels
    assert xy(plot.run_curves[("#1 A SFT", "loss")]) == ([1.0, 2.0], [2.0, 1.5])
    assert xy(plot.run_curves[("#2 D DPO", "loss")]) == ([1.0, 2.0], [0.69, 0.6])
    assert xy(plot.run_curves[("#1 A SFT", "eval_loss")]) == ([2.0], [1.8])
    assert ("#2 D DPO", "eval_loss") not in plot.run_curves  # it logged none
    assert xy(plot.run_curves[("#2 D DPO", "learning_rate")]) == ([1.0], [5e-5])
    pens = {label: plot.run_curves[(label, "loss")].opts["pen"].color().name() for label in plot.run_buffers}
    assert pens == {"#1 A SFT": run_colour(0), "#2 D DPO": run_colour(1)}
    legend = [label.text for _item, label in plot.loss_plot.legend.items]
    assert legend == ["#1 A SFT", "#1 A SFT evaluation", "#2 D DPO"]

    plot.show_series(DPO_POINTS, kind="dpo")
    assert not plot.comparing and not plot.run_curves
    assert xy(plot.curves["loss"]) == ([1.0, 2.0], [0.69, 0.6])


def store_jobs(db_path) -> list[int]:
    """#1 SFT and #2 DPO finished with metrics, #3 SFT failed without any."""
    with Store.open(db_path) as store:
        ids = []
        for kind, points, state in (("sft", SFT_POINTS, "succeeded"), ("dpo", DPO_POINTS, "cancelled")):
            job_id = store.create_job(kind, {})
            store.set_job_state(job_id, "running")
            store.add_job_metrics(job_id, points)
            store.set_job_state(job_id, state)
            ids.append(job_id)
        return ids


def click_job(qtbot, page, job_id: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    row = next(r for r in range(page.table.rowCount()) if page._job_id(r) == job_id)
    rect = page.table.visualRect(page.table.model().index(row, 0))
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def test_selecting_finished_jobs_overlays_them_and_one_job_replays_alone(qtbot, make_window, db_path):
    sft, dpo = store_jobs(db_path)
    window = make_window(model=None, db=db_path)
    run(qtbot, window.start_task)  # False: no model, which the Train page does not need
    window.show_page(2)
    page = window.training.train_page
    qtbot.waitUntil(lambda: page.table.rowCount() == 2 and page.selected_job == dpo)
    qtbot.waitUntil(lambda: page.plot.kind == "dpo" and len(xy(page.plot.curves["loss"])[0]) == 2)

    click_job(qtbot, page, sft, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: page.plot.comparing)
    assert page.compared_jobs == (sft, dpo) and page.selected_job == sft  # the details: the one clicked last
    assert page.title.text().startswith(f"Job #{sft}:")
    labels = list(page.plot.run_buffers)
    assert labels == [f"#{sft} A SFT", f"#{dpo} D DPO"] and page.plot.kind == "sft"
    assert xy(page.plot.run_curves[(labels[0], "loss")]) == ([1.0, 2.0], [2.0, 1.5])
    assert xy(page.plot.run_curves[(labels[1], "loss")]) == ([1.0, 2.0], [0.69, 0.6])
    assert page.compare_label.isVisibleTo(page) and "Compare selected runs" in page.compare_label.text()

    # a queued job joins the selection: it is left out of the overlay and its live points draw nothing
    queued = run(qtbot, window.ctx.tasks.start(window.ctx.store.call(Store.create_job, "hitl", {})))
    page.refresh()
    qtbot.waitUntil(lambda: page.table.rowCount() == 3)
    assert page.compared_jobs == (sft, dpo) and page.plot.comparing
    click_job(qtbot, page, queued, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: page.selected_job == queued)
    assert page.compared_jobs == (sft, dpo) and f"#{queued}" in page.compare_label.text()
    window.training.jobs.metric.emit(queued, {"step": 1, "loss": 3.0})
    assert page.plot.buffer.count("loss") == 0 and page.live_points[queued] == [(1, "loss", 3.0)]

    # one job clicked again: its replay alone
    click_job(qtbot, page, sft)
    qtbot.waitUntil(lambda: not page.plot.comparing and page.plot.kind == "sft")
    assert page.compared_jobs == () and not page.compare_label.isVisibleTo(page)
    qtbot.waitUntil(lambda: xy(page.plot.curves["loss"]) == ([1.0, 2.0], [2.0, 1.5]))
    assert xy(page.plot.curves["eval_loss"]) == ([2.0], [1.8])

    # Shift-click selects the range: the overlay again, the details now the DPO job's
    click_job(qtbot, page, dpo, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: page.plot.comparing)
    assert page.compared_jobs == (sft, dpo) and page.selected_job == dpo
    assert xy(page.plot.run_curves[(f"#{dpo} D DPO", "learning_rate")]) == ([1.0], [5e-5])
