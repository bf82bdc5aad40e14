"""Typed store operations: what a page may ask of the database, and what each write changes.

The pattern of Anki's ``CollectionOp`` / ``QueryOp`` and ``OpChanges``. An operation is an object, not a
method name: ``await ctx.store.run(Store.record_verdict, generation_id, "accept", annotator=name)`` runs
the Store method on the store thread, type-checked against its signature. Each write of the Store declares
the :class:`Change` it makes where it is defined (``store/changes.py``); after it succeeds,
``StoreService.changed`` carries that Change to every page, and
each page refreshes only what the Change touches::

    def _store_changed(self, changes: Change) -> None:
        if changes & Change.VERDICTS:
            self.refresh()

Writes made elsewhere reach the pages the same way: a job's outcome is announced by the training controller,
and a write by another process (``medalign import`` while the app runs, a second window) is noticed by the
StoreService's watch of SQLite's ``data_version`` and arrives as ``Change.EVERYTHING | Change.EXTERNAL``.

A function of the store that is not a Store method (a page's own query, e.g. the Compare page's
``load_compare_data``, or what a job needs before it is submitted) is wrapped as an operation where it is
defined: ``LOAD = query(load_compare_data)``; a write of that kind names its Change with ``write(fn, ...)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from medalign_desktop.jobs.evaluation import evaluation_request
from medalign_desktop.jobs.requests import ppo_job_inputs, preference_job_inputs, training_request
from medalign_desktop.jobs.scoring import score_request, scoring_version, unscored_count
from medalign_desktop.store import Store
from medalign_desktop.store.changes import Change, changes_of, checked

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class StoreOp(Generic[P, R]):
    """One operation on the store: ``fn(store, *args, **kwargs)``, and what it changes (NONE: a query)."""

    fn: Callable[Concatenate[Store, P], R]
    changes: Change = Change.NONE

    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", "operation")

    @property
    def writes(self) -> bool:
        return bool(self.changes)


def query(fn: Callable[Concatenate[Store, P], R]) -> StoreOp[P, R]:
    """A read: runs off the GUI thread, changes nothing."""
    return StoreOp(fn)


def write(fn: Callable[Concatenate[Store, P], R], changes: Change) -> StoreOp[P, R]:
    """A write that reports ``changes`` once it succeeded."""
    return StoreOp(fn, checked(changes, fn))


Operation = StoreOp[P, R] | Callable[Concatenate[Store, P], R]


def as_op(operation: Operation[P, R]) -> StoreOp[P, R]:
    """A Store method (``Store.record_verdict``) as an operation, with the Change it declares."""
    return operation if isinstance(operation, StoreOp) else StoreOp(operation, changes_of(operation))


def after_job(kind: str) -> Change:
    """What a finished job of ``kind`` changed in the database (its state, its figures, and its outcome)."""
    outcome = {"evaluate": Change.EVALUATIONS | Change.ANSWERS, "score": Change.SCORES}
    return Change.JOBS | outcome.get(kind, Change.VERSIONS)


# what a job needs from the database before it is submitted (the job manager writes the job itself) ----
training_request = query(training_request)
evaluation_request = query(evaluation_request)
score_request = query(score_request)
ppo_job_inputs = query(ppo_job_inputs)
preference_job_inputs = query(preference_job_inputs)
scoring_version = query(scoring_version)
unscored_count = query(unscored_count)


def all_operations() -> dict[str, StoreOp[Any, Any]]:
    """Every operation a page may run, by name: the Store's public methods (each write declares its
    Change there) and this module's operations on functions of the store."""
    methods = {
        name: as_op(member)
        for name, member in vars(Store).items()
        if not name.startswith("_") and inspect.isfunction(member) and name not in ("open", "close", "exclusive")
    }
    return methods | {name: op for name, op in globals().items() if isinstance(op, StoreOp)}
