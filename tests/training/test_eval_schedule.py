"""Evaluation on a schedule for the trainer kinds (sft, hitl, dpo, reward), the held-back slice and its
10-example minimum, and early stopping on eval_loss."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from training import protocol
from training.__main__ import main
from training.callbacks import EarlyStopping
from training.checkpoints import find_best_and_last
from training.config import ConfigError, config_from_dict, defaults
from training.data import MIN_EVAL_SPLIT, load_job_data, split_note
from training.pair_training import check_inputs

from .conftest import parse_events

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def run_main(job_dir, kind="hitl"):
    out = io.StringIO()
    code = main([kind, "--job-dir", str(job_dir)], events=out)
    return code, parse_events(out.getvalue())


def evaluations(events) -> list[protocol.Metric]:
    return [e for e in events if isinstance(e, protocol.Metric) and e.eval_loss is not None]


def log_messages(events) -> list[str]:
    return [e.message for e in events if isinstance(e, protocol.Log)]


# -- configuration --


def test_defaults_hold_back_a_slice_and_evaluate_ten_times():
    for kind in ("sft", "hitl", "dpo", "reward"):
        config = defaults(kind)
        assert config["eval_fraction"] > 0 and config["eval_steps"] == 0.1, kind
        assert config["early_stopping_patience"] == 0 and config["early_stopping_threshold"] == 0.0


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("eval_steps", 0, "'eval_steps' must be a share of the steps below 1, or a whole number"),
        ("eval_steps", 2.5, "'eval_steps' must be a share"),
        ("early_stopping_patience", -1, "'early_stopping_patience' must be at least 0"),
        ("early_stopping_threshold", -0.1, "'early_stopping_threshold' must be at least 0"),
        ("early_stopping_patience", 1.5, "'early_stopping_patience' must be int"),
    ],
)
def test_bad_schedule_settings_are_named(field, value, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"kind": "hitl", "base_model": "/m", field: value})


def test_whole_eval_steps_are_accepted_as_a_number_of_steps():
    assert config_from_dict({"kind": "dpo", "base_model": "/m", "eval_steps": 5}).eval_steps == 5.0


# -- the slice --


def test_fewer_than_ten_examples_keep_all_for_training_and_say_so(make_job, make_pair_job, events_buffer):
    job_dir = make_job(n_examples=MIN_EVAL_SPLIT - 1)
    train, held = load_job_data(job_dir, 0.1, seed=0)
    assert len(train) == MIN_EVAL_SPLIT - 1 and held is None
    assert "9 examples are fewer than 10" in split_note(9, 0.1, 0)
    assert split_note(9, 0.0, 0) is None and split_note(12, 0.1, 1) is None and split_note(9, 0.1, 2) is None
    job_dir = make_job(n_examples=MIN_EVAL_SPLIT, name="ten")
    assert [len(part) for part in load_job_data(job_dir, 0.1, seed=0)] == [9, 1]

    config = config_from_dict(json.loads((make_pair_job(n_pairs=8) / "config.json").read_text()))
    train, held = check_inputs(config, make_pair_job(n_pairs=8, name="pairs"))
    assert len(train) == 8 and held is None
    assert any("No evaluation slice: 8 pairs are fewer than 10" in m for m in log_messages(
        parse_events(events_buffer.getvalue())))  # fmt: skip


# -- the schedule, per kind --


@pytest.mark.slow
def test_hitl_evaluates_every_eval_steps_and_at_the_end(make_job):
    job_dir = make_job(n_examples=16, max_steps=5, eval_steps=2)  # 2 of 16 held back by default
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK
    started = next(e for e in events if isinstance(e, protocol.Started))
    assert (started.n_train, started.n_eval) == (14, 2)
    assert [e.step for e in evaluations(events)] == [2, 4, 5]  # on the schedule, and the last step
    checkpoints = [e.path for e in events if isinstance(e, protocol.Artifact) and e.name == "checkpoint"]
    assert [p.rsplit("-", 1)[1] for p in checkpoints] == ["2", "4", "5"]  # a checkpoint at each evaluation


@pytest.mark.slow
def test_sft_reads_eval_steps_below_one_as_a_share_of_the_steps(make_job):
    job_dir = make_job(kind="sft", n_examples=16, max_steps=4, eval_steps=0.5)  # default eval_fraction 0.05
    code, events = run_main(job_dir, "sft")
    assert code == protocol.EXIT_OK
    assert [e.step for e in evaluations(events)] == [2, 4]
    assert events[-1].metrics["n_eval"] == 1 and "eval_loss" in events[-1].metrics


@pytest.mark.slow
@pytest.mark.parametrize("kind, accuracy", [("dpo", "eval_rewards/accuracies"), ("reward", "eval_accuracy")])
def test_pair_kinds_report_eval_loss_and_accuracy_at_every_evaluation(make_pair_job, kind, accuracy):
    job_dir = make_pair_job(kind=kind, n_pairs=12, max_steps=2, eval_steps=1)  # default: 1 of 12 held back
    code, events = run_main(job_dir, kind)
    assert code == protocol.EXIT_OK, events[-1]
    evals = evaluations(events)
    assert [e.step for e in evals] == [1, 2]
    assert all(0 <= e.extra[accuracy] <= 1 for e in evals)
    metrics = events[-1].metrics
    assert metrics["n_eval"] == 1 and 0 <= metrics[accuracy] <= 1 and metrics["best_step"] in (1, 2)


# -- early stopping --


@pytest.mark.slow
def test_early_stopping_stops_after_patience_evaluations_without_improvement(make_job):
    # A threshold no tiny-model step can beat: the first evaluation is the best, the next two do not count.
    job_dir = make_job(
        n_examples=16, max_steps=8, eval_steps=1, early_stopping_patience=2, early_stopping_threshold=100.0
    )
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events[-1]
    evals = evaluations(events)
    assert [e.step for e in evals] == [1, 2, 3]
    sentence = next(m for m in log_messages(events) if m.startswith("Stopped early"))
    assert sentence == (
        f"Stopped early at step 3: eval_loss has not improved for 2 evaluations; best {evals[0].eval_loss:.4g} at step 1."
    )
    marks = [e for e in events if isinstance(e, protocol.Metric) and "stopped_early" in e.extra]
    assert [(e.step, e.extra["stopped_early"]) for e in marks] == [(3, 1.0)]  # the app marks the job live
    metrics = events[-1].metrics
    assert metrics["stopped_early"] is True and metrics["global_step"] == 3
    best, last = find_best_and_last(job_dir)
    assert last.step == 3  # the last checkpoint is the weights training stopped with


@pytest.mark.slow
def test_early_stopping_without_an_evaluation_set_says_it_is_off(make_job):
    job_dir = make_job(n_examples=8, max_steps=2, early_stopping_patience=1)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK
    assert any("no evaluation set: no early stopping" in m for m in log_messages(events))
    assert events[-1].metrics["stopped_early"] is False and events[-1].metrics["global_step"] == 2


def test_early_stopping_replays_a_resumed_runs_evaluations():
    messages: list[str] = []
    sent: list[protocol.Event] = []
    stopper = EarlyStopping(patience=2, threshold=0.0, log=messages.append, emit=sent.append)
    history = [{"loss": 3.0, "step": 1}, {"eval_loss": 2.0, "step": 2}, {"eval_loss": 2.5, "step": 4}]
    state = SimpleNamespace(log_history=history, global_step=4, max_steps=20)
    stopper.on_train_begin(None, state, None)
    assert (stopper.best, stopper.best_step, stopper.bad_evaluations) == (2.0, 2, 1)
    control = SimpleNamespace(should_training_stop=False)
    state.global_step = 6
    stopper.on_evaluate(None, state, control, metrics={"eval_loss": 2.0})  # equal is no improvement
    assert control.should_training_stop and stopper.stopped_at == 6
    assert messages == [
        "Stopped early at step 6: eval_loss has not improved for 2 evaluations; best 2 at step 2."
    ]
    assert [(e.step, e.extra) for e in sent] == [(6, {"stopped_early": 1.0})]


def test_early_stopping_needs_more_than_the_threshold_and_never_counts_the_last_step():
    stopper = EarlyStopping(patience=1, threshold=0.1, log=lambda m: None, emit=lambda e: None)
    state = SimpleNamespace(log_history=[], global_step=1, max_steps=3)
    control = SimpleNamespace(should_training_stop=False)
    stopper.on_train_begin(None, state, control)
    stopper.on_evaluate(None, state, control, metrics={"eval_loss": 1.0})
    state.global_step = 2
    stopper.on_evaluate(None, state, control, metrics={"eval_loss": 0.95})  # better, but by less than 0.1
    assert control.should_training_stop and stopper.best == 1.0
    late = EarlyStopping(patience=1, threshold=0.0, log=lambda m: None, emit=lambda e: None)
    state = SimpleNamespace(log_history=[{"eval_loss": 1.0, "step": 2}], global_step=3, max_steps=3)
    control = SimpleNamespace(should_training_stop=False)
    late.on_train_begin(None, state, control)
    late.on_evaluate(None, state, control, metrics={"eval_loss": float("nan")})
    assert not control.should_training_stop and late.stopped_at is None  # training ends there anyway
