"""`python -m training` as the app runs it: a child process whose stdout is the event stream and nothing else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training import protocol
from training.protocol import Event, EventStreamParser, LogText

ROOT = Path(__file__).resolve().parents[2]


def command(kind: str, job_dir: Path) -> list[str]:
    return [sys.executable, "-m", "training", kind, "--job-dir", str(job_dir)]


def child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")  # see conftest.one_torch_thread
    env.pop("RANK", None)
    return env


def run_child(kind: str, job_dir: Path, timeout: float = 120) -> tuple[int, list, str]:
    done = subprocess.run(
        command(kind, job_dir), capture_output=True, cwd=ROOT, env=child_env(), timeout=timeout
    )
    parser = EventStreamParser()
    return done.returncode, parser.feed(done.stdout) + parser.close(), done.stderr.decode(errors="replace")


@pytest.mark.slow
def test_stdout_is_the_event_stream_only(make_job):
    job_dir = make_job()
    code, items, stderr = run_child("hitl", job_dir)
    assert code == protocol.EXIT_OK, stderr[-3000:]
    text = [item.text for item in items if isinstance(item, LogText)]
    assert not text, f"non-event lines on stdout: {text[:3]}"
    kinds = [item.EVENT for item in items]
    assert kinds.count("started") == 1 and kinds[-1] == "finished"
    assert kinds.index("started") < kinds.index("metric") < kinds.index("artifact") < kinds.index("finished")
    assert kinds.count("progress") == 3 and kinds.count("metric") == 3
    finished = items[-1]
    assert Path(finished.adapter_path) == job_dir / "adapter"
    assert (job_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((job_dir / "result.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_sigterm_mid_run_cancels(make_job):
    job_dir = make_job(max_steps=100_000)
    child = subprocess.Popen(
        command("hitl", job_dir), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, env=child_env()
    )
    parser = EventStreamParser()
    items: list = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # wait until training is under way
            line = child.stdout.readline()
            assert line, "the child ended before training started"
            items += parser.feed(line)
            if any(isinstance(item, protocol.Progress) and item.step >= 2 for item in items):
                break
        child.send_signal(signal.SIGTERM)
        rest, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    items += parser.feed(rest) + parser.close()
    assert child.returncode == protocol.EXIT_CANCELLED
    assert all(isinstance(item, Event) for item in items)
    last = items[-1]
    assert isinstance(last, protocol.Failed) and last.reason == "cancelled"
    assert not (job_dir / "adapter").exists() and not list(job_dir.glob("adapter.tmp-*"))
    assert not any(isinstance(item, protocol.Finished) for item in items)


def test_bad_config_fails_naming_the_field(make_job):
    job_dir = make_job(learning_rate="high")
    code, items, _ = run_child("hitl", job_dir, timeout=60)
    assert code == protocol.EXIT_FAILED
    assert len(items) == 1 and isinstance(items[0], protocol.Failed)
    assert "'learning_rate'" in items[0].reason and "config.json" in items[0].reason
    assert json.loads((job_dir / "result.json").read_text())["status"] == "failed"


def test_unknown_config_key_fails(make_job):
    code, items, _ = run_child("hitl", make_job(lora_rank=8), timeout=60)
    assert code == protocol.EXIT_FAILED and "unknown key 'lora_rank'" in items[-1].reason


def test_bad_command_line_is_reported_as_an_event(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "training", "teleport", "--job-dir", str(tmp_path)],
        capture_output=True, cwd=ROOT, env=child_env(), timeout=60,
    )  # fmt: skip
    (item,) = EventStreamParser().feed(done.stdout)
    assert done.returncode == protocol.EXIT_USAGE
    assert isinstance(item, protocol.Failed) and "invalid choice: 'teleport'" in item.reason


def test_library_output_cannot_reach_stdout():
    """Python prints and C-level writes to fd 1 go to stderr once the program claims stdout for events."""
    code = (
        "import os, sys\n"
        "from training.__main__ import claim_stdout\n"
        "events = claim_stdout()\n"
        "print('python noise')\n"
        "sys.stdout.flush()\n"
        "os.write(1, b'fd noise\\n')\n"
        "os.system('echo child-process noise')\n"
        "events.write('EVENT\\n')\n"
        "events.flush()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, cwd=ROOT, env=child_env(), timeout=60
    )
    assert done.stdout == b"EVENT\n"
    assert (
        b"python noise" in done.stderr
        and b"fd noise" in done.stderr
        and b"child-process noise" in done.stderr
    )


def test_the_apps_imports_are_light():
    """The app imports the protocol and configs; they must not pull in torch & co."""
    code = (
        "import sys, training, training.protocol, training.config, training.cancel; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl', 'datasets') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=child_env()
    )
    assert done.stdout.strip() == "[]"
