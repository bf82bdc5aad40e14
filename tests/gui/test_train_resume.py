"""The Train page's checkpoint controls with the scripted stand-in program (tests/data/fake_training.py,
"checkpoints" mode: 6 steps, eval loss 1.5 / 1.2 / 1.3 at steps 2 / 4 / 6): Resume enabled only for a stopped
job with a checkpoint, resuming continues the plot, the "new versions from" combo, the button that makes the
other checkpoint a version, and "stopped early" in the header."""

from __future__ import annotations

from PySide6.QtCore import Qt

from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.store import Store
from medalign_desktop.ui.train.loss_plot import PANELS
from tests.gui.conftest import run
from tests.unit.jobs.test_manager import FAKE


def seed_feedback(db_path, count: int) -> None:
    with Store.open(db_path) as store:
        for i in range(count):
            prompt = store.add_prompt(f"Question {i} on anaphylaxis?")
            generation = store.add_generation(prompt, f"Adrenaline, dose {i}.", settings={})
            store.record_verdict(generation, "accept", annotator="dr-a")


def fake_request(model_dir, adapter, **overrides) -> JobRequest:
    overrides = {"fake_mode": "checkpoints", "fake_adapter_source": str(adapter), **overrides}
    return JobRequest("hitl", str(model_dir), "system", overrides=overrides)


def xs(plot, name: str) -> list[float]:
    data = plot.curves[name].getData()[0]
    return [] if data is None else list(data)


def start(qtbot, window, job_request) -> int:
    job_id = run(qtbot, window.ctx.tasks.start(window.training.jobs.submit(job_request)))
    window.training.train_page.select_job(job_id)
    return job_id


def test_resume_and_checkpoint_versions_from_the_train_page(
    qtbot, make_window, db_path, tiny_model_dir, tiny_adapters
):
    seed_feedback(db_path, 3)
    window = make_window(model=None, db=db_path)
    run(qtbot, window.start_task)  # False: no model, which the Train page does not need
    window.show_page(2)
    page, jobs = window.training.train_page, window.training.jobs
    jobs.launcher = f"python {FAKE}"

    # the combo sets where new versions come from
    assert page.version_source.value == "best" and jobs.version_from == "best"
    page.version_source.combo.setCurrentIndex(1)
    assert jobs.version_from == "last" == window.ctx.settings.version_from  # kept for the next session
    page.version_source.combo.setCurrentIndex(0)
    assert jobs.version_from == "best" == window.ctx.settings.version_from
    assert page.version_source.combo.itemText(0) == "best checkpoint (lowest evaluation loss)"

    # a job stopped after its first checkpoint (step 2): Resume is enabled once it is cancelled
    job_id = start(qtbot, window, fake_request(tiny_model_dir, tiny_adapters[0], fake_hang_at=3))
    qtbot.waitUntil(lambda: page.plot.buffer.count("loss") == 3, timeout=20000)
    assert not page.resume_button.isEnabled() and page.cancel_button.isEnabled()
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not jobs.busy, timeout=20000)
    qtbot.waitUntil(lambda: page.resume_button.isEnabled())
    assert "(cancelled)" in page.title.text() and not page.checkpoint_row.isVisible()

    # Resume: the curve goes on from step 3 without repeating a step, and the job succeeds
    qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
    assert not page.resume_button.isEnabled()
    qtbot.waitUntil(lambda: not jobs.busy and page.title.text().endswith("(succeeded)"), timeout=20000)
    qtbot.waitUntil(lambda: xs(page.plot, "loss") == [1, 2, 3, 4, 5, 6])
    assert xs(page.plot, "eval_loss") == [2, 4, 6] and not page.resume_button.isEnabled()

    # the version is the best checkpoint; the button makes the last one a version too
    row = page.checkpoint_row
    qtbot.waitUntil(lambda: row.isVisible())
    assert row.label.text() == "Version B-iter-1 is the best checkpoint (step 4, eval loss 1.2)."
    assert row.button.text() == "Make the last checkpoint (step 6, eval loss 1.3) a version"
    qtbot.mouseClick(row.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not row.button.isVisibleTo(row), timeout=20000)
    assert row.label.text().endswith("The last checkpoint is version B-iter-2.")
    with Store.open(db_path) as store:
        versions = store.list_model_versions()
    assert [(v.name, v.job_id, v.metrics["checkpoint"]) for v in versions] == [
        ("B-iter-1", job_id, "best"),
        ("B-iter-2", job_id, "last"),
    ]


