"""Read side for the History page and the status bar: filtered verdict lists, counts, details.

Speed: newest-first paging walks ``feedback`` by primary key and stops after ``limit`` rows; filters use
the indexes of schema v1; text search uses the trigram FTS5 indexes (substring match, case-insensitive),
falling back to LIKE for searches shorter than three characters, which trigrams cannot index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.db import query_one, query_value
from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.rows import FeedbackDetail, HistoryRow, record_from_row, split_flags
from medalign_desktop.store.training_data import LAST_RETRAIN_SQL
from medalign_desktop.store.validation import check_choice, check_id
from medalign_desktop.store.verdicts import audit_trail
from medalign_desktop.store.vocab import SAFETY_FLAGS, VERDICTS

EXCERPT_CHARS = 160
_FETCH_CHARS = 400  # read a little more than shown so whitespace collapsing still fills the excerpt
_FTS_MIN_CHARS = 3


@dataclass
class _Where:
    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    needs_generation: bool = False
    needs_prompt: bool = False

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.clauses)) if self.clauses else ""

    def joins(self) -> str:
        sql = ""
        if self.needs_generation or self.needs_prompt:
            sql += " JOIN generations g ON g.id = f.generation_id"
        if self.needs_prompt:
            sql += " JOIN prompts p ON p.id = g.prompt_id"
        return sql


def _timestamp(field_name: str, value: Any, *, end_of_day: bool) -> tuple[str, bool]:
    """Turn a date / datetime / ISO string into our timestamp format; report whether it was a whole day."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise StoreValidationError(
                field_name, f"{value!r} is not an ISO-8601 date or date-time"
            ) from None
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), False
    if isinstance(value, date):
        day = value + timedelta(days=1) if end_of_day else value
        return f"{day.isoformat()}T00:00:00.000000Z", True
    raise StoreValidationError(field_name, f"must be a date, a datetime or an ISO string, got {value!r}")


def _fts_phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _add_search(where: _Where, search: str) -> None:
    """Substring search over the question, the original answer and the edited answer.

    With FTS, the matching verdict ids are collected from the (small) index hits first, so the main query
    visits only those rows instead of joining every verdict to its texts.
    """
    if len(search) >= _FTS_MIN_CHARS:
        where.params["fts"] = _fts_phrase(search)
        where.clauses.append(
            """f.id IN (
                SELECT fq.id FROM feedback fq JOIN generations gq ON gq.id = fq.generation_id
                WHERE gq.prompt_id IN (SELECT rowid FROM prompts_fts WHERE prompts_fts MATCH :fts)
                UNION
                SELECT fa.id FROM feedback fa
                WHERE fa.generation_id IN (SELECT rowid FROM generations_fts WHERE generations_fts MATCH :fts)
                UNION
                SELECT rowid FROM feedback_fts WHERE feedback_fts MATCH :fts)"""
        )
        return
    where.needs_generation = where.needs_prompt = True
    where.params["like"] = _like_pattern(search)
    where.clauses.append(
        "(p.text LIKE :like ESCAPE '\\' OR g.text LIKE :like ESCAPE '\\'"
        " OR f.edited_text LIKE :like ESCAPE '\\')"
    )


def build_filters(
    *,
    search: str | None = None,
    verdict: str | None = None,
    annotator: str | None = None,
    model_version: str | None = None,
    flag: str | None = None,
    date_from: Any = None,
    date_to: Any = None,
    include_withdrawn: bool = False,
) -> _Where:
    """The WHERE clause shared by :func:`history` and :func:`history_count` (same filters, same meaning)."""
    where = _Where()
    if not include_withdrawn:
        where.clauses.append("f.withdrawn = 0")
    if verdict is not None:
        where.params["verdict"] = check_choice("verdict", verdict, VERDICTS)
        where.clauses.append("f.verdict = :verdict")
    if annotator is not None:
        where.params["annotator"] = annotator
        where.clauses.append("f.annotator = :annotator")
    if model_version is not None:
        where.needs_generation = True
        where.params["model_version"] = model_version
        where.clauses.append("g.model_version_name = :model_version")
    if flag is not None:
        where.params["flag"] = check_choice("flag", flag, SAFETY_FLAGS)
        where.clauses.append("f.id IN (SELECT feedback_id FROM feedback_flags WHERE flag = :flag)")
    if date_from is not None:
        where.params["date_from"], _ = _timestamp("date_from", date_from, end_of_day=False)
        where.clauses.append("f.created_at >= :date_from")
    if date_to is not None:
        where.params["date_to"], whole_day = _timestamp("date_to", date_to, end_of_day=True)
        where.clauses.append("f.created_at < :date_to" if whole_day else "f.created_at <= :date_to")
    if search is not None and search.strip():
        _add_search(where, search.strip())
    return where


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """One line for a table cell: whitespace collapsed, cut at ``limit`` characters with an ellipsis."""
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def page_sql(where: _Where, with_score: bool = False) -> str:
    """The History page query for ``where``; a function of its own so tests can check its plan.

    ``with_score``: also read each answer's score by the reward version in the ``:score_version_id``
    parameter (one primary-key lookup per listed row).

    ``+f.withdrawn`` keeps SQLite from driving the query through an index on ``withdrawn`` and then
    sorting every live verdict: newest-first walks the primary key (or an ``(x, id)`` index) and stops
    after ``limit`` rows.
    """
    clauses = [c.replace("f.withdrawn = 0", "+f.withdrawn = 0") for c in where.clauses]
    condition = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    score = (
        "(SELECT s.score FROM answer_scores s"
        " WHERE s.generation_id = f.generation_id AND s.model_version_id = :score_version_id)"
        if with_score
        else "NULL"
    )
    return f"""
        SELECT f.id, f.created_at, f.annotator, f.verdict, f.rating, f.withdrawn, f.reject_reason,
               f.generation_id, g.prompt_id, g.model_version_name,
               substr(p.text, 1, {_FETCH_CHARS}) AS prompt_text,
               substr(g.text, 1, {_FETCH_CHARS}) AS answer_text,
               substr(f.edited_text, 1, {_FETCH_CHARS}) AS edited_text,
               (SELECT group_concat(flag, ',') FROM feedback_flags x WHERE x.feedback_id = f.id) AS flags,
               {score} AS reward_score
        FROM feedback f
        JOIN generations g ON g.id = f.generation_id
        JOIN prompts p ON p.id = g.prompt_id
        {condition}
        ORDER BY f.id DESC
        LIMIT :limit OFFSET :offset
    """


