"""The main window: navigation on the left, pages on the right, menus, and the status bar.

It wires the services to the pages and runs the start-up sequence: open the database, show the first
question, load the model in the background, then answer the question on screen.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from medalign_desktop.config import load_config, save_config
from medalign_desktop.engine import Engine, LoadedModel, check_model_folder
from medalign_desktop.jobs.retrain_policy import RetrainPolicy
from medalign_desktop.store import Store
from medalign_desktop.ui.annotate.page import AnnotatePage
from medalign_desktop.ui.compare.page import ComparePage
from medalign_desktop.ui.core import dialogs
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.errors import ErrorReporter, readable_message
from medalign_desktop.ui.core.page_parts import box_layout
from medalign_desktop.ui.core.saving_queue import hold_close
from medalign_desktop.ui.core.services import EngineService, StoreService
from medalign_desktop.ui.core.settings import AppSettings
from medalign_desktop.ui.core.tasks import TaskRunner
from medalign_desktop.ui.export.page import ExportPage
from medalign_desktop.ui.history.page import HistoryPage
from medalign_desktop.ui.shell.diagnostics import DiagnosticsDialog, open_diagnostics
from medalign_desktop.ui.shell.first_run import FirstRunDialog
from medalign_desktop.ui.shell.held_out_dialog import HoldOutDialog, open_hold_out_dialog
from medalign_desktop.ui.shell.imports import ImportActions
from medalign_desktop.ui.shell.status_bar import StatusPanel, describe_model, privacy_notice
from medalign_desktop.ui.shell.training_controller import TrainingController

NO_MODEL_MESSAGE = (
    "No model is set up yet. Choose one with File > Set up a model... (a model folder, a GGUF file or the "
    "demo model), or run `medalign models install-demo` in a terminal."
)


@dataclass
class StartupOptions:
    db_path: Path
    model_dir: Path | None = None
    model_label: str | None = None
    adapter_dir: Path | None = None
    annotator: str | None = None
    load_options: dict[str, str] = field(default_factory=dict)  # device / dtype / quantization
    retrain_threshold: int | None = None  # None: the saved setting (default 20)
    auto_retrain: bool | None = None  # None: the saved setting (default on)
    first_run: bool = False  # no base model configured: offer the first-run dialog, not just a note


class MainWindow(ImportActions, QMainWindow):
    closed = Signal()
    model_loaded = Signal(object)  # LoadedModel
    import_finished = Signal(object)  # ImportReport

    def __init__(
        self, options: StartupOptions, *, settings: AppSettings | None = None, engine: Engine | None = None
    ) -> None:
        super().__init__()
        self.options = options
        self.startup_error: str | None = None
        self._import_cancel = threading.Event()
        errors = ErrorReporter(self)
        self.ctx = AppContext(
            store=StoreService(options.db_path, self),
            engine=EngineService(engine, load_options=options.load_options, parent=self),
            settings=settings or AppSettings(),
            tasks=TaskRunner(errors.report),
            errors=errors,
        )
        if options.annotator:
            self.ctx.settings.annotator = options.annotator
        if options.retrain_threshold is not None:
            self.ctx.settings.retrain_threshold = options.retrain_threshold
        if options.auto_retrain is not None:
            self.ctx.settings.auto_retrain = options.auto_retrain
        policy = RetrainPolicy(self.ctx.settings.retrain_threshold, self.ctx.settings.auto_retrain)
        self.training = TrainingController(
            self.ctx, policy=policy, launcher=self.ctx.settings.launcher, parent=self
        )
        self.setWindowTitle("MedAlign Desktop")
        self.setMinimumSize(960, 640)
        self._build_pages()
        self.status = StatusPanel(self.statusBar())
        saving = self.ctx.store.saving  # verdicts waiting for a busy database: say so, report a refusal
        saving.failed.connect(self.ctx.errors.report)
        saving.state_changed.connect(self.status.show_saving)
        self._build_menus()
        self._status_timer = QTimer(self, singleShot=True, interval=250)
        self._status_timer.timeout.connect(lambda: self.ctx.tasks.start(self.refresh_status(), "Status"))
        self.ctx.store.changed.connect(self._store_changed)
        self.ctx.engine.load_progress.connect(self.status.set_busy)
        self.training.status_message.connect(self.status.set_idle)
        self.training.version_activated.connect(lambda _name: self._show_model_status())
        self.training.planner.model_released.connect(self._model_released)
        self.training.planner.model_restored.connect(self._model_restored)
        self.annotate.retrain_button.clicked.connect(lambda: self.training.request_training("hitl"))
        self.annotate.verdict_saved.connect(
            lambda _verdict: self.ctx.tasks.start(self.training.on_verdict_saved(), "Auto-retrain")
        )
        if not self.ctx.settings.restore_geometry(self):
            self.resize(1280, 800)

    # ------------------------------------------------------------------ layout
    def _build_pages(self) -> None:
        self.nav = QListWidget()
        self.nav.setObjectName("navList")
        self.nav.setFixedWidth(156)
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # pages keep the keyboard; Ctrl+1..6 switch
        self.pages = QStackedWidget()
        self.annotate = AnnotatePage(self.ctx)
        self.history = HistoryPage(self.ctx)
        self.training.scores_ready.connect(lambda _job_id: self.history.scores_changed())
        self.export = ExportPage(self.ctx)
        self.compare = ComparePage(self.ctx)
        self.compare.evaluation_requested.connect(self.training.request_evaluation)
        self.training.jobs.results_ready.connect(self.compare.on_results_ready)
        self.training.evaluation_status.connect(
            lambda text, problem: self.compare.show_status(text, problem=problem)
        )
        pages = (
            ("Annotate", self.annotate),
            ("History", self.history),
            ("Train", self.training.train_page),
            ("Models", self.training.models_page),
            ("Export", self.export),
            ("Compare", self.compare),
        )
        for title, page in pages:
            self.nav.addItem(title)
            self.pages.addWidget(page)
        self.nav.currentRowChanged.connect(self.show_page)
        central = QWidget()
        layout = box_layout(central, QHBoxLayout, spacing=0)
        layout.addWidget(self.nav)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.nav.setCurrentRow(min(self.ctx.settings.last_page, self.pages.count() - 1))

    def _build_menus(self) -> None:
        def action(menu, text: str, slot, shortcut: str | None = None) -> QAction:
            made = QAction(text, self)
            if shortcut:
                made.setShortcut(QKeySequence(shortcut))
            made.triggered.connect(slot)
            menu.addAction(made)
            return made

        file_menu = self.menuBar().addMenu("&File")
        self.import_action = action(file_menu, "&Import questions...", self.choose_import_file, "Ctrl+I")
        self.import_pairs_action = action(file_menu, "Import &preference pairs...", self.choose_pairs_file)
        action(file_menu, "&Export...", lambda: self.show_page(4))
        action(file_menu, "&Hold out a share of an import...", self.choose_hold_out_share)
        action(file_menu, "Open &model folder...", self.choose_model_folder, "Ctrl+O")
        action(file_menu, "&Set up a model...", self.open_first_run)
        file_menu.addSeparator()
        action(file_menu, "&Quit", self.close, "Ctrl+Q")
        go = self.menuBar().addMenu("&Go")
        action(go, "&Annotate", lambda: self.show_page(0), "Ctrl+1")
        action(go, "&History", lambda: self.show_page(1), "Ctrl+2")
        action(go, "&Train", lambda: self.show_page(2), "Ctrl+3")
        action(go, "&Models", lambda: self.show_page(3), "Ctrl+4")
        action(go, "&Export", lambda: self.show_page(4), "Ctrl+5")
        action(go, "&Compare", lambda: self.show_page(5), "Ctrl+6")
        annotate = self.menuBar().addMenu("&Annotate")
        action(annotate, "&Generation settings...", self.annotate.open_sampling_dialog)
        action(annotate, "Change &annotator name...", self.change_annotator)
        help_menu = self.menuBar().addMenu("&Help")
        action(help_menu, "&Diagnostics...", self.show_diagnostics)
        action(help_menu, "&About MedAlign Desktop", self.show_about)

    def show_page(self, index: int) -> None:
        if self.nav.currentRow() != index:
            self.nav.setCurrentRow(index)  # comes back here through currentRowChanged
            return
        self.pages.setCurrentIndex(index)
        self.ctx.settings.last_page = index
        page = self.pages.currentWidget()
        (page.table if page is self.history else page).setFocus()

    # ------------------------------------------------------------------ start-up
    async def start(self) -> bool:
        """Open the database, show the queue, load the model. True when the model is loaded."""
        self.status.set_busy(f"Opening {self.options.db_path.name}...")
        try:
            await self.ctx.store.open()
        except Exception as exc:
            self.startup_error = readable_message(exc)[0]
            self.status.set_idle("The database could not be opened.")
            self.ctx.errors.report(exc, "Opening the database")
            return False
        notice = privacy_notice(self.ctx.store.tightened)
        self.ctx.store.watch()  # writes by the command line or another app reach the pages (Change.EXTERNAL)
        await self.refresh_status()
        await self.training.start()
        self.annotate.reload_queue()
        current = self.pages.currentWidget()
        if self.isVisible() and current in (self.history, self.export, self.compare):
            current.refresh()  # shown before the store was open
        loaded = await self.load_model(
            self.options.model_dir, self.options.model_label, self.options.adapter_dir
        )
        self.status.add_notice(notice)  # after the loading messages, so it stays readable
        return loaded

    async def load_model(
        self, folder: Path | None, label: str | None = None, adapter: Path | None = None
    ) -> bool:
        if folder is None:
            self.startup_error = NO_MODEL_MESSAGE
            self.status.set_idle("No model set up.")
            self.status.set_model("No model loaded")
            if self.options.first_run:
                self.open_first_run()
            else:
                self.ctx.errors.show("No model", NO_MODEL_MESSAGE, QMessageBox.Icon.Information)
            return False
        self.status.set_busy(f"Loading the model from {Path(folder).name}...")
        self.status.set_model("Loading model...")
        try:
            loaded = await self.ctx.engine.load(folder, label=label, adapter_dir=adapter)
        except Exception as exc:
            self.startup_error = readable_message(exc)[0]
            self.status.set_idle("The model could not be loaded.")
            self.status.set_model("No model loaded")
            self.ctx.errors.report(exc, "Loading the model")
            return False
        self.startup_error = None
        self.ctx.model_version = (
            await self.training.restore_active_version() or await self._model_version_name(loaded)
        )
        self._show_model_status()
        self.status.set_idle(f"Model loaded in {loaded.load_time_s:.1f} s.")
        self.model_loaded.emit(loaded)
        self.annotate.model_ready()
        return True

    def _store_changed(self, _changes: object) -> None:  # any write may change the counts
        if self.ctx.store.is_open:  # not after shutdown: the refresh would outlive the event loop
            self._status_timer.start()

    def _show_model_status(self) -> None:
        loaded = self.ctx.engine.loaded
        if loaded is not None:
            self.status.set_model(
                describe_model(loaded, self.ctx.engine.adapter_name), loaded.folder.describe()
            )

    def _model_released(self, reason: str) -> None:
        """The memory planner unloaded the answering model for a training job."""
        self.status.set_model("Model unloaded for training", reason)
        self.annotate.model_unloaded(reason)

    def _model_restored(self, loaded: LoadedModel) -> None:
        """The memory planner loaded it back (with the active version) after the jobs."""
        self._show_model_status()
        self.model_loaded.emit(loaded)
        self.annotate.model_back()

    async def _model_version_name(self, loaded: LoadedModel) -> str:
        # The same name the Annotate page records on each generation: the adapter that answers, else the base.
        return self.ctx.engine.adapter_name or loaded.label

    async def refresh_status(self) -> None:
        if self.ctx.store.is_open:
            self.status.set_database(self.ctx.store.path, await self.ctx.store.run(Store.stats))

    # ------------------------------------------------------------------ menu actions
    def choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open model folder")
        if folder:
            self.open_model_folder(Path(folder))

    def open_model_folder(self, folder: Path) -> asyncio.Task | None:
        """Check the folder's files first (milliseconds), then load it in the background and remember it.

        Only the headers here, on the GUI thread: the complete check (every tensor, the tokenizer) builds
        the model on torch's meta device and runs in Engine.load, off this thread."""
        try:
            info = check_model_folder(folder, complete=False)
        except Exception as exc:
            self.ctx.errors.report(exc, "Open model folder")
            return None

        async def flow() -> None:
            await self.annotate.wait_idle()
            if await self.load_model(info.path, info.path.name):
                config = load_config()
                config.base_model, config.base_model_label = str(info.path.resolve()), info.path.name
                save_config(config)

        self.ctx.engine.stop()
        return self.ctx.tasks.start(flow(), "Loading the model")

    def open_first_run(self) -> FirstRunDialog:
        """The first-run dialog (File > Set up a model): the choice is saved there, then loaded here."""
        self.first_run = FirstRunDialog(self.ctx, self)
        self.first_run.model_chosen.connect(self.load_chosen_model)
        self.first_run.open()
        return self.first_run

    def load_chosen_model(self, folder: Path, label: str) -> asyncio.Task:
        async def flow() -> None:
            await self.annotate.wait_idle()
            await self.load_model(folder, label)

        self.ctx.engine.stop()
        return self.ctx.tasks.start(flow(), "Loading the model")

    def show_diagnostics(self) -> DiagnosticsDialog:
        self.diagnostics = open_diagnostics(self.ctx, self)
        return self.diagnostics

    def choose_hold_out_share(self) -> asyncio.Task:
        """File > Hold out a share of an import: the dialog, then the move on the store thread."""

        async def flow() -> HoldOutDialog:
            self.hold_out_dialog = await open_hold_out_dialog(self.ctx, self)
            return self.hold_out_dialog

        return self.ctx.tasks.start(flow(), "Holding out questions")

    def change_annotator(self) -> None:
        name = dialogs.ask_annotator_name(self)
        if name:
            self.ctx.settings.annotator = name

    def show_about(self) -> None:
        self.ctx.errors.show(
            "About MedAlign Desktop",
            "MedAlign Desktop: review a local medical language model's answers, and turn clinicians' "
            "verdicts into better models. Everything stays on this workstation.",
            QMessageBox.Icon.Information,
        )

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if hold_close(self, self.ctx.store.saving, event):  # verdicts still waiting for the database
            return
        self._status_timer.stop()
        self.ctx.settings.save_geometry(self)
        self.ctx.settings.sync()
        self.ctx.engine.stop()
        super().closeEvent(event)
        self.closed.emit()

    async def wind_down(self) -> None:
        """Stop the answer being written, cancel an import and any training job, end every task."""
        self.ctx.engine.stop()
        self._import_cancel.set()
        self.export.shutdown()
        await self.training.shutdown()
        await self.ctx.tasks.cancel_and_wait(keep=asyncio.current_task())

    def shutdown(self, *, wait_for_engine: bool = True) -> None:
        """Stop everything and close the database. Safe to call more than once."""
        self._status_timer.stop()  # a refresh armed by a last write must not fire once the loop has gone
        self._import_cancel.set()
        self.export.shutdown()
        self.ctx.tasks.cancel_all()
        self.ctx.engine.shutdown(wait=wait_for_engine)
        self.ctx.store.shutdown()