def test_resume_stays_off_without_a_checkpoint_and_early_stops_show(
    qtbot, make_window, db_path, tiny_model_dir, tiny_adapters
):
    seed_feedback(db_path, 3)
    window = make_window(model=None, db=db_path)
    run(qtbot, window.start_task)
    window.show_page(2)
    page, jobs = window.training.train_page, window.training.jobs
    jobs.launcher = f"python {FAKE}"

    # cancelled before any checkpoint: nothing to resume from
    hung = start(qtbot, window, fake_request(tiny_model_dir, tiny_adapters[0], fake_mode="hang"))
    qtbot.waitUntil(lambda: page.plot.buffer.count("loss") == 1, timeout=20000)
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not jobs.busy and "(cancelled)" in page.title.text(), timeout=20000)
    page.resume_button.setEnabled(True)  # so the check below must be what turns it off
    run(qtbot, window.ctx.tasks.start(page._check_job(page.jobs_by_id[hung])))
    assert not page.resume_button.isEnabled()

    # a job that stopped early says so; with "last step" chosen, its version is the last checkpoint
    page.version_source.combo.setCurrentIndex(1)
    with Store.open(db_path) as store:  # new feedback, so the next retrain has something to learn
        prompt = store.add_prompt("Define sepsis.")
        store.record_verdict(
            store.add_generation(prompt, "A response.", settings={}), "accept", annotator="a"
        )
    start(qtbot, window, fake_request(tiny_model_dir, tiny_adapters[0], fake_stopped_early=True))
    qtbot.waitUntil(lambda: "stopped early at step 6" in page.title.text(), timeout=20000)
    assert page.title.text().endswith("(succeeded, stopped early at step 6)")
    row = page.checkpoint_row
    qtbot.waitUntil(lambda: row.isVisible())
    assert row.label.text() == "Version B-iter-1 is the last checkpoint (step 6, eval loss 1.3)."
    assert row.button.text() == "Make the best checkpoint (step 4, eval loss 1.2) a version"


EVALUATION_BESIDE_TRAINING = {
    "sft": [("loss", "eval_loss")],
    "hitl": [("loss", "eval_loss")],
    "dpo": [("loss", "eval_loss"), ("rewards/accuracies", "eval_rewards/accuracies")],
    "reward": [("loss", "eval_loss"), ("accuracy", "eval_accuracy")],
    "ppo": [("reward_mean", "eval_reward_mean"), ("kl", "eval_kl")],
}


def test_every_method_plots_its_evaluation_beside_its_training_curve():
    for kind, pairs in EVALUATION_BESIDE_TRAINING.items():
        for training, evaluation in pairs:
            (panel,) = [p for p in PANELS[kind] if training in {c.metric for c in p.curves}]
            curve = next((c for c in panel.curves if c.metric == evaluation), None)
            assert curve is not None and curve.dots, (kind, panel.title, evaluation)


def test_stop_early_choice_reaches_the_jobs_settings_and_is_kept(qtbot, make_window, db_path):
    window = make_window(model=None, db=db_path)
    run(qtbot, window.start_task)
    window.show_page(2)
    choice, training = window.training.train_page.early_stopping, window.training
    assert choice.value == 0 and not choice.patience.isEnabled()
    assert "early_stopping_patience" not in training.overrides_for("hitl")  # off: the kind's default (0)

    choice.check.setChecked(True)
    assert choice.patience.isEnabled() and choice.value == 3
    assert window.ctx.settings.early_stopping_patience == 3  # kept for the next session
    choice.patience.setValue(5)
    for kind in ("sft", "hitl", "dpo", "reward", "ppo"):  # every training kind has the setting
        assert training.overrides_for(kind)["early_stopping_patience"] == 5, kind
    assert "early_stopping_patience" not in training.overrides_for("score")  # it trains nothing

    choice.check.setChecked(False)
    assert window.ctx.settings.early_stopping_patience == 0
    assert "early_stopping_patience" not in training.overrides_for("ppo")
