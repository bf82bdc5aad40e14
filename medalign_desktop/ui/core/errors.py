"""Errors shown to people, tracebacks written to a log file.

A clinician should never see a traceback: expected problems (a bad model folder, a refused field, an
unreadable file) already carry a readable message, which is shown as it is; anything unexpected is
logged with its traceback under the data folder and summarised in one sentence that says where the
details are.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from medalign_desktop import paths
from medalign_desktop.config import ConfigError
from medalign_desktop.engine import EngineError
from medalign_desktop.store import StoreError

log = logging.getLogger("medalign_desktop.ui")

LOG_FILE_NAME = "medalign-desktop.log"
# Errors whose message is written for people; everything else is a bug and gets the log-file treatment.
EXPECTED_ERRORS = (EngineError, StoreError, ConfigError, OSError, ValueError)


_configured_log: Path | None = None


def log_path() -> Path:
    """The log file in use (set by ``setup_logging``), else where it would be under the data folder."""
    return _configured_log or default_log_path()


def default_log_path() -> Path:
    return paths.data_dir() / "logs" / LOG_FILE_NAME


def setup_logging(path: Path | None = None) -> logging.Handler:
    """Send this app's log records (info and up) to a file; returns the handler (tests remove it)."""
    global _configured_log
    path = path or default_log_path()  # not log_path(): an earlier setup (another home) must not win
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # private from the first byte
    os.chmod(path, 0o600)  # also a log written 0644 by an earlier version
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("medalign_desktop")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    _configured_log = path
    return handler


def readable_message(exc: BaseException) -> tuple[str, bool]:
    """(message for a person, whether it was expected). Unexpected errors are logged with traceback."""
    if isinstance(exc, EXPECTED_ERRORS):
        return str(exc) or type(exc).__name__, True
    log.error("Unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
    return (
        f"Something went wrong inside MedAlign ({type(exc).__name__}: {exc}). Your verdicts saved so far "
        f"are safe. The details were written to {log_path()}.",
        False,
    )


class ErrorReporter:
    """Shows errors as non-blocking message boxes on one parent window and remembers them for tests."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent
        self.shown: list[str] = []  # every message shown, newest last
        self.unexpected: list[BaseException] = []

    def report(self, exc: BaseException, context: str = "") -> None:
        message, expected = readable_message(exc)
        if not expected:
            self.unexpected.append(exc)
        else:
            log.warning("%s%s", f"{context}: " if context else "", message)
        self.show(context or "Error", message)

    def show(self, title: str, message: str, icon=QMessageBox.Icon.Warning) -> QMessageBox:
        self.shown.append(message)
        box = QMessageBox(icon, title, message, QMessageBox.StandardButton.Ok, self.parent)
        box.setObjectName("errorMessage")
        box.setTextFormat(Qt.TextFormat.PlainText)  # messages quote file names and content
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()  # window-modal but non-blocking: never a nested event loop inside a coroutine
        return box


def install_excepthook(reporter: ErrorReporter) -> None:
    """Log uncaught exceptions (Qt slots included) with their traceback and show a short message."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        try:
            reporter.report(exc)
        except Exception:  # never let the hook itself raise: that would print a traceback after all
            log.exception("Could not show the error dialog")

    sys.excepthook = hook
