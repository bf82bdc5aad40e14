"""Smoke test of the desktop bundle: build it (or take MEDALIGN_BUNDLE), start it offscreen until the main
window is up and the model loaded, and run a training job with the bundle's own executable.

    pytest -m packaging tests/packaging/test_bundle.py                      builds with packaging/build
    MEDALIGN_BUNDLE=dist/medalign-desktop pytest -m packaging tests/packaging/test_bundle.py
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from medalign_desktop.jobs.command import build_command, build_environment
from tests.training.conftest import write_job

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


def test_a_training_job_runs_from_inside_the_bundle(bundle, tmp_path, tiny_model_dir):
    config = {
        "kind": "hitl",
        "base_model": str(tiny_model_dir),
        "parent_adapter": None,
        "output_name": "adapter",
        "max_steps": 2,
        "max_length": 64,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
    }
    job = write_job(tmp_path / "job", config, n_examples=4)
    executable = str(bundle / "medalign-desktop")
    # Exactly the argv the bundled app's job runner builds (sys.frozen is set there).
    argv = build_command("hitl", job, python=executable, frozen=True)
    assert argv[:2] == [executable, "--run-training"]
    env = build_environment(bundle_environment(tmp_path / "home"))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]  # stdout carries only events
    kinds = [event["event"] for event in events]
    assert "started" in kinds and "metric" in kinds, kinds
    assert kinds.index("started") < kinds.index("metric") and kinds[-1] == "finished", kinds
    assert (Path(events[-1]["adapter_path"]) / "adapter_config.json").is_file()
