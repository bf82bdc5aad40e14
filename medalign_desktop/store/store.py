"""``Store``: the one object the rest of the app talks to for anything kept in SQLite.

A thin façade over the modules of this package: it owns the connection, the clock and a lock, turns
low-level ``sqlite3`` errors into :class:`StoreError` naming the database file, and documents the API.
It is meant to be used from one thread at a time (the app's single-thread store executor); the
connection is opened with ``check_same_thread=False`` so that thread may own it after creation, and the
lock makes accidental concurrent use safe rather than corrupting.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

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
from medalign_desktop.store.db import LOCK_WAIT_S, connect, utc_now
from medalign_desktop.store.errors import StoreError
from medalign_desktop.store.import_batches import ImportBatch, list_import_batches
from medalign_desktop.store.imports import staging
from medalign_desktop.store.rows import (
    AuditEntry,
    CachedAnswer,
    Comparison,
    EvaluationResult,
    FeedbackDetail,
    Generation,
    HistoryRow,
    Job,
    JobMetric,
    ModelVersion,
    PairFilter,
    PreferencePair,
    Prompt,
    ReviewItem,
    Vote,
)
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

    # prompts ------------------------------------------------------------------------------------------

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

    @_guarded
    def get_prompt(self, prompt_id: int) -> Prompt:
        return prompts.get_prompt(self.db, prompt_id)

    @_guarded
    def queue(self, *, mode: str = "unannotated", include_held_out: bool = False) -> list[int]:
        """Prompt ids to annotate, oldest first; 'unannotated' skips prompts with a live verdict."""
        return prompts.queue(self.db, mode=mode, include_held_out=include_held_out)

    @_guarded
    def set_split(self, prompt_ids: Iterable[int], split: str) -> None:
        prompts.set_split(self.db, prompt_ids, split)

    # generations --------------------------------------------------------------------------------------

    @_guarded
    def add_generation(
        self,
        prompt_id: int,
        text: str,
        *,
        model_version: int | str | None = None,
        settings: dict[str, Any],
        time_to_first_token_s: float | None = None,
        tokens_per_s: float | None = None,
        n_tokens: int | None = None,
        finish_reason: str | None = None,
    ) -> int:
        """Record a model answer; ``model_version`` is a registered id, a name (e.g. 'base') or None."""
        return generations.add_generation(
            self.db, self.clock, prompt_id, text, settings=settings, model_version=model_version,
            time_to_first_token_s=time_to_first_token_s, tokens_per_s=tokens_per_s, n_tokens=n_tokens,
            finish_reason=finish_reason,
        )  # fmt: skip

    @_guarded
    def get_generation(self, generation_id: int) -> Generation:
        return generations.get_generation(self.db, generation_id)

    # verdicts -----------------------------------------------------------------------------------------

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

    @_guarded
    def change_verdict(self, feedback_id: int, *, annotator: str, **fields: Any) -> bool:
        """Correct a live verdict (audited); returns False when the fields change nothing.

        Fields: verdict, edited_text, reject_reason, reject_note, rating, safety_flags, notes. When the
        verdict itself changes, the old verdict's edit / reject fields are dropped unless given again.
        """
        return verdicts.change_verdict(self.db, self.clock, feedback_id, annotator=annotator, **fields)

    @_guarded
    def withdraw_verdict(self, feedback_id: int, *, annotator: str, reason: str | None = None) -> None:
        verdicts.withdraw_verdict(self.db, self.clock, feedback_id, annotator=annotator, reason=reason)

    @_guarded
    def undo_last_verdict(self, annotator: str) -> int | None:
        return verdicts.undo_last_verdict(self.db, self.clock, annotator)

    @_guarded
    def audit_trail(self, feedback_id: int) -> list[AuditEntry]:
        return verdicts.audit_trail(self.db, feedback_id)

    # comparisons and preference pairs ---------------------------------------------------------------

    @_guarded
    def record_comparison(
        self,
        first_generation_id: int,
        second_generation_id: int,
        choice: str,
        *,
        annotator: str,
        swapped: bool,
        mode: str,
        edited_text: str | None = None,
        safety_flags: Iterable[str] = (),
        notes: str | None = None,
    ) -> int:
        """Save a choice between two answers to one question (one transaction); return its id.

        ``choice``: first / second / tie / both_bad; ``edited_text`` (a correction of the winner) only
        with first / second. StoreValidationError names a refused field.
        """
        return comparisons.record_comparison(
            self.db, self.clock, first_generation_id, second_generation_id, choice, annotator=annotator,
            swapped=swapped, mode=mode, edited_text=edited_text, safety_flags=safety_flags, notes=notes,
        )  # fmt: skip

    @_guarded
    def withdraw_comparison(self, comparison_id: int, *, annotator: str) -> None:
        comparisons.withdraw_comparison(self.db, self.clock, comparison_id, annotator=annotator)

    @_guarded
    def get_comparison(self, comparison_id: int) -> Comparison:
        return comparisons.get_comparison(self.db, comparison_id)

    @_guarded
    def list_comparisons(
        self, *, prompt_id: int | None = None, include_withdrawn: bool = False
    ) -> list[Comparison]:
        return comparisons.list_comparisons(self.db, prompt_id=prompt_id, include_withdrawn=include_withdrawn)

    @_guarded
    def preference_pairs(self, filters: PairFilter = pairs.ALL_PAIRS) -> list[PreferencePair]:
        """Every pair matching ``filters``, oldest first (held-out questions only if the filter asks).

        To stream many (an export), use ``pairs.iter_pairs(db, filters)`` inside ``with store.exclusive() as db``.
        """
        return list(pairs.iter_pairs(self.db, filters))

    @_guarded
    def count_pairs(self, filters: PairFilter = pairs.ALL_PAIRS) -> int:
        return pairs.count_pairs(self.db, filters)

    @_guarded
    def import_batches(self, kind: str | None = None) -> list[ImportBatch]:
        """Import batches newest first; ``kind``: 'questions', 'pairs' or None for both."""
        return list_import_batches(self.db, kind)

    # history ------------------------------------------------------------------------------------------

    @_guarded
    def history(
        self,
        *,
        search: str | None = None,
        verdict: str | None = None,
        annotator: str | None = None,
        model_version: str | None = None,
        flag: str | None = None,
        date_from: Any = None,
        date_to: Any = None,
        include_withdrawn: bool = False,
        limit: int = 200,
        offset: int = 0,
        score_version_id: int | None = None,
    ) -> list[HistoryRow]:
        """Verdicts newest first. Dates: ``date`` = whole UTC day (date_to inclusive), or aware datetimes.
        ``score_version_id``: a reward version whose scores of the answers fill ``HistoryRow.reward_score``."""
        return history.history(
            self.db, search=search, verdict=verdict, annotator=annotator, model_version=model_version,
            flag=flag, date_from=date_from, date_to=date_to, include_withdrawn=include_withdrawn,
            limit=limit, offset=offset, score_version_id=score_version_id,
        )  # fmt: skip

    @_guarded
    def history_count(self, **filters: Any) -> int:
        """How many verdicts :meth:`history` would list with the same filters (no limit / offset)."""
        return history.history_count(self.db, **filters)

    @_guarded
    def feedback_detail(self, feedback_id: int) -> FeedbackDetail:
        return history.feedback_detail(self.db, feedback_id)

    @_guarded
    def annotators(self) -> list[str]:
        return history.annotators(self.db)

    @_guarded
    def model_version_names(self) -> list[str]:
        return history.model_version_names(self.db)

    @_guarded
    def samples_since_last_retrain(self) -> int:
        return history.samples_since_last_retrain(self.db)

    @_guarded
    def stats(self) -> dict[str, int]:
        return history.stats(self.db)

    # reward-model scores of answers --------------------------------------------------------------------

    @_guarded
    def add_scores(self, version_id: int, values: Iterable[tuple[int, float]]) -> int:
        """Store ``(generation_id, score)`` pairs of a reward version (one transaction, upsert); all or
        nothing, StoreValidationError names the bad item. Returns how many were stored."""
        return scores.add_scores(self.db, self.clock, version_id, values)

    @_guarded
    def unscored_generations(self, version_id: int) -> list[tuple[int, str, str]]:
        """(generation_id, question, answer) of the answers the reward version has not scored yet."""
        return scores.unscored_generations(self.db, version_id)

    @_guarded
    def answer_scores(self, version_id: int) -> dict[int, float | None]:
        return scores.answer_scores(self.db, version_id)

    # model versions and jobs --------------------------------------------------------------------------

    @_guarded
    def add_model_version(
        self,
        name: str,
        kind: str,
        *,
        parent_id: int | None = None,
        job_id: int | None = None,
        base_model: str | None = None,
        adapter_path: str | Path | None = None,
        data_size: int | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> int:
        return versions.add_model_version(
            self.db, self.clock, name, kind, parent_id=parent_id, job_id=job_id, base_model=base_model,
            adapter_path=adapter_path, data_size=data_size, metrics=metrics,
        )  # fmt: skip

    @_guarded
    def list_model_versions(self) -> list[ModelVersion]:
        return versions.list_model_versions(self.db)

    @_guarded
    def set_active_model_version(self, version_id: int | None) -> None:
        versions.set_active_model_version(self.db, version_id)

    @_guarded
    def delete_model_version(self, version_id: int) -> None:
        """Remove an unused version (not active, no children, no answers); StoreValidationError says why not."""
        versions.delete_model_version(self.db, version_id)

    @_guarded
    def active_model_version(self) -> ModelVersion | None:
        return versions.active_model_version(self.db)

    @_guarded
    def create_job(self, kind: str, config: dict[str, Any], job_dir: str | Path | None = None) -> int:
        return versions.create_job(self.db, self.clock, kind, config, job_dir)

    @_guarded
    def get_job(self, job_id: int) -> Job:
        return versions.get_job(self.db, job_id)

    @_guarded
    def list_jobs(self, *, kind: str | None = None) -> list[Job]:
        return versions.list_jobs(self.db, kind=kind)

    @_guarded
    def set_job_state(self, job_id: int, state: str, *, error: str | None = None) -> None:
        versions.set_job_state(self.db, self.clock, job_id, state, error=error)

    @_guarded
    def update_job(
        self, job_id: int, *, job_dir: str | Path | None = None, data_size: int | None = None
    ) -> None:
        versions.update_job(self.db, job_id, job_dir=job_dir, data_size=data_size)

    @_guarded
    def reopen_job(self, job_id: int, *, keep_through_step: int) -> int:
        """A cancelled or failed job back to "queued" for resuming; its metrics after that step deleted."""
        return versions.reopen_job(self.db, job_id, keep_through_step=keep_through_step)

    @_guarded
    def add_job_metrics(self, job_id: int, rows: Iterable[Any]) -> None:
        """Rows: ``{"step", "name", "value", "time"?}`` dicts or ``(step, name, value)`` tuples."""
        versions.add_job_metrics(self.db, self.clock, job_id, rows)

    @_guarded
    def job_metrics(self, job_id: int, name: str | None = None) -> list[JobMetric]:
        return versions.job_metrics(self.db, job_id, name)

    # evaluation of model versions and blind review (issue 7) ---------------------------------------------

    @_guarded
    def evaluation_cache(self, version_names: Iterable[str], settings: dict[str, Any]) -> list[CachedAnswer]:
        """Answers already stored for these versions with exactly ``settings`` (see
        ``store.eval_results.evaluation_settings``): an evaluation job does not generate them again."""
        return eval_results.evaluation_cache(self.db, version_names, settings)

    @_guarded
    def store_evaluation(self, job_id: int | None, results: dict[str, Any], answers: list[dict]) -> None:
        """Store an evaluation job's results.json and answers.jsonl in one transaction (all or nothing;
        StoreValidationError names the bad field, e.g. ``answers[3].prompt_id``)."""
        eval_results.store_evaluation(self.db, self.clock, job_id, results, answers)

    @_guarded
    def evaluation_results(self, latest_only: bool = True) -> list[EvaluationResult]:
        return eval_results.evaluation_results(self.db, latest_only=latest_only)

    @_guarded
    def held_out_count(self) -> int:
        return eval_results.held_out_count(self.db)

    @_guarded
    def held_out_prompts(self) -> list[Prompt]:
        return eval_results.held_out_prompts(self.db)

    @_guarded
    def hold_out_share(self, import_batch_id: int, fraction: float, seed: int) -> int:
        """Move a seeded random share of an import batch's questions to held-out; returns how many moved.
        Questions with feedback may move: the training snapshots' guard keeps them out from then on."""
        return eval_results.hold_out_share(self.db, import_batch_id, fraction, seed)

    @_guarded
    def next_review_item(
        self, version_a: str, version_b: str, *, annotator: str, rng_seed: int
    ) -> ReviewItem | None:
        """The next blind review for this annotator between two versions' evaluation answers, or None."""
        return eval_results.next_review_item(
            self.db, version_a, version_b, annotator=annotator, rng_seed=rng_seed
        )

    @_guarded
    def record_review(
        self,
        first_generation_id: int,
        second_generation_id: int,
        choice: str,
        *,
        annotator: str,
        swapped: bool,
        answer_flags: dict[int, list[str]] | None = None,
        notes: str | None = None,
    ) -> int:
        """Save a blind review (a comparison, mode 'versions') and each answer's safety flags; its id."""
        return eval_results.record_review(
            self.db, self.clock, first_generation_id, second_generation_id, choice, annotator=annotator,
            swapped=swapped, answer_flags=answer_flags, notes=notes,
        )  # fmt: skip

    @_guarded
    def review_votes(self) -> list[Vote]:
        return eval_results.review_votes(self.db)
