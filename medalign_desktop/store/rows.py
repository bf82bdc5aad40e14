"""Plain, frozen records handed out by the store.

Frozen dataclasses rather than sqlite rows: the UI and the job runner get values they can pass between
threads and compare, and never a live cursor. JSON columns are decoded here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any


def _loads(value: str | None) -> Any:
    return json.loads(value) if value is not None else None


def record_from_row(cls: type, row: dict[str, Any], **computed: Any) -> Any:
    """An instance of the dataclass ``cls``: each field from the column of its name, unless ``computed``."""
    return cls(**{f.name: computed[f.name] if f.name in computed else row[f.name] for f in fields(cls)})


def split_flags(value: str | None) -> tuple[str, ...]:
    """A ``group_concat(flag, ',')`` column as sorted flags (NULL or empty: none)."""
    return tuple(sorted(value.split(","))) if value else ()


@dataclass(frozen=True)
class Prompt:
    id: int
    text: str
    reference_answer: str | None
    answer_key: str | None
    options: dict[str, str] | list[str] | None
    source: str
    external_id: str | None
    split: str
    import_batch_id: int | None
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Prompt:
        return record_from_row(cls, row, options=_loads(row["options_json"]))


@dataclass(frozen=True)
class Generation:
    id: int
    prompt_id: int
    model_version_id: int | None
    model_version: str | None  # the version's name as recorded at generation time
    text: str
    settings: dict[str, Any]
    time_to_first_token_s: float | None
    tokens_per_s: float | None
    n_tokens: int | None
    finish_reason: str | None
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Generation:
        return record_from_row(
            cls, row, model_version=row["model_version_name"], settings=_loads(row["settings_json"]) or {}
        )


@dataclass(frozen=True)
class AuditEntry:
    id: int
    feedback_id: int
    action: str  # create / change / withdraw / undo
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    annotator: str
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditEntry:
        return record_from_row(cls, row, old=_loads(row["old_json"]), new=_loads(row["new_json"]))


@dataclass(frozen=True)
class HistoryRow:
    feedback_id: int
    created_at: str
    annotator: str
    verdict: str
    prompt_excerpt: str
    answer_excerpt: str  # the model's original answer
    model_version: str | None
    rating: int | None
    flags: tuple[str, ...]
    withdrawn: bool
    edited_excerpt: str | None = None  # only for 'edit' verdicts
    reject_reason: str | None = None
    prompt_id: int | None = None
    generation_id: int | None = None
    reward_score: float | None = None  # the answer's score by the reward model asked for, if scored


@dataclass(frozen=True)
class FeedbackDetail:
    feedback_id: int
    prompt_id: int
    prompt_text: str
    reference_answer: str | None
    generation_id: int
    original_text: str
    edited_text: str | None
    model_version: str | None
    verdict: str
    reject_reason: str | None
    reject_note: str | None
    rating: int | None
    safety_flags: tuple[str, ...]
    notes: str | None
    annotator: str
    created_at: str
    updated_at: str
    withdrawn: bool
    audit: list[AuditEntry] = field(default_factory=list)

    @property
    def final_text(self) -> str:
        """The answer the clinician stands behind: the edit if there is one, else the original."""
        return self.edited_text if self.edited_text is not None else self.original_text


@dataclass(frozen=True)
class ModelVersion:
    id: int
    name: str
    kind: str
    parent_id: int | None
    job_id: int | None
    base_model: str | None
    adapter_path: str | None
    data_size: int | None
    metrics: dict[str, Any]
    created_at: str
    is_active: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelVersion:
        return record_from_row(
            cls, row, metrics=_loads(row["metrics_json"]) or {}, is_active=bool(row["is_active"])
        )


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    state: str
    config: dict[str, Any]
    job_dir: str | None
    data_size: int | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return record_from_row(cls, row, config=_loads(row["config_json"]) or {})


@dataclass(frozen=True)
class JobMetric:
    job_id: int
    step: int | None
    name: str
    value: float | None
    time: str


# -- preference pairs (issue 5) ---------------------------------------------------------------------------

PAIR_SOURCES: tuple[str, ...] = ("edit", "comparison", "reject", "imported")
COMPARISON_CHOICES: tuple[str, ...] = ("first", "second", "tie", "both_bad")


@dataclass(frozen=True)
class PreferencePair:
    """One (chosen > rejected) pair, derived from live rows each time it is read (never copied).

    ``key`` is stable across reads: ``edit-<feedback id>``, ``cmp-<comparison id>``,
    ``cmp-<comparison id>-edit`` (an edited winner over the original winner),
    ``rej-<reject feedback id>-<better feedback id>``, ``imp-<imported pair id>``.
    """

    key: str
    source: str  # one of PAIR_SOURCES
    prompt_id: int | None  # None for imported pairs (their prompt is kept with the pair)
    prompt: str
    chosen: str
    rejected: str
    annotator: str | None  # None for imported pairs
    feedback_ids: tuple[int, ...]  # the verdict(s) the pair comes from
    comparison_id: int | None
    chosen_version: str | None  # model version names as recorded on the generations
    rejected_version: str | None
    split: str  # "train" or "held_out" (imported pairs: "train")
    safety_flags: tuple[str, ...]  # flags on the source verdict(s) / comparison
    import_batch_id: int | None
    created_at: str  # when the (latest) source verdict / comparison / import was made


@dataclass(frozen=True)
class PairFilter:
    """Which pairs to read or export. Empty / None fields do not filter.

    Dates are ISO-8601 UTC strings compared to ``created_at`` (``date_to`` exclusive) or ``datetime.date``
    (whole UTC days, ``date_to`` inclusive).
    """

    date_from: Any = None
    date_to: Any = None
    annotator: str | None = None
    model_version: str | None = None  # matches the chosen or the rejected answer's version
    sources: tuple[str, ...] = PAIR_SOURCES
    flags: tuple[str, ...] = ()  # only pairs carrying any of these safety flags
    exclude_flagged: bool = False  # drop pairs carrying any safety flag
    include_held_out: bool = False
    import_batch_ids: tuple[int, ...] | None = None  # None: every imported batch


@dataclass(frozen=True)
class Comparison:
    """A clinician's choice between two answers to one question, shown as Answer 1 / Answer 2."""

    id: int
    prompt_id: int
    first_generation_id: int  # shown as "Answer 1"
    second_generation_id: int  # shown as "Answer 2"
    swapped: bool  # True when the random order showed the second-generated answer first
    mode: str  # "seeds" (two samples of one version) or "versions" (two model versions)
    choice: str  # one of COMPARISON_CHOICES
    edited_text: str | None  # the clinician's edit of the winner, if any
    safety_flags: tuple[str, ...]
    notes: str | None
    annotator: str
    created_at: str
    withdrawn: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Comparison:
        """From ``comparisons`` columns plus ``flags``, the comparison's flags as ``group_concat``."""
        return record_from_row(
            cls, row, swapped=bool(row["swapped"]), safety_flags=split_flags(row["flags"]),
            withdrawn=bool(row["withdrawn"]),
        )  # fmt: skip


