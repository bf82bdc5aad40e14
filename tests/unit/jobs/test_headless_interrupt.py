"""Ctrl+C while no job runs (a snapshot, a study between steps) stops a terminal command at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, signal, sys, threading
    from medalign_desktop.jobs.headless import HeadlessWorkspace

    async def main(ws):
        threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        await asyncio.sleep(30)

    try:
        HeadlessWorkspace(sys.argv[1]).run(main)
    except KeyboardInterrupt:
        print("interrupted"); sys.exit(130)
    """
)


def test_ctrl_c_between_jobs_stops_the_command(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "ws.sqlite")], capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 130 and done.stdout.strip() == "interrupted", done.stderr[-2000:]
