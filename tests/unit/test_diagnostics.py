"""The support report: every row present, values plain strings, missing libraries said, not raised."""

from __future__ import annotations

import builtins
import sys
from importlib import metadata

from medalign_desktop import cli, diagnostics
from medalign_desktop.config import AppConfig, save_config
from medalign_desktop.diagnostics import NOT_INSTALLED, as_text, collect, human_bytes, package_version

EXPECTED_NAMES = (
    "MedAlign Desktop", "Python", "Platform", "torch", "CUDA build", "transformers", "peft", "TRL",
    "datasets", "bitsandbytes", "PySide6", "Qt", "Database", "Base model", "MEDALIGN_HOME", "Data folder",
    "Cache folder", "Settings folder",
)  # fmt: skip


def test_every_row_is_there_and_every_value_is_a_string(tmp_path):
    rows = collect(tmp_path / "absent.sqlite")
    names = [name for name, _ in rows]
    for expected in EXPECTED_NAMES:
        assert expected in names, expected
    assert all(isinstance(value, str) and value for _, value in rows)
    values = dict(rows)
    assert values["Database"] == f"{tmp_path / 'absent.sqlite'} (not created yet)"
    assert values["transformers"] == metadata.version("transformers")
    assert values["CUDA device"].startswith("none") or "CUDA device 0" in values


def test_database_size_counts_the_write_ahead_log(tmp_path):
    db = tmp_path / "work.sqlite"
    db.write_bytes(b"x" * 4096)
    (tmp_path / "work.sqlite-wal").write_bytes(b"y" * 2048)
    values = dict(collect(db, include_torch=False))
    assert values["Database"] == str(db) and values["Database size"] == "6.0 KiB"


def test_the_configured_base_model_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDALIGN_HOME", str(tmp_path))
    assert dict(collect(include_torch=False))["Base model"] == "none configured"
    save_config(AppConfig(base_model="/models/llama-3b", base_model_label="Llama 3B"))
    values = dict(collect(include_torch=False))
    assert values["Base model"] == "/models/llama-3b (Llama 3B)"
    assert values["MEDALIGN_HOME"] == str(tmp_path)
    assert values["Data folder"] == str(tmp_path / "data")


def test_a_missing_package_is_reported_not_raised(monkeypatch):
    def version(name: str) -> str:
        if name == "bitsandbytes":
            raise metadata.PackageNotFoundError(name)
        return "1.0"

    assert package_version("bitsandbytes", version) == NOT_INSTALLED
    monkeypatch.setattr(diagnostics.metadata, "version", version)
    assert dict(collect(include_torch=False))["bitsandbytes"] == NOT_INSTALLED


def test_torch_that_cannot_be_imported_is_one_row(monkeypatch):
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "torch":
            raise OSError("libcudart.so.12: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(builtins, "__import__", failing_import)
    assert diagnostics.torch_rows() == [
        ("torch", "cannot be imported: libcudart.so.12: cannot open shared object file")
    ]


def test_plain_text_has_one_aligned_line_per_row():
    text = as_text([("Python", "3.11.7"), ("bitsandbytes", NOT_INSTALLED)])
    assert text == "Python:       3.11.7\nbitsandbytes: not installed\n"


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1024, 5 * 2**30, 3 * 2**40)] == [
        "0 bytes", "1,023 bytes", "1.0 KiB", "5.0 GiB", "3.0 TiB",
    ]  # fmt: skip


def test_medalign_info_prints_the_same_report(capsys, tmp_path):
    assert cli.main(["info", "--db", str(tmp_path / "w.sqlite")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MedAlign Desktop:") and f"{tmp_path / 'w.sqlite'} (not created yet)" in out
    assert "TRL:" in out and "CUDA build:" in out
