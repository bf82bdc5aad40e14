"""What a write changed, by the part of the workspace a page shows (the role of Anki's ``OpChanges``).

Every write of the :class:`~medalign_desktop.store.store.Store` facade declares its Change where it is
defined (``Store.record_verdict.changes is Change.VERDICTS``); a read declares nothing. The window's store
service emits a write's Change once it succeeded, and each page refreshes only what the Change touches.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Flag, auto
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Change(Flag):
    """What a write changed, by the part of the workspace a page shows."""

    NONE = 0
    QUESTIONS = auto()  # prompts, their split (held out or not), import batches
    ANSWERS = auto()  # generated answers
    VERDICTS = auto()  # verdicts recorded, changed, withdrawn, undone
    COMPARISONS = auto()  # side-by-side comparisons, blind reviews, imported preference pairs
    VERSIONS = auto()  # model versions and which one answers
    JOBS = auto()  # training jobs and their logged figures
    SCORES = auto()  # reward-model scores of answers
    EVALUATIONS = auto()  # evaluation results of versions on the held-out questions
    EXTERNAL = auto()  # made by another process: what exactly is not known
    EVERYTHING = QUESTIONS | ANSWERS | VERDICTS | COMPARISONS | VERSIONS | JOBS | SCORES | EVALUATIONS


def changes_of(fn: Callable[..., Any]) -> Change:
    """What ``fn`` (a Store method) declares it changes; Change.NONE for a read."""
    return getattr(fn, "changes", Change.NONE)


def checked(changes: Change, fn: Callable[..., Any]) -> Change:
    """``changes``, refused when empty: a write must say what it changes."""
    if not changes:
        raise ValueError(f"The write {getattr(fn, '__name__', fn)} must say what it changes")
    return changes


def declare(fn: F, changes: Change) -> F:
    """Mark ``fn`` as a write that changes ``changes``."""
    fn.changes = checked(changes, fn)  # type: ignore[attr-defined]
    return fn


def writes(changes: Change) -> Callable[[F], F]:
    """Decorator: the method is a write that changes ``changes``."""
    return lambda fn: declare(fn, changes)
