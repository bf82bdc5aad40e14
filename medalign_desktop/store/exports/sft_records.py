"""SFT records for export: every live accepted or edited answer, with the pair filters that apply to verdicts.

An accepted answer exports the generation's text, an edited one the clinician's edit (as
:func:`training_data.feedback_examples` does for training). Filters mean what they mean for pairs
(:func:`pairs.check_filter` validates them): dates on the verdict's time, annotator, model version of the
generation, safety flags on the verdict, held-out questions left out unless asked. ``sources`` and
``import_batch_ids`` do not apply (no SFT record comes from an imported pair).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.pairs import check_filter
from medalign_desktop.store.rows import PairFilter, split_flags

ALL = PairFilter()  # the default filter: every live answer on a train-split question
SFT_SOURCES: tuple[str, ...] = ("accept", "edit")
APPLICABLE_FILTERS: tuple[str, ...] = (
    "date_from", "date_to", "annotator", "model_version", "flags", "exclude_flagged", "include_held_out",
)  # fmt: skip


@dataclass(frozen=True)
class SftRecord:
    key: str  # "accept-<feedback id>" or "edit-<feedback id>"
    source: str  # "accept" or "edit"
    feedback_id: int
    prompt_id: int
    question: str
    answer: str
    annotator: str
    model_version: str | None
    split: str
    safety_flags: tuple[str, ...]
    created_at: str


_SELECT = """
    SELECT f.id, f.verdict, p.id, p.text, CASE f.verdict WHEN 'edit' THEN f.edited_text ELSE g.text END,
           f.annotator, g.model_version_name, p.split, f.created_at,
           (SELECT group_concat(x.flag, ',') FROM feedback_flags x WHERE x.feedback_id = f.id)
"""
_FROM = """
    FROM feedback f
    JOIN generations g ON g.id = f.generation_id
    JOIN prompts p ON p.id = g.prompt_id
    WHERE f.withdrawn = 0 AND f.verdict IN ('accept', 'edit')
"""


def _where(filters: PairFilter) -> tuple[str, dict[str, Any]]:
    f = check_filter(filters)
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if f.date_from is not None:
        clauses.append("f.created_at >= :date_from")
        params["date_from"] = f.date_from
    if f.date_to is not None:
        clauses.append(f"f.created_at {'<' if f.date_to_whole_day else '<='} :date_to")
        params["date_to"] = f.date_to
    if f.annotator is not None:
        clauses.append("f.annotator = :annotator")
        params["annotator"] = f.annotator
    if f.model_version is not None:
        clauses.append("g.model_version_name = :model_version")
        params["model_version"] = f.model_version
    if f.flags:
        marks = ", ".join(f":flag{i}" for i in range(len(f.flags)))
        clauses.append(f"f.id IN (SELECT feedback_id FROM feedback_flags WHERE flag IN ({marks}))")
        params.update({f"flag{i}": flag for i, flag in enumerate(f.flags)})
    if f.exclude_flagged:
        clauses.append("NOT EXISTS (SELECT 1 FROM feedback_flags x WHERE x.feedback_id = f.id)")
    if not f.include_held_out:
        clauses.append("p.split = 'train'")
    return "".join(f" AND {c}" for c in clauses), params


def count_sft(db: Database, filters: PairFilter = ALL) -> int:
    where, params = _where(filters)
    return int(db.execute("SELECT count(*)" + _FROM + where, params).fetchone()[0])


def iter_sft(db: Database, filters: PairFilter = ALL, *, batch_size: int = 2000) -> Iterator[SftRecord]:
    """Matching records oldest first (verdict time, then id), streamed from one cursor."""
    where, params = _where(filters)
    cursor = db.execute(_SELECT + _FROM + where + " ORDER BY f.created_at, f.id", params)
    while rows := cursor.fetchmany(batch_size):
        for fid, verdict, pid, question, answer, annotator, version, split, created, flags in rows:
            yield SftRecord(
                key=f"{verdict}-{fid}",
                source=verdict,
                feedback_id=fid,
                prompt_id=pid,
                question=question,
                answer=answer,
                annotator=annotator,
                model_version=version,
                split=split,
                safety_flags=split_flags(flags),
                created_at=created,
            )
