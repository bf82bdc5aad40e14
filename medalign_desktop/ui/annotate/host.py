"""What compare mode asks of the Annotate page: the page's side of the contract, as a Protocol.

Compare mode (compare_mode.py) drives two answers and a choice, but the queue, the phase, the flow runner
and the shared widgets belong to the page. Naming exactly what it uses here keeps compare mode from
importing the page (which imports it): a circle hidden behind ``TYPE_CHECKING`` is still a circle.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from medalign_desktop.ui.annotate.session import AnnotateSession, Phase, QueueCursor
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.two_answers import CompareOptions, TwoAnswerView
from medalign_desktop.ui.core.widgets import ReviewExtras


class AnnotateHost(Protocol):
    """The Annotate page as compare mode sees it (AnnotatePage satisfies it)."""

    ctx: AppContext
    rng: random.Random  # the order of the two answers and their seeds; tests inject their own
    session: AnnotateSession  # the queue, the phase and the answers shown
    cursor: QueueCursor  # session.cursor
    phase: Phase  # session.phase
    compare: TwoAnswerView
    compare_options: CompareOptions
    extras: ReviewExtras
    answer_ready: Any  # Signal(): the answers are stored and the choice is live
    verdict_saved: Any  # Signal(str): "comparison", once the store call returned

    def set_phase(self, phase: Phase) -> None: ...
    def show_feedback(self, text: str, *, problem: bool = False) -> None: ...
    def run_flow(self, make_flow: Callable[[], Awaitable[None]], context: str) -> asyncio.Task: ...
    def recover(self) -> None: ...
    def ensure_annotator(self) -> bool: ...
    def saved_later(self, verdict: str) -> None: ...
    async def save_then_next(
        self, save: Awaitable[tuple[bool, Any]], back_to: Phase, editor: Any, saved: str,
        on_stored: Callable[[Any], str],
    ) -> None: ...
    def setFocus(self) -> None: ...  # noqa: N802 - Qt's name
    async def show_current(self, *, generate: bool) -> None: ...
    async def refresh_counter(self) -> None: ...
