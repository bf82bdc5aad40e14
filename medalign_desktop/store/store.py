"""``Store``: the one object the rest of the app talks to for anything kept in SQLite.

A thin façade over the modules of this package: it owns the connection, the clock and a lock, turns
low-level ``sqlite3`` errors into :class:`StoreError` naming the database file, and documents the API.
It is meant to be used from one thread at a time (the app's single-thread store executor); the
connection is opened with ``check_same_thread=False`` so that thread may own it after creation, and the
lock makes accidental concurrent use safe rather than corrupting.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlite_utils import Database

from medalign_desktop.store import (
    comparisons,
    eval_results,
    generations,
    history,
    pairs,
    prompts,
    scores,
    tempfiles,
    verdicts,
    versions,
)
from medalign_desktop.store.changes import Change, declare, writes
from medalign_desktop.store.db import LOCK_WAIT_S, connect, utc_now
from medalign_desktop.store.errors import StoreError
from medalign_desktop.store.import_batches import ImportBatch, list_import_batches
from medalign_desktop.store.imports import staging
from medalign_desktop.store.rows import PairFilter, PreferencePair
from medalign_desktop.store.schema import migrations

P = ParamSpec("P")
R = TypeVar("R")


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Serialise calls, refuse use after close, and name the file in database errors."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        self = args[0]
        assert isinstance(self, Store)
        with self._lock:
            if self._db is None:
                raise StoreError(f"The store for {self.path} is closed.")
            try:
                return method(*args, **kwargs)
            except sqlite3.Error as exc:
                action = method.__name__.replace("_", " ")
                raise StoreError(f"Database {self.path}: {action} failed: {exc}") from exc

    return wrapper


Clock = Callable[[], str]


def _delegate(fn: Callable[..., R], leading: int, doc: str | None, changes: Change) -> Callable[..., R]:
    """A guarded Store method named and signed like ``fn`` without its first ``leading`` parameters, that
    declares ``changes`` (a write) or nothing (a read)."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    module, name = sys.modules[fn.__module__], fn.__name__

    def method(self: Store, *args: Any, **kwargs: Any) -> R:
        # Looked up at each call, as a written-out method would, so a test can replace the module function.
        leading_args = (self.db,) if leading == 1 else (self.db, self.clock)
        return getattr(module, name)(*leading_args, *args, **kwargs)

    method.__name__ = fn.__name__
    method.__qualname__ = f"Store.{fn.__name__}"
    method.__doc__ = doc or fn.__doc__
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = sig.replace(parameters=[self_param, *params[leading:]])  # type: ignore[attr-defined]
    guarded = _guarded(method)
    return declare(guarded, changes) if changes else guarded


def _on_db(
    fn: Callable[Concatenate[Database, P], R], doc: str | None = None, changes: Change = Change.NONE
) -> Callable[Concatenate[Store, P], R]:
    """A Store method that is ``fn(store.db, ...)``: the module function is the one implementation."""
    return _delegate(fn, 1, doc, changes)


def _on_db_and_clock(
    fn: Callable[Concatenate[Database, Clock, P], R], doc: str | None = None, changes: Change = Change.NONE
) -> Callable[Concatenate[Store, P], R]:
    """A Store method that is ``fn(store.db, store.clock, ...)`` (for functions that stamp the time)."""
    return _delegate(fn, 2, doc, changes)


