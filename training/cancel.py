"""Cancel handling: the app's Cancel button sends SIGTERM (SIGINT, Ctrl+C in a terminal, does the same).

While the model and data load, a signal raises :class:`Cancelled` at once. During training and saving
``deferred`` is set: the signal only sets a flag, and the training callback calls :meth:`CancelToken.check`
at the next step (or gradient-accumulation sub-step, or evaluation batch) boundary, so training stops
cleanly and no adapter is saved. Standard library only.
"""

from __future__ import annotations

import signal
from typing import Any


class Cancelled(BaseException):
    """The job was cancelled (SIGTERM / SIGINT). A BaseException, like KeyboardInterrupt, so that a library's
    ``except Exception`` cannot swallow it."""


class CancelToken:
    """Installs SIGTERM / SIGINT handlers; ``deferred`` decides whether a signal raises now or sets a flag."""

    def __init__(self) -> None:
        self.requested = False
        self.deferred = False
        self._previous: dict[int, Any] = {}

    def install(self) -> CancelToken:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. a test worker thread): no handlers
                pass
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if not self.deferred:
            raise Cancelled()

    def check(self) -> None:
        """Raise Cancelled if a cancel was requested (called at step boundaries)."""
        if self.requested:
            raise Cancelled()
