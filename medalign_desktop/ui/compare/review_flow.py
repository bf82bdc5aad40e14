"""Blind side-by-side review of two model versions on the held-out questions.

    start(A, B) -> next held-out question with evaluation answers from both (Store.next_review_item)
    -> draw the order (``swapped``: Answer 1 is B's) -> show both unlabelled -> 1 / 2 / T / B, with flags
    per answer -> Store.record_review -> the matrix refreshes -> next question ... -> "All reviewed".
    S skips a question for this review; Esc ends the review.

The store picks which question comes next from a seed drawn here, and the order shown is drawn here too,
both from one injectable ``random.Random``, so a test can replay a review. Votes are saved with the
answers in the order shown (Answer 1 first), as compare mode saves them, so they become preference pairs
by the same rules.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut

from medalign_desktop.store import Store, StoreValidationError
from medalign_desktop.ui.compare.review_widgets import BlindReviewView
from medalign_desktop.ui.core import dialogs
from medalign_desktop.ui.core.context import AppContext
from medalign_desktop.ui.core.two_answers import CHOICE_LABELS
from medalign_desktop.ui.core.widgets import typing_in_text_field

SEED_LIMIT = 2**31 - 1
# The store draws one question from those left, skipped ones included: draw again until one was not
# skipped (the store says how many are left, so "only skipped ones left" is known without drawing).
MAX_DRAWS = 1000
CHOICE_KEYS = (("1", "first"), ("2", "second"), ("T", "tie"), ("B", "both_bad"))


@dataclass(frozen=True)
class ShownReview:
    """One question on screen, its answers in the order shown (index 0 is Answer 1)."""

    prompt_id: int
    generation_ids: tuple[int, int]
    versions: tuple[str, str]  # revealed once the vote is saved
    swapped: bool  # Answer 1 is version B's answer


def answer_caption(generation: Any) -> str:
    """A caption that does not identify the version: the answer's length and how it ended."""
    n_tokens = getattr(generation, "n_tokens", None)
    ending = {"length": " · hit the token limit"}.get(getattr(generation, "finish_reason", None) or "", "")
    return f"{n_tokens} tokens{ending}" if n_tokens is not None else ""


def version_label(name: str) -> str:
    return "base model" if name == "base" else name