class Store:
    """One workspace database. Create with :meth:`open`; close with :meth:`close` (or use ``with``)."""

    def __init__(
        self, db: Database, path: Path, backup: Path | None = None, tightened: tuple[Path, ...] = ()
    ) -> None:
        self._db: Database | None = db
        self.path = path
        self.last_backup = backup  # the pre-migration copy written by this open, if any
        # files / the folder that were readable by others and were made private by this open (for a notice)
        self.tightened: tuple[Path, ...] = tightened
        self.clock: Callable[[], str] = utc_now  # replaceable in tests
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, lock_wait_s: float = LOCK_WAIT_S) -> Store:
        """Open or create the database at ``path``, migrating an older schema after a backup.

        ``create=False`` refuses a missing file (nothing is created). A newer-schema or foreign SQLite file
        is refused before anything in it changes. ``lock_wait_s``: how long a write waits for another
        writer's lock before StoreBusyError. Stale temporary files of dead processes are removed.
        """
        if str(path) in ("", ":memory:"):
            raise StoreError(
                f"Store.open needs a database file path, got {str(path)!r} (in-memory is not supported)"
            )
        path = Path(path).expanduser().absolute()
        db, tightened = connect(
            path, create=create, latest_version=migrations.latest_version(), lock_wait_s=lock_wait_s
        )
        try:
            backup = migrations.migrate(db, path)
            # A killed import is finished (publishing) or dropped (staging) now, not at the next import.
            staging.recover(db)
        except BaseException:
            db.close()
            raise
        tempfiles.clean_registered()
        return cls(db, path, backup, tightened)

    @property
    def db(self) -> Database:
        """The sqlite-utils database, for store internals, tests and benchmarks only."""
        if self._db is None:
            raise StoreError(f"The store for {self.path} is closed.")
        return self._db

    @contextmanager
    def exclusive(self) -> Iterator[Database]:
        """Hold the store's lock and get its database (for bulk writers of this package, e.g. imports)."""
        with self._lock:
            yield self.db

    @property
    def schema_version(self) -> int:
        return migrations.user_version(self.db)

    @_guarded
    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` of this connection: it changes when another connection (a job,
        the command line, another app) has committed to the file; this connection's own writes leave it
        as it is. Compare two readings to notice writes made elsewhere."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                try:
                    self._db.execute("PRAGMA optimize")
                except sqlite3.Error:
                    pass  # an optimisation hint only; closing must still happen
                finally:
                    self._db.close()
                    self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # The methods below are the module functions with the store's connection (and clock) filled in;
    # the few written out in full add something (a signature narrower than the module's, or a conversion).

    # prompts ------------------------------------------------------------------------------------------

    @writes(Change.QUESTIONS)
    @_guarded
    def add_prompt(
        self,
        text: str,
        *,
        reference_answer: str | None = None,
        answer_key: str | None = None,
        options: dict[str, str] | list[str] | None = None,
        source: str = "typed",
        external_id: str | None = None,
        split: str = "train",
    ) -> int:
        """Store a question; the same content stored before returns the existing id."""
        return prompts.add_prompt(
            self.db, self.clock, text, reference_answer=reference_answer, answer_key=answer_key,
            options=options, source=source, external_id=external_id, split=split,
        )  # fmt: skip

    get_prompt = _on_db(prompts.get_prompt)
    queue = _on_db(
        prompts.queue,
        "Prompt ids to annotate, oldest first; 'unannotated' skips prompts with a live verdict.",
    )
    set_split = _on_db(prompts.set_split, changes=Change.QUESTIONS)

    # generations --------------------------------------------------------------------------------------

    add_generation = _on_db_and_clock(
        generations.add_generation,
        "Record a model answer; ``model_version`` is a registered id, a name (e.g. 'base') or None.",
        changes=Change.ANSWERS,
    )
    get_generation = _on_db(generations.get_generation)

    # verdicts -----------------------------------------------------------------------------------------

    @writes(Change.VERDICTS)
    @_guarded
    def record_verdict(
        self,
        generation_id: int,
        verdict: str,
        *,
        annotator: str,
        edited_text: str | None = None,
        reject_reason: str | None = None,
        reject_note: str | None = None,
        rating: int | None = None,
        safety_flags: Iterable[str] = (),
        notes: str | None = None,
    ) -> int:
        """Save one verdict and its audit row in one transaction; return the feedback id.

        When this returns, the verdict is on disk (fsync'd). StoreValidationError names a refused field.
        """
        return verdicts.record_verdict(
            self.db, self.clock, generation_id, verdict, annotator=annotator, edited_text=edited_text,
            reject_reason=reject_reason, reject_note=reject_note, rating=rating,
            safety_flags=safety_flags, notes=notes,
        )  # fmt: skip

    change_verdict = _on_db_and_clock(
        verdicts.change_verdict,
        """Correct a live verdict (audited); returns False when the fields change nothing.

        Fields: verdict, edited_text, reject_reason, reject_note, rating, safety_flags, notes. When the
        verdict itself changes, the old verdict's edit / reject fields are dropped unless given again.
        """,
        changes=Change.VERDICTS,
    )

    @writes(Change.VERDICTS)
    @_guarded
    def withdraw_verdict(self, feedback_id: int, *, annotator: str, reason: str | None = None) -> None:
        verdicts.withdraw_verdict(self.db, self.clock, feedback_id, annotator=annotator, reason=reason)

    undo_last_verdict = _on_db_and_clock(verdicts.undo_last_verdict, changes=Change.VERDICTS)
    audit_trail = _on_db(verdicts.audit_trail)

    # comparisons and preference pairs ---------------------------------------------------------------

    record_comparison = _on_db_and_clock(
        comparisons.record_comparison,
        """Save a choice between two answers to one question (one transaction); return its id.

        ``choice``: first / second / tie / both_bad; ``edited_text`` (a correction of the winner) only
        with first / second. StoreValidationError names a refused field.
        """,
        changes=Change.COMPARISONS,
    )
    withdraw_comparison = _on_db_and_clock(comparisons.withdraw_comparison, changes=Change.COMPARISONS)
    get_comparison = _on_db(comparisons.get_comparison)
    list_comparisons = _on_db(comparisons.list_comparisons)

    @_guarded
    def preference_pairs(self, filters: PairFilter = pairs.ALL_PAIRS) -> list[PreferencePair]:
        """Every pair matching ``filters``, oldest first (held-out questions only if the filter asks).

        To stream many (an export), use ``pairs.iter_pairs(db, filters)`` inside ``with store.exclusive() as db``.
        """
        return list(pairs.iter_pairs(self.db, filters))

    count_pairs = _on_db(pairs.count_pairs)

    @_guarded
    def import_batches(self, kind: str | None = None) -> list[ImportBatch]:
        """Import batches newest first; ``kind``: 'questions', 'pairs' or None for both."""
        return list_import_batches(self.db, kind)

    # history ------------------------------------------------------------------------------------------

    # (before ``history`` below, which hides the module of that name in the rest of the class body)
    history_count = _on_db(
        history.history_count,
        "How many verdicts :meth:`history` would list with the same filters (no limit / offset).",
    )
    feedback_detail = _on_db(history.feedback_detail)
    annotators = _on_db(history.annotators)
    model_version_names = _on_db(history.model_version_names)
    samples_since_last_retrain = _on_db(history.samples_since_last_retrain)
    stats = _on_db(history.stats)

    history = _on_db(
        history.history,
        """Verdicts newest first, filtered as :func:`history.build_filters` says. Dates: ``date`` = whole
        UTC day (date_to inclusive), or aware datetimes. ``score_version_id``: a reward version whose
        scores of the answers fill ``HistoryRow.reward_score``.""",
    )

    # reward-model scores of answers --------------------------------------------------------------------

    add_scores = _on_db_and_clock(
        scores.add_scores,
        """Store ``(generation_id, score)`` pairs of a reward version (one transaction, upsert); all or
        nothing, StoreValidationError names the bad item. Returns how many were stored.""",
        changes=Change.SCORES,
    )
    unscored_generations = _on_db(
        scores.unscored_generations,
        "(generation_id, question, answer) of the answers the reward version has not scored yet.",
    )
    answer_scores = _on_db(scores.answer_scores)

    # model versions and jobs --------------------------------------------------------------------------

    add_model_version = _on_db_and_clock(versions.add_model_version, changes=Change.VERSIONS)
    list_model_versions = _on_db(versions.list_model_versions)
    set_active_model_version = _on_db(versions.set_active_model_version, changes=Change.VERSIONS)
    delete_model_version = _on_db(
        versions.delete_model_version,
        "Remove an unused version (not active, no children, no answers); StoreValidationError says why not.",
        changes=Change.VERSIONS,
    )
    active_model_version = _on_db(versions.active_model_version)
    create_job = _on_db_and_clock(versions.create_job, changes=Change.JOBS)
    get_job = _on_db(versions.get_job)
    list_jobs = _on_db(versions.list_jobs)
    set_job_state = _on_db_and_clock(versions.set_job_state, changes=Change.JOBS)
    update_job = _on_db(versions.update_job, changes=Change.JOBS)
    reopen_job = _on_db(
        versions.reopen_job,
        'A cancelled or failed job back to "queued" for resuming; its metrics after that step deleted.',
        changes=Change.JOBS,
    )
    add_job_metrics = _on_db_and_clock(
        versions.add_job_metrics,
        'Rows: ``{"step", "name", "value", "time"?}`` dicts or ``(step, name, value)`` tuples.',
        changes=Change.JOBS,
    )
    job_metrics = _on_db(versions.job_metrics)

    # evaluation of model versions and blind review (issue 7) ---------------------------------------------

    evaluation_cache = _on_db(
        eval_results.evaluation_cache,
        """Answers already stored for these versions with exactly ``settings`` (see
        ``store.eval_results.evaluation_settings``): an evaluation job does not generate them again.""",
    )
    store_evaluation = _on_db_and_clock(
        eval_results.store_evaluation,
        """Store an evaluation job's results.json and answers.jsonl in one transaction (all or nothing;
        StoreValidationError names the bad field, e.g. ``answers[3].prompt_id``).""",
        changes=Change.EVALUATIONS | Change.ANSWERS,
    )
    evaluation_results = _on_db(eval_results.evaluation_results)
    held_out_count = _on_db(eval_results.held_out_count)
    held_out_prompts = _on_db(eval_results.held_out_prompts)
    hold_out_share = _on_db(
        eval_results.hold_out_share,
        """Move a seeded random share of an import batch's questions to held-out; returns how many moved.
        Questions with feedback may move: the training snapshots' guard keeps them out from then on.""",
        changes=Change.QUESTIONS,
    )
    next_review_item = _on_db(
        eval_results.next_review_item,
        "The next blind review for this annotator between two versions' evaluation answers, or None.",
    )
    record_review = _on_db_and_clock(
        eval_results.record_review,
        "Save a blind review (a comparison, mode 'versions') and each answer's safety flags; its id.",
        changes=Change.COMPARISONS,
    )
    review_votes = _on_db(eval_results.review_votes)
