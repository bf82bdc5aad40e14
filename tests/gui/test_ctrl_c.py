"""Ctrl+C in the terminal closes the window cleanly: exit code 130 within seconds, no traceback."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX only")


def _opened(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as con:
            return con.execute("SELECT 1 FROM sqlite_master WHERE name = 'prompts'").fetchone() is not None
    except sqlite3.Error:
        return False


def test_ctrl_c_quits_the_window_without_a_traceback(tmp_path, tiny_model_dir):
    db = tmp_path / "ws.sqlite"
    env = {**os.environ, "MEDALIGN_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen",
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    command = [sys.executable, "-c", "import sys; from medalign_desktop.app import main; sys.exit(main())",
               "--db", str(db), "--model", str(tiny_model_dir), "--dtype", "float32", "--annotator", "Dr C"]  # fmt: skip
    app = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while not _opened(db):  # the event loop runs (the handler is installed) and the database is set up
            assert app.poll() is None, app.communicate()
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.2)
        time.sleep(1.0)  # the model loads meanwhile (Ctrl+C during the load must be quick too)
        assert app.poll() is None
        app.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _out, err = app.communicate(timeout=15)
        took = time.monotonic() - sent
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
    assert app.returncode in (130, 0), err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert took < 5, f"took {took:.1f} s to quit"
