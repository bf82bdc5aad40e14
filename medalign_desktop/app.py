"""`medalign-desktop`: the GUI. A QApplication driven by a qasync event loop, and the main window.

    medalign-desktop [--db PATH] [--model DIR] [--adapter DIR] [--annotator NAME]
                     [--device auto|cpu|cuda] [--dtype auto|float32|bfloat16|float16]
                     [--retrain-threshold N] [--no-auto-retrain] [--theme system|light|dark]
                     [--quit-after-load]

The window appears at once; the database opens and the model loads in the background. With
``--quit-after-load`` (smoke tests, the README's demo check) the app exits 0 as soon as the model is loaded
and the window shown, or 1 with the reason on stderr. Ctrl+C in the terminal closes the window as its
close button does (verdicts still waiting for a busy database are saved first) and exits 130.

In the desktop bundle the same executable runs the training programs (there is no ``python`` there):
``medalign-desktop --run-training <kind> --job-dir DIR`` is ``python -m training <kind> --job-dir DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from medalign_desktop import __version__, paths
from medalign_desktop.config import ConfigError, load_config
from medalign_desktop.jobs.command import FROZEN_TRAINING_FLAG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medalign-desktop", description="MedAlign Desktop")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--db", type=Path, help="the workspace database (default: in the data folder)")
    parser.add_argument("--model", type=Path, help="a model folder (default: the configured base model)")
    parser.add_argument("--adapter", type=Path, help="a LoRA adapter folder to load on top of the model")
    parser.add_argument("--annotator", help="your name, saved with every verdict")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    parser.add_argument(
        "--retrain-threshold",
        type=int,
        metavar="N",
        help="retrain automatically after N new accepted or edited answers (saved; default 20)",
    )
    parser.add_argument("--no-auto-retrain", action="store_true", help="never retrain automatically (saved)")
    parser.add_argument(
        "--theme",
        choices=("system", "light", "dark"),
        help="light or dark look, or follow the system (saved)",
    )
    parser.add_argument(
        "--quit-after-load", action="store_true", help="exit once the model is loaded (for checks)"
    )
    return parser


def startup_options(args: argparse.Namespace):
    """The window's options from the flags and the shared settings file; returns (options, warning)."""
    from medalign_desktop.ui.shell.main_window import StartupOptions

    model, label, warning = args.model, None, None
    if model is None:
        try:
            config = load_config()
        except ConfigError as exc:
            config, warning = None, str(exc)
        if config and config.base_model:
            model, label = Path(config.base_model), config.base_model_label
    return StartupOptions(
        db_path=(args.db or paths.default_database_path()).expanduser(),
        model_dir=model.expanduser() if model else None,
        model_label=label,
        adapter_dir=args.adapter.expanduser() if args.adapter else None,
        annotator=args.annotator,
        load_options={"device": args.device, "dtype": args.dtype},
        retrain_threshold=args.retrain_threshold,
        auto_retrain=False if args.no_auto_retrain else None,
        first_run=model is None and not args.quit_after_load,
    ), warning


INTERRUPTED = 130  # the exit code after Ctrl+C (128 + SIGINT), as shells expect


def install_interrupt_handler(on_interrupt: Callable[[], None]) -> Callable[[], None]:
    """Make Ctrl+C (SIGINT) call ``on_interrupt`` on the GUI thread; returns a function that undoes it.

    Python runs signal handlers only between bytecodes, and the Qt event loop waits in C++: the signal's
    wake-up byte goes to a socket watched by a QSocketNotifier, whose (Python) slot lets the handler run at
    once. The handler only queues ``on_interrupt`` (no widget work inside a signal handler).
    """
    from PySide6.QtCore import QSocketNotifier, QTimer

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)

    def drain() -> None:
        with contextlib.suppress(OSError):
            reader.recv(512)

    notifier.activated.connect(drain)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    previous = signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, on_interrupt))

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)
        signal.set_wakeup_fd(previous_fd)
        notifier.setEnabled(False)
        reader.close()
        writer.close()

    return restore


async def run_session(window, *, quit_after_load: bool) -> int:
    """Show the window, start it, and wait until it is closed (or until the model loaded, for checks).
    Closing it while the model still loads (Ctrl+C, the close button) ends the session at once."""
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    window.show()
    starting = asyncio.ensure_future(window.start())
    closing = asyncio.ensure_future(closed.wait())
    await asyncio.wait({starting, closing}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # closed during start-up: a model load cannot be interrupted; leave it
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await window.wind_down()
        return getattr(window, "exit_code", 0)
    closing.cancel()
    loaded = starting.result()
    if quit_after_load:
        if not loaded:
            print(f"medalign-desktop: {window.startup_error}", file=sys.stderr, flush=True)
        window.close()
        code = 0 if loaded else 1
    else:
        await closed.wait()
        code = getattr(window, "exit_code", 0)
    await window.wind_down()
    return code


def report_loop_error(window, context: dict) -> None:
    """asyncio errors outside our tasks (callbacks): logged with traceback, shown in one sentence."""
    exc = context.get("exception") or RuntimeError(context.get("message", "unknown event-loop error"))
    window.ctx.errors.report(exc, "Background error")


def run_training(argv: list[str]) -> int:
    """The bundle's training entry (jobs/command.py builds its argv); no Qt is imported."""
    from training.__main__ import main as training_main

    return training_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.umask(0o077)  # private by default: logs, settings, job folders, exports hold clinical text
    if argv[:1] == [FROZEN_TRAINING_FLAG]:
        return run_training(argv[1:])
    args = build_parser().parse_args(argv)
    if args.retrain_threshold is not None and args.retrain_threshold < 1:
        build_parser().error("--retrain-threshold must be at least 1")
    # Qt and the UI are imported here so `--help` and `--version` answer instantly.
    import qasync
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from medalign_desktop.ui.core.errors import install_excepthook, setup_logging
    from medalign_desktop.ui.core.gc_guard import GuiThreadGarbageCollector
    from medalign_desktop.ui.core.settings import AppSettings
    from medalign_desktop.ui.core.style import apply_style
    from medalign_desktop.ui.shell.main_window import MainWindow

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "medalign-desktop"])
    app.setApplicationName("MedAlign Desktop")
    app.setOrganizationName("MedAlign")
    app.setQuitOnLastWindowClosed(False)  # the session coroutine decides when to stop
    settings = AppSettings()
    if args.theme:
        settings.theme = args.theme
    apply_style(app, settings.theme)
    collector = GuiThreadGarbageCollector(app)  # worker threads must never finalise Qt objects
    setup_logging()
    options, warning = startup_options(args)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = MainWindow(options, settings=settings)
    install_excepthook(window.ctx.errors)
    loop.set_exception_handler(lambda _loop, context: report_loop_error(window, context))
    if warning:
        window.ctx.errors.show("Settings", warning)

    def interrupted() -> None:  # Ctrl+C: close as the close button does, then exit 130
        window.exit_code = INTERRUPTED
        window.close()

    restore_interrupt = install_interrupt_handler(interrupted)
    try:
        code = loop.run_until_complete(run_session(window, quit_after_load=args.quit_after_load))
    finally:
        restore_interrupt()
        # A model load still running cannot be interrupted; do not make the user wait for it.
        window.shutdown(wait_for_engine=False)
        collector.stop()
        loop.close()
    if code == INTERRUPTED and window.ctx.engine.is_loading:
        # Ctrl+C during a model load: the database is closed and the settings written, but the interpreter
        # would wait at exit for the load thread (minutes for a large model). Leave now.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