# -- evaluation of model versions and blind review (issue 7) -----------------------------------------------


@dataclass(frozen=True)
class CachedAnswer:
    """An evaluation answer already stored for (version, question) with the exact same settings."""

    version: str
    prompt_id: int
    generation_id: int
    text: str
    n_tokens: int | None
    finish_reason: str | None


@dataclass(frozen=True)
class EvaluationResult:
    """The metrics of one version from one evaluation job (results.json of `python -m training evaluate`)."""

    version: str
    job_id: int | None
    created_at: str
    metrics: dict[str, Any]  # n_questions, accuracy, rouge_l, bleu, reward_mean, mean_length_tokens, ...
    settings: dict[str, Any]  # max_new_tokens, temperature, system_prompt, seed


@dataclass(frozen=True)
class ReviewItem:
    """One blind review: a held-out question and two versions' answers in a random order, unlabelled."""

    prompt: Prompt
    first_generation: Generation  # shown as "Answer 1"
    second_generation: Generation  # shown as "Answer 2"
    swapped: bool = False  # True when version_b's answer is shown first
    remaining: int = 0  # questions left to review for this pair of versions, this one included


@dataclass(frozen=True)
class Vote:
    """A live blind-review comparison between two versions' evaluation answers, for the statistics."""

    first_version: str
    second_version: str
    choice: str  # one of COMPARISON_CHOICES, about first / second as shown
    first_flags: tuple[str, ...] = ()
    second_flags: tuple[str, ...] = ()
    comparison_id: int | None = None
    prompt_id: int | None = None
    annotator: str | None = None
    first_generation_id: int | None = None
    second_generation_id: int | None = None
