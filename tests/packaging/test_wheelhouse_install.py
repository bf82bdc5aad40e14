"""The cpu wheelhouse installs into a fresh virtual environment with the network blocked, and the app runs.

pytest -m packaging tests/packaging/test_wheelhouse_install.py            builds the wheelhouse (~1 GB)
MEDALIGN_WHEELHOUSE=DIR pytest -m packaging tests/packaging/test_wheelhouse_install.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.packaging, pytest.mark.timeout(3600)]


def offline_environment(home: Path) -> dict[str, str]:
    """No pip configuration (this machine's adds a local wheel folder and indexes), no index, and proxies at
    a closed local port, so any attempt to reach a network fails instead of quietly succeeding."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    blocked = "http://127.0.0.1:9"
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
            "HTTP_PROXY": blocked,
            "HTTPS_PROXY": blocked,
            "http_proxy": blocked,
            "https_proxy": blocked,
            "MEDALIGN_HOME": str(home),
        }
    )
    env.pop("VIRTUAL_ENV", None)
    return env


def test_the_cpu_wheelhouse_installs_offline_and_the_app_runs(tmp_path):
    named = os.environ.get("MEDALIGN_WHEELHOUSE")
    house = Path(named) if named else tmp_path / "wheelhouse"
    if not named:
        script = [
            sys.executable,
            str(ROOT / "packaging" / "wheelhouse"),
            "--variant",
            "cpu",
            "--dest",
            str(house),
        ]
        subprocess.run(script, check=True, timeout=2400)
    assert (house / "SHA256SUMS").is_file() and (house / "requirements.txt").is_file()
    assert not list(house.glob("*.tar.gz")), "the wheelhouse must hold wheels only"
    check = subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=house, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr

    venv = tmp_path / "venv"
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    env = offline_environment(tmp_path / "home")
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-index", "--find-links", str(house), "medalign-desktop"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    info = subprocess.run(
        [str(venv / "bin" / "medalign"), "info"], env=env, capture_output=True, text=True, timeout=300
    )
    assert info.returncode == 0, info.stderr[-3000:]
    assert "MedAlign Desktop: 0.1.0" in info.stdout and "torch:            2.13.0+cpu" in info.stdout
    assert f"({venv}" in info.stdout  # the fresh venv's interpreter, not the one running the tests
