"""Reward-model scores in History: Models > "Score answers with this reward model" runs a score job (the
scripted stand-in program, which scores answer g as g / 4 - 1) and the History page's Reward column fills."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from medalign_desktop.store import Store
from medalign_desktop.ui.history.model import REWARD_COLUMN
from tests.gui.conftest import run, seed_verdicts

FAKE = Path(__file__).resolve().parents[1] / "data" / "fake_training.py"


def reward_cells(model) -> dict[int, str]:
    """generation id -> the Reward cell's text, for every loaded row."""
    return {
        model.row_at(r).generation_id: model.data(model.index(r, REWARD_COLUMN))
        for r in range(model.rowCount())
    }


def test_score_job_fills_the_reward_column(qtbot, make_window, db_path, tmp_path):
    seed_verdicts(db_path, 6)
    with Store.open(db_path) as store:
        reward_id = store.add_model_version(
            "R-reward-1", "reward", base_model=str(tmp_path / "base"), adapter_path=str(tmp_path / "r1")
        )
        store.add_model_version("B-iter-1", "hitl", adapter_path=str(tmp_path / "b1"))
    window = make_window(model=None)
    run(qtbot, window.start_task)  # no model loaded: the reward version names its own base
    window.training.jobs.launcher = f"python {FAKE}"
    history = window.history
    window.show_page(1)
    qtbot.waitUntil(lambda: history.model.rowCount() == 6 and not history.model.loading, timeout=20000)
    assert set(reward_cells(history.model).values()) == {""}  # nothing scored yet
    assert history.model.headerData(REWARD_COLUMN, Qt.Orientation.Horizontal) == "Reward"
    tooltip = history.model.headerData(REWARD_COLUMN, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert "Scores by the reward model R-reward-1" in tooltip  # (escaped) the newest reward model by default

    window.show_page(3)
    models = window.training.models_page
    qtbot.waitUntil(lambda: models.tree.topLevelItemCount() == 2)
    items = [models.tree.topLevelItem(i) for i in range(2)]
    models.tree.setCurrentItem(next(i for i in items if "B-iter-1" in i.text(0)))
    assert not models.score_button.isEnabled()  # a chat model does not score
    models.tree.setCurrentItem(next(i for i in items if "R-reward-1" in i.text(0)))
    assert models.score_button.isEnabled()
    with qtbot.waitSignal(window.training.jobs.results_ready, timeout=30000):
        qtbot.mouseClick(models.score_button, Qt.MouseButton.LeftButton)
    assert window.ctx.settings.scoring_reward_version == reward_id

    window.show_page(1)
    expected = {g: f"{g / 4 - 1:.2f}" for g in range(1, 7)}
    qtbot.waitUntil(lambda: reward_cells(history.model) == expected, timeout=20000)
    with Store.open(db_path) as store:
        assert store.answer_scores(reward_id) == {g: g / 4 - 1 for g in range(1, 7)}
        (job,) = store.list_jobs(kind="score")
        assert job.state == "succeeded" and [v.name for v in store.list_model_versions()] == [
            "R-reward-1",
            "B-iter-1",
        ]

    # Everything is scored: asking again starts no job and says so.
    messages = []
    window.training.status_message.connect(messages.append)
    window.show_page(3)
    items = [models.tree.topLevelItem(i) for i in range(2)]  # the list was re-read after the job
    models.tree.setCurrentItem(next(i for i in items if "R-reward-1" in i.text(0)))
    qtbot.mouseClick(models.score_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(messages))
    assert messages[-1] == "Every answer is scored already by this reward model."
