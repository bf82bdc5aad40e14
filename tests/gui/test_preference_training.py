"""DPO, the reward model and PPO from the Train page with the real training programs on the tiny model: the dialog
offers the feedback pairs, the job runs, the plot shows the method's own curves, and the version is registered
(a DPO version answers; a reward model does not and cannot be activated)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from medalign_desktop.store import Store
from tests.gui.conftest import run, seed_verdicts

FAST = {"max_length": 64, "per_device_train_batch_size": 2, "gradient_checkpointing": False, "max_steps": 2}


def versions(db_path):
    with Store.open(db_path) as store:
        return [(v.name, v.kind, v.is_active) for v in store.list_model_versions()]


def job_states(db_path):
    with Store.open(db_path) as store:
        return [(job.kind, job.state, job.error) for job in store.list_jobs()] + [(None, None, None)] * 3


def start_from_dialog(qtbot, window, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.training.job_dialog is not None and window.training.job_dialog.isVisible())
    dialog = window.training.job_dialog
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.isEnabled()
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    return dialog


@pytest.mark.slow
def test_dpo_then_reward_model_then_ppo_from_the_train_page(qtbot, make_window, db_path):
    seed_verdicts(db_path, 9)  # 3 edits: 3 preference pairs (edited > original)
    window = make_window(db=db_path)
    assert run(qtbot, window.start_task) is True
    window.training.overrides = dict(FAST)
    window.training.kind_overrides = {
        "reward": {"max_length": 160},  # the reward model drops pairs that do not fit, it does not cut them
        "ppo": {"max_steps": 1, "batch_size": 2, "max_new_tokens": 8, "max_length": 160, "ppo_epochs": 1},
    }
    window.show_page(2)
    page = window.training.train_page

    dialog = start_from_dialog(qtbot, window, page.dpo_button)
    assert "3 pairs" in dialog.intro.text()
    qtbot.waitUntil(lambda: window.ctx.engine.adapter_name == "D-dpo-1", timeout=120000)
    assert page.plot.kind == "dpo"
    qtbot.waitUntil(lambda: page.plot.buffer.count("rewards/accuracies") >= 1, timeout=10000)
    assert set(page.plot.curves) >= {"loss", "rewards/accuracies", "rewards/margins"}
    qtbot.waitUntil(lambda: versions(db_path) == [("D-dpo-1", "dpo", True)])

    start_from_dialog(qtbot, window, page.reward_button)
    qtbot.waitUntil(lambda: job_states(db_path)[1][1] in ("succeeded", "failed"), timeout=120000)
    assert job_states(db_path)[1] == ("reward", "succeeded", None), job_states(db_path)[1][2]
    assert versions(db_path)[1][:2] == ("R-reward-1", "reward")
    assert window.ctx.engine.adapter_name == "D-dpo-1"  # a reward model never becomes the answering model
    window.show_page(3)
    models = window.training.models_page
    qtbot.waitUntil(lambda: models.tree.topLevelItemCount() == 2)
    reward_item = next(
        models.tree.topLevelItem(i) for i in range(2) if "R-reward-1" in models.tree.topLevelItem(i).text(0)
    )
    models.tree.setCurrentItem(reward_item)
    assert not models.activate_button.isEnabled()

    # PPO (Model C): the dialog offers the reward model; the policy starts from the active DPO version
    window.show_page(2)
    dialog = start_from_dialog(qtbot, window, page.ppo_button)
    assert dialog.reward_combo.currentText().startswith("R-reward-1")
    qtbot.waitUntil(lambda: window.ctx.engine.adapter_name == "C-ppo-1", timeout=120000)
    assert page.plot.kind == "ppo"
    qtbot.waitUntil(lambda: page.plot.buffer.count("kl") >= 1, timeout=10000)
    with Store.open(db_path) as store:
        ppo = next(v for v in store.list_model_versions() if v.name == "C-ppo-1")
    assert ppo.kind == "ppo" and ppo.parent_id == 1  # continued from D-dpo-1
