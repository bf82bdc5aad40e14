"""Where the clinician is on the Annotate page, without Qt: the queue, the phase, what is on screen.

The page (page.py), its verdicts (verdicts.py) and compare mode (compare_mode.py) all read and change one
:class:`AnnotateSession`; the widgets only show it. Being plain Python, it is tested without a window
(tests/unit/ui/test_annotate_session.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from medalign_desktop.store import Prompt


class Phase(Enum):
    WAITING = auto()  # a question is shown but no model is loaded yet
    EMPTY = auto()  # nothing to annotate
    STREAMING = auto()
    SAVING = auto()  # a store call is in flight
    READY = auto()  # the answer (or both answers) stored; waiting for a verdict
    EDITING = auto()
    REJECTING = auto()
    PICKING = auto()  # compare mode, after E: waiting for 1 or 2, the answer to correct


@dataclass(frozen=True)
class ShownPair:
    """Two stored answers on screen, in the order shown (index 0 is Answer 1)."""

    prompt_id: int
    generation_ids: tuple[int, int]
    labels: tuple[str, str]  # where each came from, revealed once the choice is saved
    swapped: bool
    mode: str  # "seeds" or "versions"


class QueueCursor:
    """A snapshot of the queue's prompt ids and the position in it.

    The snapshot is kept while annotating (a verdict does not shrink the list under the clinician's
    feet, so "12 of 400" moves forward steadily); it is reloaded when the filter changes or after an import
    made here, and questions imported by another process are added at its end (:meth:`extend`).
    """

    def __init__(self, prompt_ids: list[int] | None = None) -> None:
        self.ids: list[int] = list(prompt_ids or [])
        self.index = 0

    def reset(self, prompt_ids: list[int]) -> None:
        self.ids = list(prompt_ids)
        self.index = 0

    def extend(self, prompt_ids: list[int]) -> int:
        """Add the ids the snapshot does not hold yet at its end, in their order; how many were added."""
        known = set(self.ids)
        new = [i for i in prompt_ids if i not in known]
        self.ids.extend(new)
        return len(new)

    @property
    def current(self) -> int | None:
        return self.ids[self.index] if 0 <= self.index < len(self.ids) else None

    def advance(self) -> int | None:
        self.index = min(self.index + 1, len(self.ids))
        return self.current

    def go_to(self, prompt_id: int) -> None:
        """Make ``prompt_id`` current, inserting it here if the snapshot does not hold it (typed, undone)."""
        if prompt_id in self.ids:
            self.index = self.ids.index(prompt_id)
        else:
            self.index = min(self.index, len(self.ids))
            self.ids.insert(self.index, prompt_id)

    def position_text(self) -> str:
        total = len(self.ids)
        if total == 0:
            return "No questions in the queue"
        if self.current is None:
            return f"End of the queue ({total} question{'s' if total != 1 else ''})"
        return f"Question {self.index + 1:,} of {total:,}"


@dataclass
class AnnotateSession:
    """The Annotate page's state: the queue cursor, the phase, the question and the answer(s) shown."""

    cursor: QueueCursor = field(default_factory=QueueCursor)
    phase: Phase = Phase.EMPTY
    prompt: Prompt | None = None
    generation_id: int | None = None  # the one answer shown (single-answer mode), once stored
    pair: ShownPair | None = None  # compare mode: the two answers shown, once stored

    def clear_answers(self) -> None:
        """A new question is about to be shown: no answer of the last one is on screen any more."""
        self.generation_id = None
        self.pair = None

    def question_meta(self) -> str:
        """The line under the question: where it came from, and whether it is held out."""
        prompt = self.prompt
        if prompt is None:
            return ""
        meta = "Typed question" if prompt.source == "typed" else (prompt.external_id or "")
        return f"{meta} · held out".strip(" ·") if prompt.split == "held_out" else meta

    def queue_grew(self, prompt_ids: list[int]) -> bool:
        """Questions came in from elsewhere: add the new ones to the end of the queue. True when the
        page should show a question now (it was showing the empty queue or its end, and one is waiting)."""
        was_at_end = self.cursor.current is None
        added = self.cursor.extend(prompt_ids)
        return bool(added) and was_at_end and self.phase in (Phase.EMPTY, Phase.WAITING)


def session_field(name: str) -> property:
    """A property of the page that is its ``session``'s field ``name`` (the page keeps no state of its own)."""

    def get(page: Any) -> Any:
        return getattr(page.session, name)

    def set_(page: Any, value: Any) -> None:
        setattr(page.session, name, value)

    return property(get, set_, doc=f"The session's {name}.")
