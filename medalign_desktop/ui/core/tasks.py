"""Running coroutines from Qt slots: keep a reference to every task and route its errors to a dialog.

asyncio keeps only weak references to tasks, so a task started from a button click and not stored
anywhere can be garbage-collected mid-flight; and an exception in a task nobody awaits is only printed
when the task is destroyed. ``TaskRunner`` fixes both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

ErrorHandler = Callable[[BaseException, str], None]


class TaskRunner:
    def __init__(self, on_error: ErrorHandler) -> None:
        self._on_error = on_error
        self._tasks: set[asyncio.Task] = set()

    def start(self, coro: Coroutine[Any, Any, Any], context: str = "") -> asyncio.Task:
        """Schedule ``coro`` on the running (qasync) loop; errors go to the error handler with ``context``."""
        try:
            task = asyncio.ensure_future(coro)
        except RuntimeError:  # no running loop (the app is shutting down): drop the work quietly
            coro.close()
            raise
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, context))
        return task

    def _finished(self, task: asyncio.Task, context: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._on_error(exc, context)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def cancel_and_wait(self, *, keep: asyncio.Task | None = None) -> None:
        """Cancel every task (but ``keep``, usually the caller's own) and wait until they have ended."""
        tasks = [task for task in self._tasks if task is not keep]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