class BlindReview(QObject):
    vote_saved = Signal(int)  # the comparison id, after the store call returned
    ended = Signal()  # Esc or End review
    all_reviewed = Signal()  # no question left for this pair of versions

    def __init__(self, ctx: AppContext, view: BlindReviewView, rng: random.Random | None = None) -> None:
        super().__init__(view)
        self.ctx, self.view = ctx, view
        self.rng = rng or random.Random()
        self.versions: tuple[str, str] | None = None
        self.shown: ShownReview | None = None
        self.busy = False  # a store call is in flight: keys wait
        self.n_saved = 0
        self.skipped: set[int] = set()  # prompt ids skipped in this review
        self.saved: list[int] = []  # this review's comparison ids
        self._task: asyncio.Task | None = None
        self._install_keys()
        view.end_requested.connect(self.end)
        view.choices.chosen.connect(self.choose)

    def _install_keys(self) -> None:
        def key(sequence: str, handler) -> None:
            shortcut = QShortcut(QKeySequence(sequence), self.view)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda: None if typing_in_text_field() else handler())

        for sequence, choice in CHOICE_KEYS:
            key(sequence, lambda c=choice: self.choose(c))
        key("S", self.skip)
        key("Esc", self.end)

    @property
    def active(self) -> bool:
        return self.versions is not None

    # ------------------------------------------------------------------ starting and moving on
    def start(self, version_a: str, version_b: str) -> asyncio.Task | None:
        """Review ``version_a`` against ``version_b`` ("base" is the base model alone)."""
        if version_a == version_b:
            self.view.set_feedback("Choose two different versions to review.", problem=True)
            return None
        if not self._ensure_annotator():
            return None
        self.versions = (version_a, version_b)
        self.n_saved, self.skipped, self.saved = 0, set(), []
        self.view.set_feedback("")
        self.view.setFocus()
        return self._run(self._show_next())

    def _run(self, coro) -> asyncio.Task:
        self.busy = True
        self.view.set_live(False)

        async def flow() -> None:
            try:
                await coro
            finally:
                self.busy = False

        self._task = self.ctx.tasks.start(flow(), "Blind review")
        return self._task

    async def wait_idle(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    async def _show_next(self) -> None:
        self.shown = None
        item = await self._draw()
        if self.versions is None:
            return  # ended while the store was asked
        if item is None:
            self._show_position(0)
            left = f" ({len(self.skipped)} skipped)" if self.skipped else ""
            self.view.show_message(
                f"All reviewed{left}: every held-out question with answers from both versions has your vote. "
                "Press Esc to go back to the results."
            )
            self.all_reviewed.emit()
            return
        self._show_position(item.remaining)
        a, b = self.versions
        # The store drew the order from our seed: Answer 1 is B's answer when ``swapped``.
        shown = (item.first_generation, item.second_generation)
        self.shown = ShownReview(
            item.prompt.id, (shown[0].id, shown[1].id), (b, a) if item.swapped else (a, b), item.swapped
        )
        prompt = item.prompt
        self.view.show_pair(
            prompt.text, prompt.reference_answer, prompt.answer_key,
            (shown[0].text, shown[1].text), (answer_caption(shown[0]), answer_caption(shown[1])),
        )  # fmt: skip
        self.view.setFocus()

    async def _draw(self) -> Any:
        """The next question not skipped in this review, or None when only skipped ones are left."""
        assert self.versions is not None
        a, b = self.versions
        for _ in range(MAX_DRAWS):
            seed = self.rng.randrange(SEED_LIMIT)  # the store draws the question and the order from it
            item = await self.ctx.store.run(
                Store.next_review_item, a, b, annotator=self.ctx.annotator, rng_seed=seed
            )
            if item is None or item.prompt.id not in self.skipped:
                return item
            if item.remaining <= len(self.skipped):
                return None  # every question left was skipped in this review
        return None

    def _show_position(self, remaining: int) -> None:
        skipped = f" · {len(self.skipped)} skipped" if self.skipped else ""
        self.view.position.setText(f"Blind review · {remaining} left · {self.n_saved} voted{skipped}")

    def skip(self) -> None:
        if self.busy or self.shown is None:
            return
        self.skipped.add(self.shown.prompt_id)
        self.view.set_feedback("Skipped: this question will not come up again in this review.")
        self._run(self._show_next())

    def end(self) -> None:
        """Esc: stop reviewing (votes already saved stay saved)."""
        if not self.active:
            return
        self.versions = None
        self.shown = None
        self.view.show_message("")
        self.ended.emit()

    # ------------------------------------------------------------------ voting
    def choose(self, choice: str) -> None:
        if self.busy or self.shown is None:
            return
        # Capture now and block further keys at once: a quick second press must not land on the next
        # question's answers, which the clinician has not read yet.
        shown, flags = self.shown, self.view.answer_flags()
        self._run(self._save(shown, choice, flags))

    async def _save(self, shown: ShownReview, choice: str, flags: tuple[list[str], list[str]]) -> None:
        ids = shown.generation_ids
        try:
            comparison_id = await self.ctx.store.run(
                Store.record_review, ids[0], ids[1], choice, annotator=self.ctx.annotator,
                swapped=shown.swapped, answer_flags={ids[0]: flags[0], ids[1]: flags[1]},
            )  # fmt: skip
        except StoreValidationError as exc:
            self.view.set_feedback(exc.message[:1].upper() + exc.message[1:], problem=True)
            self.view.set_live(True)
            return
        self.n_saved += 1
        self.saved.append(comparison_id)
        names = f"1: {version_label(shown.versions[0])}, 2: {version_label(shown.versions[1])}"
        self.view.set_feedback(f"Saved: {CHOICE_LABELS[choice]} ({names})")
        self.vote_saved.emit(comparison_id)
        if self.versions is not None:
            await self._show_next()

    def _ensure_annotator(self) -> bool:
        if self.ctx.annotator:
            return True
        name = dialogs.ask_annotator_name(self.view.window())
        if name:
            self.ctx.settings.annotator = name
        return bool(name)