def history(
    db: Database, *, limit: int = 200, offset: int = 0, score_version_id: int | None = None, **filters: Any
) -> list[HistoryRow]:
    """Verdicts newest first, one page at a time; with each answer's score by ``score_version_id`` if given."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise StoreValidationError("limit", f"must be a whole number >= 0, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise StoreValidationError("offset", f"must be a whole number >= 0, got {offset!r}")
    where = build_filters(**filters)
    params = {**where.params, "limit": limit, "offset": offset}
    if score_version_id is not None:
        params["score_version_id"] = check_id("score_version_id", score_version_id)
    rows = db.query(page_sql(where, with_score=score_version_id is not None), params)
    return [_history_row(row) for row in rows]


def _history_row(row: dict[str, Any]) -> HistoryRow:
    """A row of :func:`page_sql`; the fields not named here are the columns of their names."""
    return record_from_row(
        HistoryRow,
        row,
        feedback_id=row["id"],
        prompt_excerpt=excerpt(row["prompt_text"]),
        answer_excerpt=excerpt(row["answer_text"]),
        model_version=row["model_version_name"],
        flags=split_flags(row["flags"]),
        withdrawn=bool(row["withdrawn"]),
        edited_excerpt=excerpt(row["edited_text"]) if row["edited_text"] is not None else None,
    )


def history_count(db: Database, **filters: Any) -> int:
    where = build_filters(**filters)
    return int(
        query_value(db, f"SELECT count(*) FROM feedback f {where.joins()} {where.sql()}", where.params)
    )


def feedback_detail(db: Database, feedback_id: Any) -> FeedbackDetail:
    check_id("feedback_id", feedback_id)
    row = query_one(
        db,
        """
        SELECT f.*, g.prompt_id, g.text AS original_text, g.model_version_name,
               p.text AS prompt_text, p.reference_answer
        FROM feedback f JOIN generations g ON g.id = f.generation_id JOIN prompts p ON p.id = g.prompt_id
        WHERE f.id = ?
        """,
        [feedback_id],
    )
    if row is None:
        raise StoreValidationError("feedback_id", f"no verdict with id {feedback_id}")
    flags = db.execute("SELECT flag FROM feedback_flags WHERE feedback_id = ? ORDER BY flag", [feedback_id])
    return record_from_row(
        FeedbackDetail,
        row,
        feedback_id=row["id"],
        model_version=row["model_version_name"],
        safety_flags=tuple(r[0] for r in flags),
        withdrawn=bool(row["withdrawn"]),
        audit=audit_trail(db, feedback_id),
    )


def annotators(db: Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT DISTINCT annotator FROM feedback ORDER BY annotator")]


def model_version_names(db: Database) -> list[str]:
    """Registered versions plus any name recorded on a generation (e.g. 'base' before registration)."""
    sql = """
        SELECT name FROM model_versions
        UNION SELECT DISTINCT model_version_name FROM generations WHERE model_version_name IS NOT NULL
        ORDER BY 1
    """
    return [r[0] for r in db.execute(sql)]


def samples_since_last_retrain(db: Database) -> int:
    """Live accept + edit verdicts created after the last succeeded 'hitl' job finished (all if none)."""
    sql = f"""
        SELECT count(*) FROM feedback
        WHERE withdrawn = 0 AND verdict IN ('accept', 'edit') AND created_at > ({LAST_RETRAIN_SQL})
    """
    return int(query_value(db, sql))


def stats(db: Database) -> dict[str, int]:
    """Counts for the status bar; verdict counts are live verdicts only."""
    out = {
        "prompts": query_value(db, "SELECT count(*) FROM prompts"),
        "prompts_held_out": query_value(db, "SELECT count(*) FROM prompts WHERE split = 'held_out'"),
        "generations": query_value(db, "SELECT count(*) FROM generations"),
        "withdrawn": query_value(db, "SELECT count(*) FROM feedback WHERE withdrawn = 1"),
    }
    by_verdict = dict(
        db.execute("SELECT verdict, count(*) FROM feedback WHERE withdrawn = 0 GROUP BY verdict")
    )
    for verdict in VERDICTS:
        out[verdict] = int(by_verdict.get(verdict, 0))
    out["verdicts"] = sum(out[v] for v in VERDICTS)
    out["samples_since_last_retrain"] = samples_since_last_retrain(db)
    return {key: int(value) for key, value in out.items()}
