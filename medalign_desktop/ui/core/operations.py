"""Typed store operations: what a page may ask of the database, and what each write changes.

The pattern of Anki's ``CollectionOp`` / ``QueryOp`` and ``OpChanges``. An operation is an object, not a
method name: ``await ctx.store.run(ops.record_verdict, generation_id, "accept", annotator=name)`` runs
``Store.record_verdict`` on the store thread, type-checked against its signature. A write declares the
:class:`Change` it makes; after it succeeds, ``StoreService.changed`` carries that Change to every page, and
each page refreshes only what the Change touches::

    def _store_changed(self, changes: Change) -> None:
        if changes & Change.VERDICTS:
            self.refresh()

Writes made elsewhere reach the pages the same way: a job's outcome is announced by the training controller,
and a write by another process (``medalign import`` while the app runs, a second window) is noticed by the
StoreService's watch of SQLite's ``data_version`` and arrives as ``Change.EVERYTHING | Change.EXTERNAL``.

A page's own query (a function of the store defined next to the page, e.g. the Compare page's
``load_compare_data``) is wrapped the same way, where it is defined: ``LOAD = query(load_compare_data)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Flag, auto
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from medalign_desktop.jobs.evaluation import evaluation_request
from medalign_desktop.jobs.requests import ppo_job_inputs, preference_job_inputs, training_request
from medalign_desktop.jobs.scoring import score_request, scoring_version, unscored_count
from medalign_desktop.store import Store

P = ParamSpec("P")
R = TypeVar("R")


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
    if not changes:
        raise ValueError(f"The write {fn.__name__} must say what it changes")
    return StoreOp(fn, changes)


def after_job(kind: str) -> Change:
    """What a finished job of ``kind`` changed in the database (its state, its figures, and its outcome)."""
    outcome = {"evaluate": Change.EVALUATIONS | Change.ANSWERS, "score": Change.SCORES}
    return Change.JOBS | outcome.get(kind, Change.VERSIONS)


# questions and answers ---------------------------------------------------------------------------------
get_prompt = query(Store.get_prompt)
queue = query(Store.queue)
add_prompt = write(Store.add_prompt, Change.QUESTIONS)
set_split = write(Store.set_split, Change.QUESTIONS)
import_batches = query(Store.import_batches)
held_out_count = query(Store.held_out_count)
hold_out_share = write(Store.hold_out_share, Change.QUESTIONS)
get_generation = query(Store.get_generation)
add_generation = write(Store.add_generation, Change.ANSWERS)

# verdicts ----------------------------------------------------------------------------------------------
record_verdict = write(Store.record_verdict, Change.VERDICTS)
change_verdict = write(Store.change_verdict, Change.VERDICTS)
withdraw_verdict = write(Store.withdraw_verdict, Change.VERDICTS)
undo_last_verdict = write(Store.undo_last_verdict, Change.VERDICTS)
feedback_detail = query(Store.feedback_detail)
history = query(Store.history)
history_count = query(Store.history_count)
annotators = query(Store.annotators)
stats = query(Store.stats)
samples_since_last_retrain = query(Store.samples_since_last_retrain)

# comparisons and blind review --------------------------------------------------------------------------
record_comparison = write(Store.record_comparison, Change.COMPARISONS)
withdraw_comparison = write(Store.withdraw_comparison, Change.COMPARISONS)
get_comparison = query(Store.get_comparison)
next_review_item = query(Store.next_review_item)
record_review = write(Store.record_review, Change.COMPARISONS)

# model versions and jobs -------------------------------------------------------------------------------
list_model_versions = query(Store.list_model_versions)
model_version_names = query(Store.model_version_names)
active_model_version = query(Store.active_model_version)
set_active_model_version = write(Store.set_active_model_version, Change.VERSIONS)
delete_model_version = write(Store.delete_model_version, Change.VERSIONS)
list_jobs = query(Store.list_jobs)
job_metrics = query(Store.job_metrics)

# what a job needs from the database before it is submitted (the job manager writes the job itself) ----
training_request = query(training_request)
evaluation_request = query(evaluation_request)
score_request = query(score_request)
ppo_job_inputs = query(ppo_job_inputs)
preference_job_inputs = query(preference_job_inputs)
scoring_version = query(scoring_version)
unscored_count = query(unscored_count)


def all_operations() -> dict[str, StoreOp[Any, Any]]:
    """The operations of this module by name (the architecture test checks every write names a Change)."""
    return {name: op for name, op in globals().items() if isinstance(op, StoreOp)}
