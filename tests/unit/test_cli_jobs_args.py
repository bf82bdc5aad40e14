"""The job commands' pure parts: --set parsing, the progress line, `jobs cancel` of a waiting job."""

from __future__ import annotations

import pytest

from medalign_desktop import cli
from medalign_desktop.cli.jobs import parse_settings
from medalign_desktop.cli.progress import clock, progress_text
from medalign_desktop.store import Store


def test_settings_are_read_as_json_and_checked_against_the_kind():
    assert parse_settings("hitl", ["max_steps=20", "learning_rate=2e-4", "gradient_checkpointing=false"]) == {
        "max_steps": 20, "learning_rate": 2e-4, "gradient_checkpointing": False,
    }  # fmt: skip
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_settings("hitl", ["max_steps"])
    with pytest.raises(ValueError, match="ppo jobs have no such setting"):
        parse_settings("ppo", ["per_device_train_batch_size=2"])


def test_the_progress_line():
    assert clock(41) == "0:41" and clock(725) == "12:05" and clock(3723) == "1:02:03"
    line = progress_text("hitl", 6, 24, 1.23456, 41)
    assert line == "hitl  [######..................]  6/24  loss 1.235  eta 0:41"
    assert progress_text("sft", 3, 0, None, -1) == "sft  [........................]  3"


def test_cancelling_a_waiting_job_and_refusing_a_finished_one(tmp_path, capsys):
    db = tmp_path / "ws.sqlite"
    with Store.open(db) as store:
        waiting = store.create_job("hitl", {})
        done = store.create_job("hitl", {})
        store.set_job_state(done, "running")
        store.set_job_state(done, "succeeded")
    assert cli.main(["jobs", "cancel", str(waiting), "--db", str(db)]) == 0
    assert cli.main(["jobs", "cancel", str(done), "--db", str(db)]) == cli.EXIT_ERROR
    assert "only a queued or running job can be cancelled" in capsys.readouterr().err
    with Store.open(db) as store:
        assert store.get_job(waiting).state == "cancelled"
    assert cli.main(["jobs", "show", str(waiting), "--db", str(db)]) == 0
    assert "cancelled" in capsys.readouterr().out
