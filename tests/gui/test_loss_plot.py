"""The training plots: each method gets its own panels, points are buffered and drawn on the timer only."""

from __future__ import annotations

import pytest

from medalign_desktop.ui.train.loss_plot import PANELS, LossPlot, MetricBuffer, overlay_panels


def test_buffer_keeps_every_metric_and_skips_missing_values():
    buffer = MetricBuffer()
    buffer.add(1, {"loss": 2.0, "rewards/accuracies": 0.5, "eval_loss": None})
    assert (buffer.count("loss"), buffer.count("rewards/accuracies"), buffer.count("eval_loss")) == (1, 1, 0)
    assert buffer.dirty


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("hitl", {"loss", "eval_loss", "learning_rate"}),
        ("dpo", {"loss", "eval_loss", "rewards/accuracies", "eval_rewards/accuracies", "rewards/margins"}),
        ("reward", {"loss", "eval_loss", "accuracy", "eval_accuracy", "margin"}),
        ("ppo", {"loss", "reward_mean", "kl", "policy_loss", "value_loss", "clip_fraction", "answer_length"}),
    ],
)
def test_each_method_shows_its_own_curves(qtbot, kind, expected):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_kind(kind)
    assert expected <= set(plot.curves)
    assert len(plot.plots) == len(PANELS[kind])


def test_replay_switches_panels_and_draws_once(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.show_series([(1, "loss", 2.0), (1, "kl", 0.1), (2, "kl", 0.3)], kind="ppo")
    assert plot.kind == "ppo" and plot.redraws == 1
    xs, ys = plot.curves["kl"].getData()
    assert list(xs) == [1.0, 2.0] and list(ys) == [0.1, 0.3]
    plot.add_point(3, {"kl": 0.2})
    assert plot.curves["kl"].getData()[0].size == 2  # not drawn per event
    qtbot.waitUntil(lambda: plot.curves["kl"].getData()[0].size == 3, timeout=2000)


@pytest.mark.parametrize("kind", ["evaluate", "score"])
def test_a_job_that_trains_nothing_shows_no_empty_plot(qtbot, kind):
    """evaluate and score log no loss: no empty 0.1-0.9 axes, a sentence instead (papercut)."""
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.show()
    plot.show_series([], kind=kind)
    assert plot.plots == [] and plot.curves == {}
    assert not plot.canvas.isVisible() and plot.no_plot_note.isVisible()
    assert overlay_panels(kind, [set(), set()]) == ()
    plot.set_kind("hitl")  # the next job that trains gets its plots back
    assert plot.canvas.isVisible() and not plot.no_plot_note.isVisible() and len(plot.plots) == 2
