"""The .desktop entry and install-desktop-entry.sh, on a folder laid out as packaging/build lays the bundle."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "packaging" / "medalign-desktop.desktop"
SIZES = (16, 32, 48, 64, 128, 256)


def read_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in desktop entries
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def test_the_entry_names_the_launcher_and_the_icon_that_exists():
    entry = read_entry(ENTRY)
    assert (
        entry["Type"] == "Application"
        and entry["Exec"] == "medalign-desktop"
        and entry["Terminal"] == "false"
    )
    assert entry["Icon"] == "medalign"
    for size in SIZES:
        assert (ROOT / "resources" / "icons" / f"medalign-{size}.png").is_file()


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="needs desktop-file-utils")
def test_the_entry_is_valid():
    done = subprocess.run(["desktop-file-validate", str(ENTRY)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


def fake_bundle(folder: Path) -> Path:
    """The files packaging/build adds around the PyInstaller output (the executable is a stand-in)."""
    folder.mkdir(parents=True)
    (folder / "medalign-desktop").write_text("#!/bin/sh\n")
    apps = folder / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copy(ENTRY, apps / ENTRY.name)
    for size in SIZES:
        target = folder / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        target.mkdir(parents=True)
        shutil.copy(ROOT / "resources" / "icons" / f"medalign-{size}.png", target / "medalign.png")
    shutil.copy(ROOT / "packaging" / "install-desktop-entry.sh", folder / "install-desktop-entry.sh")
    return folder


def test_install_points_the_menu_entry_at_the_bundle(tmp_path):
    bundle = fake_bundle(tmp_path / "opt" / "MedAlign & Co")  # a space and an & must survive
    data = tmp_path / "xdg"
    done = subprocess.run(
        ["bash", str(bundle / "install-desktop-entry.sh")],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(data)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    entry = read_entry(data / "applications" / "medalign-desktop.desktop")
    assert entry["Exec"] == f'"{bundle}/medalign-desktop"'
    for size in SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "medalign.png").is_file()
