"""Smoke test of the desktop bundle: build it (or take MEDALIGN_BUNDLE), start it offscreen until the main
window is up and the model loaded, and run a training job with the bundle's own executable.

    pytest -m packaging tests/packaging/test_bundle.py                      builds with packaging/build
    MEDALIGN_BUNDLE=dist/medalign-desktop pytest -m packaging tests/packaging/test_bundle.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from medalign_desktop.jobs.command import build_command, build_environment
from tests.training.conftest import pair, write_job

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.packaging, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def bundle() -> Path:
    named = os.environ.get("MEDALIGN_BUNDLE")
    if named:
        folder = Path(named).resolve()
    else:
        subprocess.run([str(ROOT / "packaging" / "build")], cwd=ROOT, check=True, timeout=3300)
        folder = ROOT / "dist" / "medalign-desktop"
    assert (folder / "medalign-desktop").is_file(), f"no bundle executable in {folder}"
    return folder


def bundle_environment(home: Path) -> dict[str, str]:
    # Only what a desktop session has: nothing points at the checkout or a virtual environment.
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update({"MEDALIGN_HOME": str(home), "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"})
    return env


def test_the_bundle_holds_the_launcher_menu_entry_icons_and_resources(bundle):
    assert os.access(bundle / "medalign-desktop", os.X_OK)
    entry = (bundle / "share" / "applications" / "medalign-desktop.desktop").read_text()
    assert "Exec=medalign-desktop" in entry and "Icon=medalign" in entry
    for size in (16, 32, 48, 64, 128, 256):
        assert (bundle / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "medalign.png").is_file()
    internal = bundle / "_internal"
    assert (internal / "resources" / "style" / "light.qss").is_file()
    assert (internal / "resources" / "icons" / "medalign.svg").is_file()
    platforms = {p.name for p in (internal / "PySide6" / "Qt" / "plugins" / "platforms").iterdir()}
    assert {"libqoffscreen.so", "libqxcb.so"} <= platforms


def test_the_main_window_appears_and_the_model_loads(bundle, tmp_path, tiny_model_dir):
    db = tmp_path / "workspace.sqlite"
    started = time.monotonic()
    done = subprocess.run(
        [
            str(bundle / "medalign-desktop"),
            "--quit-after-load",
            "--model",
            str(tiny_model_dir),
            "--db",
            str(db),
        ],
        env=bundle_environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    # --quit-after-load exits 0 only once the window was shown and the model loaded (app.run_session).
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    assert db.is_file()  # the window opened its workspace
    assert (tmp_path / "home" / "data" / "logs").is_dir()
    print(f"bundle start to model loaded: {time.monotonic() - started:.1f} s")


@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xwininfo")), reason="needs Xvfb and xwininfo")
def test_the_main_window_appears_on_an_x_server(bundle, tmp_path, tiny_model_dir):
    # The real platform plugin (xcb) from the bundle, under a virtual X server; the system needs the
    # xcb libraries listed in the README.
    display = f":{90 + os.getpid() % 100}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
    env = {**bundle_environment(tmp_path / "home"), "QT_QPA_PLATFORM": "xcb", "DISPLAY": display}
    argv = [
        str(bundle / "medalign-desktop"),
        "--model",
        str(tiny_model_dir),
        "--db",
        str(tmp_path / "w.sqlite"),
    ]
    app = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline, windows = time.monotonic() + 180, ""
        while time.monotonic() < deadline and app.poll() is None and '"MedAlign Desktop"' not in windows:
            time.sleep(1)
            tree = ["xwininfo", "-root", "-tree", "-display", display]
            windows = subprocess.run(tree, capture_output=True, text=True).stdout
        assert app.poll() is None, app.stderr.read()[-4000:]
        assert '"MedAlign Desktop"' in windows, windows[-2000:]
    finally:
        for process in (app, server):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_bundled_job(bundle: Path, kind: str, job: Path, home: Path) -> list[dict]:
    """Run one job as the bundled app's job runner would, and return its events (stdout carries only those)."""
    executable = str(bundle / "medalign-desktop")
    # Exactly the argv the bundled app's job runner builds (sys.frozen is set there).
    argv = build_command(kind, job, python=executable, frozen=True)
    assert argv[:2] == [executable, "--run-training"]
    env = build_environment(bundle_environment(home))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def tiny_config(kind: str, model: Path) -> dict:
    return {
        "kind": kind,
        "base_model": str(model),
        "parent_adapter": None,
        "output_name": "adapter",
        "max_steps": 2,
        "max_length": 64,
        "per_device_train_batch_size": 2,
        "per_device_eval_batch_size": 2,
        "gradient_accumulation_steps": 1,
    }


def test_a_training_job_runs_from_inside_the_bundle(bundle, tmp_path, tiny_model_dir):
    job = write_job(tmp_path / "job", tiny_config("hitl", tiny_model_dir), n_examples=4)
    events = run_bundled_job(bundle, "hitl", job, tmp_path / "home")
    kinds = [event["event"] for event in events]
    assert "started" in kinds and "metric" in kinds, kinds
    assert kinds.index("started") < kinds.index("metric") and kinds[-1] == "finished", kinds
    assert (Path(events[-1]["adapter_path"]) / "adapter_config.json").is_file()


def test_a_dpo_job_runs_from_inside_the_bundle(bundle, tmp_path, tiny_model_dir):
    job = tmp_path / "dpo"
    (job / "data").mkdir(parents=True)
    (job / "config.json").write_text(json.dumps(tiny_config("dpo", tiny_model_dir)), encoding="utf-8")
    pairs = "".join(json.dumps(pair(i)) + "\n" for i in range(4))
    (job / "data" / "train.jsonl").write_text(pairs, encoding="utf-8")
    events = run_bundled_job(bundle, "dpo", job, tmp_path / "home")
    assert events[-1]["event"] == "finished", events[-1]
    assert (Path(events[-1]["adapter_path"]) / "adapter_config.json").is_file()


def test_an_evaluation_runs_from_inside_the_bundle(bundle, tmp_path, tiny_model_dir):
    # The metrics (ROUGE-L, BLEU) import their parts by name: the bundle must hold them.
    job = tmp_path / "evaluate"
    (job / "data").mkdir(parents=True)
    config = {
        "kind": "evaluate",
        "base_model": str(tiny_model_dir),
        "versions": [{"name": "base", "adapter_path": None}],
        "reward_adapter": None,
        "max_new_tokens": 8,
        "system_prompt": "You are a careful clinical assistant.",
        "batch_size": 2,
        "device": "cpu",
        "quantization": "auto",
        "seed": 0,
    }
    (job / "config.json").write_text(json.dumps(config), encoding="utf-8")
    question = {
        "prompt_id": 1,
        "question": "Which drug is a loop diuretic?",
        "reference_answer": "Furosemide is a loop diuretic.",
        "answer_key": None,
        "options": None,
    }
    (job / "data" / "questions.jsonl").write_text(json.dumps(question) + "\n", encoding="utf-8")
    (job / "data" / "cached.jsonl").write_text("", encoding="utf-8")
    events = run_bundled_job(bundle, "evaluate", job, tmp_path / "home")
    assert events[-1]["event"] == "finished", events[-1]
