"""The job command line and environment, exactly."""

from __future__ import annotations

import pytest

from medalign_desktop.jobs.command import build_command, build_environment


def test_default_launcher_uses_the_apps_interpreter():
    assert build_command("hitl", "/jobs/7", python="/venv/bin/python") == [
        "/venv/bin/python",
        "-m",
        "training",
        "hitl",
        "--job-dir",
        "/jobs/7",
    ]


def test_accelerate_launcher_for_several_gpus():
    argv = build_command("sft", "/jobs/8", launcher="accelerate launch --multi_gpu -m training")
    assert argv == ["accelerate", "launch", "--multi_gpu", "-m", "training", "sft", "--job-dir", "/jobs/8"]


def test_job_dir_with_spaces_stays_one_argument():
    argv = build_command("dpo", "/data/my jobs/9", launcher="python3 -m training", python="py")
    assert argv == ["py", "-m", "training", "dpo", "--job-dir", "/data/my jobs/9"]


@pytest.mark.parametrize(
    "kind, launcher, message",
    [
        ("train", "python -m training", "Unknown job kind 'train'"),
        ("sft", "", "launcher setting is empty"),
        ("sft", "python -m 'training", "cannot be parsed"),
    ],
)
def test_bad_settings_are_explained(kind, launcher, message):
    with pytest.raises(ValueError, match=message):
        build_command(kind, "/jobs/1", launcher=launcher)


def test_environment_is_explicit_and_offline():
    env = build_environment(
        {
            "PATH": "/bin",
            "HOME": "/home/c",
            "SECRET_TOKEN": "x",
            "HF_HUB_OFFLINE": "0",
            "CUDA_VISIBLE_DEVICES": "1",
        },
        extra={"OMP_NUM_THREADS": "2"},
    )
    assert "SECRET_TOKEN" not in env
    assert env["HF_HUB_OFFLINE"] == "1" and env["PYTHONUNBUFFERED"] == "1" and env["TQDM_DISABLE"] == "1"
    assert env["PYTHONWARNINGS"] == "ignore::FutureWarning,ignore::DeprecationWarning"
    assert env["PATH"] == "/bin" and env["CUDA_VISIBLE_DEVICES"] == "1" and env["OMP_NUM_THREADS"] == "2"
