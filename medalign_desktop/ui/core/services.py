"""The widgets' only way to the model and the database; all the work runs off the GUI thread.

``EngineService`` owns the :class:`Engine` on one worker thread: loading and generating never block the
Qt event loop, and streamed text pieces come back to the GUI thread through a Qt signal (emitted on the
worker thread, delivered by a queued connection). ``StoreService`` owns the :class:`Store` on its own
single-thread executor, so SQLite is only ever touched by one thread and calls are naturally serialised.

Both are awaited from coroutines running on the qasync loop::

    loaded = await engine_service.load(folder)
    result = await engine_service.generate(question, settings)
    prompt = await store_service.run(Store.get_prompt, prompt_id)   # ui.core.operations as ops
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from medalign_desktop.engine import Engine, GenerationResult, LoadedModel, ReleasedModel, SamplingSettings
from medalign_desktop.engine.devices import DeviceMemory, list_devices
from medalign_desktop.engine.engine import free_unreferenced_memory
from medalign_desktop.engine.generation import ContextTooLong, check_context
from medalign_desktop.store import (
    ImportReport,
    PairFilter,
    Store,
    StoreError,
    import_questions,
    pairs,
)
from medalign_desktop.store.exports import sft_records
from medalign_desktop.store.exports.export import ExportReport, export_pairs, export_sft
from medalign_desktop.store.imports.preferences import import_preferences
from medalign_desktop.ui.core.operations import Change, Operation, as_op, query, write
from medalign_desktop.ui.core.saving_queue import SavingQueue

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

EXPORTERS = {"pairs": query(export_pairs), "sft": query(export_sft)}  # a file is written; the database is not
IMPORT_QUESTIONS = write(import_questions, Change.QUESTIONS)
# an imported pair is a question, two answers and a comparison
IMPORT_PREFERENCES = write(import_preferences, Change.QUESTIONS | Change.ANSWERS | Change.COMPARISONS)
WATCH_INTERVAL_MS = 2000  # how often writes by other processes are looked for (the issue asks "seconds")


def preview_export(store: Store, kind: str, filters: PairFilter, limit: int) -> tuple[int, list[Any]]:
    """How many records an export of ``kind`` with ``filters`` would write, and the first ``limit`` of them
    (PreferencePair or SftRecord). Runs on the store thread; streams, so 100,000 pairs are not all read."""
    with store.exclusive() as db:
        if kind == "pairs":
            return pairs.count_pairs(db, filters), list(islice(pairs.iter_pairs(db, filters), limit))
        return sft_records.count_sft(db, filters), list(islice(sft_records.iter_sft(db, filters), limit))


PREVIEW_EXPORT = query(preview_export)


class EngineService(QObject):
    """Loads the model and streams answers on one worker thread."""

    # (generation number, text piece); compare the number with ``current_generation`` to drop late pieces
    text_arrived = Signal(int, str)
    load_progress = Signal(str)
    model_loaded = Signal(object)  # LoadedModel
    model_released = Signal(object)  # ReleasedModel: unloaded to make room, restore() brings it back
    # (generation number, warning): the answer's budget was cut to fit the model's context
    context_capped = Signal(int, str)

    def __init__(
        self, engine: Engine | None = None, *, load_options: dict[str, str] | None = None, parent=None
    ) -> None:
        super().__init__(parent)
        self._engine = engine or Engine()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medalign-engine")
        self._stop = threading.Event()
        self._busy = 0
        self._loading = False
        self.load_options = dict(load_options or {})  # device / dtype / quantization for Engine.load
        self.current_generation = 0
        self.adapter_name: str | None = None
        self.context_limit: int | None = None  # a limit below the model's own context (None: the model's)

    @property
    def loaded(self) -> LoadedModel | None:
        return self._engine.loaded

    @property
    def is_busy(self) -> bool:
        return self._busy > 0

    @property
    def is_loading(self) -> bool:
        """A model load is running on the engine thread (it cannot be interrupted)."""
        return self._loading

    async def _run(self, fn: Callable[[], Any]) -> Any:
        self._busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        finally:
            self._busy -= 1

    async def load(
        self, model_dir: str | Path, *, label: str | None = None, adapter_dir: str | Path | None = None
    ) -> LoadedModel:
        """Load a base model (and optionally one adapter); raises EngineError with a readable message."""

        def work() -> LoadedModel:
            loaded = self._engine.load(
                model_dir, label=label, progress=self.load_progress.emit, **self.load_options
            )
            self.adapter_name = self._engine.load_adapter(adapter_dir) if adapter_dir else None
            return loaded

        return await self._load_with(work)

    async def _load_with(self, work: Callable[[], LoadedModel]) -> LoadedModel:
        """Run a loading ``work`` on the engine thread, flagged as loading, and announce the loaded model."""

        # flagged on the engine thread: a cancelled await leaves the load running
        def tracked() -> LoadedModel:
            self._loading = True
            try:
                return work()
            finally:
                self._loading = False

        loaded = await self._run(tracked)
        self.model_loaded.emit(loaded)
        return loaded

    async def release(self) -> ReleasedModel | None:
        """Unload the model to make room (a running answer finishes first: the work is queued behind it),
        and really free its memory; None when no model was loaded."""

        def work() -> ReleasedModel | None:
            released = self._engine.release()
            self.adapter_name = None
            return released

        released = await self._run(work)
        # Reference counting has freed the tensors on the engine thread; cycles are collected here, on the
        # GUI thread, where finalising Qt objects is safe (Engine.unload explains why).
        free_unreferenced_memory()
        if released is not None:
            self.model_released.emit(released)
        return released

    async def restore(self, released: ReleasedModel) -> LoadedModel:
        """Load a released model again with the same settings and its active adapter."""

        def work() -> LoadedModel:
            loaded = self._engine.restore(released, progress=self.load_progress.emit)
            self.adapter_name = self._engine.active_adapter
            return loaded

        return await self._load_with(work)

    async def device_memory(self) -> list[DeviceMemory]:
        """The GPUs and the CPU with their free memory, read off the GUI thread (and not queued behind an
        answer on the engine thread)."""
        return await asyncio.get_running_loop().run_in_executor(None, list_devices)

    def _next_generation(self, question: str, settings: SamplingSettings) -> Callable[[], GenerationResult]:
        """Number the next answer and return the blocking call that writes it."""
        self.current_generation += 1
        number = self.current_generation
        # A fresh event per answer, so a late stop() aimed at the previous answer cannot cut this one.
        stop = self._stop = threading.Event()

        def on_text(piece: str) -> None:
            self.text_arrived.emit(number, piece)

        def work() -> GenerationResult:
            fitted = self._fit_context(number, question, settings)  # checked before anything is generated
            return self._engine.generate(question, fitted, on_text=on_text, stop=stop)

        return work

    def _fit_context(self, number: int, question: str, settings: SamplingSettings) -> SamplingSettings:
        """On the engine thread: raise ContextTooLong (naming both lengths) for a question longer than the
        model reads; cut the answer budget to the room left (and say so) when the budget does not fit."""
        tokenizer = getattr(self._engine, "tokenizer", None)
        if tokenizer is None:  # no model: generate says so itself
            return settings
        config = getattr(getattr(self._engine, "model", None), "config", None)
        check = check_context(tokenizer, config, question, settings, configured=self.context_limit)
        if check.refused:
            raise ContextTooLong(check)
        if check.capped:
            self.context_capped.emit(number, check.message())
        return check.settings_for(settings)

    async def generate(self, question: str, settings: SamplingSettings) -> GenerationResult:
        """Answer ``question``; pieces arrive on ``text_arrived`` tagged with ``current_generation``."""
        return await self._run(self._next_generation(question, settings))

    async def generate_with_adapter(
        self, question: str, settings: SamplingSettings, adapter_dir: str | Path | None, name: str | None
    ) -> GenerationResult:
        """Answer once with the named adapter (None: the base model alone), then put the active adapter back.

        Switching, answering and restoring run as one piece of work on the engine thread, so nothing else
        is answered in between, and the active adapter is restored even when the answer fails or is stopped.
        """
        generate = self._next_generation(question, settings)

        def work() -> GenerationResult:
            previous = self._engine.active_adapter
            try:
                self._switch_adapter(adapter_dir, name)
                return generate()
            finally:
                self._engine.set_adapter(previous)

        return await self._run(work)

    async def activate_adapter(self, adapter_dir: str | Path | None, name: str | None) -> None:
        """Hot-swap: answer with the named adapter (loaded onto the base on first use), or with the base
        model alone when ``name`` is None. The base is never reloaded; a running answer finishes first."""

        def work() -> None:
            self._switch_adapter(adapter_dir, name)
            self.adapter_name = name

        await self._run(work)

    def _switch_adapter(self, adapter_dir: str | Path | None, name: str | None) -> None:
        """On the engine thread: make ``name`` answer, loading it from ``adapter_dir`` on first use."""
        if name is None:
            self._engine.disable_adapter()
        elif name in self._engine.adapters:
            self._engine.set_adapter(name)
        else:
            self._engine.load_adapter(adapter_dir, name)

    def stop(self) -> None:
        """Ask the running generation to end after its current token (thread-safe, returns at once)."""
        self._stop.set()

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop generating and end the worker thread.

        A generation ends within a token, so it is always waited for; a model load cannot be interrupted,
        so with ``wait=False`` the thread is left to finish it on its own.
        """
        self._stop.set()
        self._executor.shutdown(wait=wait or not self._loading, cancel_futures=True)


