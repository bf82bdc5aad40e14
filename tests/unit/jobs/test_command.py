"""The job command line and environment, exactly."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_default_launcher_in_the_bundle_runs_the_apps_own_executable():
    argv = build_command("hitl", "/jobs/7", python="/opt/medalign/medalign-desktop", frozen=True)
    assert argv == ["/opt/medalign/medalign-desktop", "--run-training", "hitl", "--job-dir", "/jobs/7"]


def test_resume_adds_the_flag_last_with_every_launcher():
    assert build_command("hitl", "/jobs/7", python="/venv/bin/python", resume=True) == [
        "/venv/bin/python", "-m", "training", "hitl", "--job-dir", "/jobs/7", "--resume",
    ]  # fmt: skip
    argv = build_command("ppo", "/jobs/my job", python="/opt/app", frozen=True, resume=True)
    assert argv == ["/opt/app", "--run-training", "ppo", "--job-dir", "/jobs/my job", "--resume"]
    argv = build_command("dpo", "/j", launcher="accelerate launch --multi_gpu -m training", resume=True)
    assert argv == [
        "accelerate",
        "launch",
        "--multi_gpu",
        "-m",
        "training",
        "dpo",
        "--job-dir",
        "/j",
        "--resume",
    ]
    assert "--resume" not in build_command("dpo", "/j", python="py", resume=False)


def test_python3_launcher_in_the_bundle_is_the_same_entry():
    argv = build_command(
        "dpo", "C:\\Jobs\\my job", launcher="python3 -m training", python="M.exe", frozen=True
    )
    assert argv == ["M.exe", "--run-training", "dpo", "--job-dir", "C:\\Jobs\\my job"]


def test_interpreter_options_cannot_be_bundled():
    with pytest.raises(
        ValueError, match="needs a Python interpreter, which the desktop bundle does not have"
    ):
        build_command("sft", "/jobs/1", launcher="python -X dev -m training", python="app", frozen=True)


def test_non_python_launcher_is_kept_in_the_bundle():
    argv = build_command("sft", "/jobs/2", launcher="/usr/bin/accelerate launch -m training", frozen=True)
    assert argv == ["/usr/bin/accelerate", "launch", "-m", "training", "sft", "--job-dir", "/jobs/2"]


def test_accelerate_launcher_for_several_gpus():
    argv = build_command("sft", "/jobs/8", launcher="accelerate launch --multi_gpu -m training")
    assert argv == ["accelerate", "launch", "--multi_gpu", "-m", "training", "sft", "--job-dir", "/jobs/8"]


def test_torchrun_launcher_for_several_processes():
    argv = build_command(
        "dpo", "/jobs/my job", launcher="torchrun --nproc_per_node 2 -m training", resume=True
    )
    assert argv == [
        "torchrun", "--nproc_per_node", "2", "-m", "training", "dpo", "--job-dir", "/jobs/my job", "--resume",
    ]  # fmt: skip
    argv = build_command("sft", "/j", launcher="torchrun --nnodes 2 --node_rank 0 --master_addr 10.0.0.1 "
                         "--master_port 29500 --nproc_per_node 4 -m training", frozen=True)  # fmt: skip
    assert argv[:11] == ["torchrun", "--nnodes", "2", "--node_rank", "0", "--master_addr", "10.0.0.1",
                         "--master_port", "29500", "--nproc_per_node", "4"]  # fmt: skip
    assert argv[11:] == ["-m", "training", "sft", "--job-dir", "/j"]


def test_torchrun_module_runs_under_the_apps_interpreter_but_not_in_the_bundle():
    launcher = "python -m torch.distributed.run --nproc_per_node 2 -m training"
    assert build_command("hitl", "/j", launcher=launcher, python="/venv/bin/python", frozen=False) == [
        "/venv/bin/python", "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "training",
        "hitl", "--job-dir", "/j",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="needs a Python interpreter"):
        build_command("hitl", "/j", launcher=launcher, python="app", frozen=True)


def test_job_dir_with_spaces_stays_one_argument():
    argv = build_command("dpo", "/data/my jobs/9", launcher="python3 -m training", python="py")
    assert argv == ["py", "-m", "training", "dpo", "--job-dir", "/data/my jobs/9"]


def test_frozen_defaults_to_whether_this_process_is_the_bundle(monkeypatch):
    assert build_command("sft", "/j", python="py") == ["py", "-m", "training", "sft", "--job-dir", "/j"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # what PyInstaller's bootloader sets
    assert build_command("sft", "/j", python="app") == ["app", "--run-training", "sft", "--job-dir", "/j"]


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


def test_the_apps_training_entry_runs_the_training_program_without_qt(tmp_path):
    # What the bundle runs: the GUI's entry with --run-training. No config.json, so a `failed` event
    # naming it must come on stdout, and the GUI toolkit must never be imported for a training run.
    code = (
        "import sys; from medalign_desktop.app import main; rc = main(sys.argv[1:]);"
        "assert 'PySide6.QtWidgets' not in sys.modules, 'Qt imported'; sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--run-training", "sft", "--job-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1, done.stderr
    assert events[-1]["event"] == "failed" and "config.json" in events[-1]["reason"]
