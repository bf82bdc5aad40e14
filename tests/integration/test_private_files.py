"""Everything MedAlign writes is private: files 0600, folders 0700, even under a umask of 022 (issue 19).

Under one MEDALIGN_HOME: the store (database, side files, the temp-file registry), the app log and the
GUI settings file, the CLI (an import, exports in the three formats), a snapshot of every job kind, an
evaluation report, and one real training run of the tiny model (hitl, 2 steps: adapter, checkpoint,
result). Then every file and folder under the home is checked.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from medalign_desktop import cli, paths
from medalign_desktop.jobs.snapshot import SnapshotRequest, write_snapshot
from medalign_desktop.store import Store

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = "Be careful."
KINDS = ("sft", "hitl", "dpo", "reward", "ppo", "score", "evaluate")


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    previous = os.umask(0o022)  # what most desktops run with: new files 0644 unless we say otherwise
    yield home
    os.umask(previous)


def _workspace(store: Store) -> None:
    for i in range(4):
        prompt = store.add_prompt(f"Question {i} about Jane Doe's asthma?", reference_answer=f"Answer {i}.")
        first = store.add_generation(prompt, f"model answer {i}", model_version="base", settings={})
        second = store.add_generation(prompt, f"other answer {i}", model_version="base", settings={})
        if i % 2:
            store.record_verdict(first, "edit", annotator="dr-a", edited_text=f"Corrected answer {i}.")
        else:
            store.record_verdict(first, "accept", annotator="dr-a")
        store.record_comparison(first, second, "first", annotator="dr-a", swapped=False, mode="seeds")
    held = store.add_prompt("A held-out question?", split="held_out")
    store.add_generation(held, "held-out answer", model_version="base", settings={})


def _snapshots(store: Store, jobs: Path, base_model: str) -> dict[str, Path]:
    reward = store.add_model_version("R-1", "reward", base_model=base_model, adapter_path="/r/1")
    extra = {
        "ppo": {"reward_adapter": "/r/1"},
        "score": {"reward_adapter": "/r/1", "reward_version_id": reward},
        "evaluate": {"eval_versions": ("base",)},
        "hitl": {"overrides": {"max_steps": 2, "max_length": 64, "per_device_train_batch_size": 2,
                               "gradient_checkpointing": False}},
    }  # fmt: skip
    folders = {}
    for number, kind in enumerate(KINDS, start=1):
        folders[kind] = jobs / f"job-{number:05d}"
        write_snapshot(store, SnapshotRequest(kind, base_model, SYSTEM, **extra.get(kind, {})), folders[kind])
    return folders


def _not_private(home: Path) -> list[str]:
    wrong = []
    for path in [home, *sorted(home.rglob("*"))]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if not path.is_symlink() and mode != want:
            wrong.append(f"{oct(mode)} {path.relative_to(home.parent)}")
    return wrong


@pytest.mark.slow
def test_every_file_and_folder_written_is_private(home, tmp_path, tiny_model_dir):
    from medalign_desktop.report.document import write_report
    from medalign_desktop.ui.core.errors import setup_logging
    from medalign_desktop.ui.core.settings import AppSettings

    home.mkdir(mode=0o700)
    db = paths.default_database_path()
    questions = tmp_path / "questions.jsonl"  # input: outside the home
    questions.write_text('{"question": "What is a fever?", "answer": "Above 38 C."}\n', encoding="utf-8")
    assert cli.main(["import", str(questions), "--db", str(db)]) == 0
    assert os.umask(0o022) == 0o022  # the CLI gave the umask back

    exports = home / "exports"
    exports.mkdir(mode=0o700)  # the user's choice of folder; the files in it are ours
    with Store.open(db) as store:
        _workspace(store)
        folders = _snapshots(store, paths.data_dir() / "jobs", str(tiny_model_dir))
        write_report(store, exports / "report.html")

    for argv in (["pairs", str(exports / "pairs.jsonl")], ["sft", str(exports / "sft.parquet")],
                 ["pairs", str(exports / "pairs-ds"), "--format", "datasets"]):  # fmt: skip
        assert cli.main(["export", *argv, "--db", str(db)]) == 0

    handler = setup_logging()  # the app log under the data folder
    try:
        logging.getLogger("medalign_desktop.test").warning("a line in the log")
    finally:
        logging.getLogger("medalign_desktop").removeHandler(handler)
        handler.close()
    settings = AppSettings()  # gui.ini under the config folder
    settings.annotator = "Dr A"
    settings.sync()

    hitl = folders["hitl"]
    run = subprocess.run(
        [sys.executable, "-m", "training", "hitl", "--job-dir", str(hitl)],
        capture_output=True, text=True, cwd=ROOT, timeout=240,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert (hitl / "adapter" / "adapter_model.safetensors").is_file() and (hitl / "result.json").is_file()

    for kind, folder in folders.items():
        assert (folder / "config.json").is_file() and (folder / "snapshot.json").is_file(), kind
    live = Store.open(db)  # an open store has its -wal and -shm files: check those too
    live.add_prompt("written while the modes are checked")
    written = {p.relative_to(home).as_posix() for p in home.rglob("*")}
    for expected in ("data/medalign.sqlite", "data/medalign.sqlite-wal", "data/medalign.sqlite-shm",
                     "data/pending-temp-files.jsonl", "data/logs/medalign-desktop.log",
                     "config/gui.ini", "exports/pairs.jsonl", "exports/sft.parquet.manifest.json",
                     "exports/report.html", "data/jobs/job-00002/data/train.jsonl"):  # fmt: skip
        assert expected in written, expected
    assert any("checkpoint" in name for name in written), sorted(written)
    wrong = _not_private(home)
    live.close()
    assert not wrong, "readable by others:\n" + "\n".join(wrong)
