"""`--db` must exist for export (it only reads); imports may create it; info creates nothing (issue 19).

Also: CLI commands write private files (umask 077 while they run) and export cleans up temporaries that
killed processes left beside the destination.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from medalign_desktop import cli, paths
from medalign_desktop.store import Store, tempfiles

MISSING = "No database at {} (check the path; `medalign import` creates one)"


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "pairs", "{dest}", "--db", "{db}"],
        ["export", "sft", "{dest}", "--format", "parquet", "--db", "{db}"],
    ],
    ids=["export-pairs", "export-sft"],
)
def test_reading_commands_refuse_a_missing_db_and_create_nothing(tmp_path, capsys, argv):
    db = tmp_path / "typo" / "medalgn.sqlite"
    dest = tmp_path / "out.jsonl"
    code = cli.main([part.format(db=db, dest=dest) for part in argv])
    err = capsys.readouterr().err
    assert code != 0
    assert MISSING.format(db) in err and "Traceback" not in err
    assert not db.exists() and not db.parent.exists() and not dest.exists()


def test_export_without_db_refuses_a_missing_default_database(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    code = cli.main(["export", "pairs", str(tmp_path / "out.jsonl")])
    assert code != 0
    assert MISSING.format(paths.default_database_path()) in capsys.readouterr().err
    assert not paths.default_database_path().exists()


def test_info_reports_a_missing_database_and_creates_nothing(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setattr("medalign_desktop.diagnostics.collect", lambda db, **_: [("Database", str(db))])
    monkeypatch.setattr("medalign_desktop.diagnostics.as_text", lambda rows: f"{rows}\n")
    typo = tmp_path / "typo" / "w.sqlite"
    assert cli.main(["info"]) == 0 and cli.main(["info", "--db", str(typo)]) == 0
    assert not paths.default_database_path().exists() and not typo.parent.exists()


def test_import_creates_the_database(tmp_path):
    source = tmp_path / "q.jsonl"
    source.write_text('{"question": "What is a fever?", "answer": "Above 38 C."}\n', encoding="utf-8")
    db = tmp_path / "new" / "work.sqlite"
    assert cli.main(["import", str(source), "--db", str(db)]) == 0
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


def test_the_cli_gives_the_callers_umask_back(tmp_path):
    previous = os.umask(0o022)
    try:
        cli.main(["info", "--db", str(tmp_path / "missing.sqlite")])
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(previous)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_export_removes_temporaries_that_dead_processes_left(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    db = tmp_path / "work.sqlite"
    with Store.open(db) as store:
        prompt = store.add_prompt("Q")
        store.record_verdict(store.add_generation(prompt, "A", settings={}), "accept", annotator="a")
    dest = tmp_path / "out" / "sft.jsonl"
    dest.parent.mkdir()
    dead, alive = _dead_pid(), os.getppid()
    stale = dest.with_name(f"sft.jsonl.tmp-{dead}")
    stale.write_text("patient text")
    stale_manifest = dest.with_name(f"sft.jsonl.manifest.json.tmp-{dead}")
    stale_manifest.write_text("{}")
    live = dest.with_name(f"sft.jsonl.tmp-{alive}")  # a live process's export: never touched
    live.write_text("in progress")
    unrelated = dest.with_name(f"notes.txt.tmp-{dead}")  # not ours, not registered: left alone
    unrelated.write_text("somebody else's")
    assert cli.main(["export", "sft", str(dest), "--db", str(db)]) == 0
    assert not stale.exists() and not stale_manifest.exists()
    assert live.exists() and unrelated.exists() and dest.exists()


def test_registered_temporaries_of_dead_processes_go_at_the_next_start(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    dead = _dead_pid()
    folder = tmp_path / "anywhere"
    folder.mkdir()
    stale_file, stale_dir = folder / f"a.jsonl.tmp-{dead}", folder / f"b.tmp-{dead}"
    stale_file.write_text("patient text")
    (stale_dir / "sub").mkdir(parents=True)
    mine = tempfiles.temp_path(folder / "c.jsonl")  # this (live) process's
    mine.write_text("being written")
    for path in (stale_file, stale_dir):  # as the dead process registered them
        line = f'{{"pid": {dead}, "path": "{path}"}}\n'
        with tempfiles.registry_path().open("a") as handle:
            handle.write(line)
    assert stat.S_IMODE(tempfiles.registry_path().stat().st_mode) == 0o600
    with Store.open(tmp_path / "work.sqlite"):
        pass
    assert not stale_file.exists() and not stale_dir.exists() and mine.exists()
    remaining = tempfiles.registry_path().read_text()
    assert str(mine) in remaining and str(stale_file) not in remaining
