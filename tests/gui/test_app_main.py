"""`medalign-desktop` as a program: it starts, loads the model and quits; bad input gives a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_app(tmp_path: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDALIGN_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen",
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    command = [
        sys.executable,
        "-c",
        "import sys; from medalign_desktop.app import main; sys.exit(main())",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def test_quit_after_load_exits_zero_once_the_model_is_loaded(tmp_path, tiny_model_dir):
    db = tmp_path / "ws.sqlite"
    result = run_app(tmp_path, "--db", str(db), "--model", str(tiny_model_dir), "--dtype", "float32",
                     "--annotator", "Dr Smoke", "--quit-after-load")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "QThread: Destroyed" not in result.stderr  # every worker thread ended before the application
    assert db.exists()
    assert "Dr Smoke" in (tmp_path / "home" / "config" / "gui.ini").read_text()


def test_a_bad_model_folder_is_a_clear_message_not_a_traceback(tmp_path):
    result = run_app(tmp_path, "--db", str(tmp_path / "ws.sqlite"), "--model", str(tmp_path / "nowhere"),
                     "--quit-after-load")  # fmt: skip
    assert result.returncode == 1
    assert f"{tmp_path / 'nowhere'}: the model folder does not exist." in result.stderr
    assert "Traceback" not in result.stderr


def test_no_model_configured_tells_how_to_install_one(tmp_path):
    result = run_app(tmp_path, "--db", str(tmp_path / "ws.sqlite"), "--quit-after-load")
    assert result.returncode == 1
    assert "medalign models install-demo" in result.stderr and "File > Set up a model" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_folder_without_weights_names_what_is_missing(tmp_path, tiny_model_dir):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (broken / name).write_bytes((tiny_model_dir / name).read_bytes())
    result = run_app(
        tmp_path, "--db", str(tmp_path / "ws.sqlite"), "--model", str(broken), "--quit-after-load"
    )
    assert result.returncode == 1
    assert "no weights found" in result.stderr and "Traceback" not in result.stderr