class StoreService(QObject):
    """Owns the Store on a dedicated thread; ``await run(op, ...)`` runs one operation there.

    Operations are the typed objects of ``ui.core.operations``; a write's :class:`Change` is emitted on
    ``changed`` once it succeeded. ``watch()`` also notices writes by other processes (the command line, a
    second app) through SQLite's ``data_version`` and emits ``Change.EVERYTHING | Change.EXTERNAL``.
    """

    changed = Signal(object)  # Change: what a write made here, a finished job or another process changed
    # (done, total) while importing; emitted on the store thread, delivered queued
    import_progress = Signal(int, int)
    # (done, total) while exporting; the same way
    export_progress = Signal(int, int)

    def __init__(self, path: str | Path, parent=None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medalign-store")
        self._store: Store | None = None
        self.saving = SavingQueue(self, self)  # verdict saves wait here while the database is busy
        self._watch = QTimer(self)
        self._watch.timeout.connect(self._check_outside_writes)
        self._data_version: int | None = None
        self._checking = False

    @property
    def is_open(self) -> bool:
        return self._store is not None

    @property
    def tightened(self) -> tuple[Path, ...]:
        """The files and folder that opening the database made private (shown once in the status bar)."""
        return self._store.tightened if self._store is not None else ()

    async def open(self) -> None:
        self._store = await asyncio.get_running_loop().run_in_executor(self._executor, Store.open, self.path)
        self._data_version = await self.call(Store.data_version)  # what "written elsewhere" is compared to

    async def run(self, operation: Operation[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the operation (a Store method, or an operation of ui.core.operations) on the store thread;
        after a write, emit the Change it made."""
        op = as_op(operation)
        result = await self.call(op.fn, *args, **kwargs)
        if op.changes:
            self.changed.emit(op.changes)
        return result

    async def call(self, fn: Callable[Concatenate[Store, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(store, *args, **kwargs)`` on the store thread and report nothing: for the job manager,
        whose writes the training controller announces when a job ends (pages use :meth:`run`)."""
        store = self._store
        if store is None:
            raise StoreError(f"The database {self.path} is not open.")
        work = functools.partial(fn, store, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def announce(self, changes: Change) -> None:
        """Tell the pages about a change made outside :meth:`run` (a job's outcome, stored by the manager)."""
        if changes and self.is_open:
            self.changed.emit(changes)

    # ------------------------------------------------------------------ writes by other processes
    def watch(self, interval_ms: int = WATCH_INTERVAL_MS) -> None:
        """Check every ``interval_ms`` whether another process committed to the database."""
        self._watch.start(interval_ms)

    def _check_outside_writes(self) -> None:
        if self._store is None or self._checking:  # one check at a time: a long import may hold the thread
            return
        self._checking = True
        asyncio.ensure_future(self._compare_data_version())

    async def _compare_data_version(self) -> None:
        try:
            version = await self.call(Store.data_version)
        except Exception as exc:  # a closed or busy database: try again at the next tick
            log.debug("Reading data_version failed: %s", exc)
            return
        finally:
            self._checking = False
        previous, self._data_version = self._data_version, version
        if previous is not None and version != previous:
            log.info("Another process wrote to %s; refreshing the pages", self.path)
            self.announce(Change.EVERYTHING | Change.EXTERNAL)

    async def import_questions(
        self, path: str | Path, cancel: threading.Event, **options: Any
    ) -> ImportReport:
        """Import a question file; progress goes to ``import_progress``, ``cancel.set()`` stops it."""
        return await self.run(
            IMPORT_QUESTIONS, Path(path), progress=self.import_progress.emit, cancel=cancel.is_set, **options
        )

    async def import_preferences(self, path: str | Path, cancel: threading.Event) -> ImportReport:
        """Import preference pairs (UltraMedical-Preferences); progress and cancel as for questions."""
        return await self.run(
            IMPORT_PREFERENCES, Path(path), progress=self.import_progress.emit, cancel=cancel.is_set
        )

    async def export(
        self, kind: str, dest: str | Path, *, fmt: str, filters: PairFilter, deidentify: bool,
        cancel: threading.Event,
    ) -> ExportReport:  # fmt: skip
        """Export ``kind`` ("pairs" or "sft") to ``dest``; progress goes to ``export_progress``.
        ``cancel.set()`` stops it with ExportCancelled and nothing written."""
        return await self.run(
            EXPORTERS[kind], Path(dest), fmt=fmt, filters=filters, deidentify=deidentify,
            progress=self.export_progress.emit, cancel=cancel.is_set,
        )  # fmt: skip

    async def preview_export(self, kind: str, filters: PairFilter, limit: int) -> tuple[int, list[Any]]:
        return await self.run(PREVIEW_EXPORT, kind, filters, limit)

    def shutdown(self) -> None:
        """Close the database on its own thread and end that thread (waits for a running call)."""
        self._watch.stop()
        if self._store is not None:
            store, self._store = self._store, None
            try:
                self._executor.submit(store.close).result()
            except Exception:  # closing must not stop the app from quitting; the WAL is still consistent
                log.exception("Closing the database failed")
        self._executor.shutdown(wait=True)
