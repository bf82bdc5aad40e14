"""Preference pairs (chosen > rejected), derived from the live rows every time they are read.

Nothing here writes: a pair exists exactly as long as the verdict(s) or comparison it comes from are live,
so withdrawing or correcting a verdict can never leave a stale copy behind. The rules:

- ``edit``: a live edit verdict gives (edited text > the generation's text).
- ``comparison``: a live comparison won by one answer gives (winner > loser), the winner's edit standing for
  it when there is one; an edited winner also gives (edit > original winner). Ties and "both bad": nothing.
- ``reject``: a live reject of answer R and a live accept / edit of ANOTHER answer to the same question give
  (that answer, or its edit > R), attributed to the reject's annotator.
- ``imported``: pairs imported from a preference file (:mod:`imports.preferences`).

Provenance: the model versions are those recorded on the generations (an edit carries the version of the
answer it corrects); ``created_at`` is the verdict's / comparison's, or the later verdict's for a reject pair.

Speed: one SQL query per source, each ordered by (created_at, key) walking an index and read with
``fetchmany``; the sources are merged in Python. No per-pair queries: 100,000 edit pairs take ~1.2 s of CPU
on the 2-core development machine (about 0.85 s in SQLite, the rest building the records).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.history import _timestamp  # the History page's date rules, shared on purpose
from medalign_desktop.store.rows import PAIR_SOURCES, PairFilter, PreferencePair
from medalign_desktop.store.validation import check_choice, check_flags, check_id, check_text
from medalign_desktop.store.vocab import SAFETY_FLAGS

# Every source selects these columns, in this order.
_COLUMNS = (
    "key", "prompt_id", "prompt", "chosen", "rejected", "annotator", "feedback_a", "feedback_b",
    "comparison_id", "chosen_version", "rejected_version", "split", "flags_a", "flags_b",
    "import_batch_id", "created_at",
)  # fmt: skip


def _flags_of(table: str, column: str, owner: str) -> str:
    return f"(SELECT group_concat(flag, ',') FROM {table} x WHERE x.{column} = {owner})"


@dataclass(frozen=True)
class _Source:
    """One pair rule as SQL, plus the expressions the filters apply to (None: never matches that filter)."""

    name: str
    select: tuple[str, ...]  # one expression per name in _COLUMNS
    body: str  # FROM ... WHERE <the rule>
    created: str
    annotator: str | None
    versions: tuple[str, ...]
    split: str | None
    flag_rows: str | None  # "FROM <flags> x WHERE <x belongs to the pair>"


# fmt: off
_EDIT = _Source(
    name="edit",
    select=(
        "'edit-' || f.id", "g.prompt_id", "p.text", "f.edited_text", "g.text", "f.annotator", "f.id", "NULL",
        "NULL", "g.model_version_name", "g.model_version_name", "p.split",
        _flags_of("feedback_flags", "feedback_id", "f.id"), "NULL", "NULL", "f.created_at",
    ),
    body="""FROM feedback f JOIN generations g ON g.id = f.generation_id JOIN prompts p ON p.id = g.prompt_id
        WHERE f.withdrawn = 0 AND f.verdict = 'edit'""",
    created="f.created_at",
    annotator="f.annotator",
    versions=("g.model_version_name",),
    split="p.split",
    flag_rows="FROM feedback_flags x WHERE x.feedback_id = f.id",
)

# v.e = 0: winner (or its edit) > loser; v.e = 1 (edited winners only): the edit > the original winner.
_COMPARISON = _Source(
    name="comparison",
    select=(
        "'cmp-' || c.id || CASE v.e WHEN 1 THEN '-edit' ELSE '' END", "c.prompt_id", "p.text",
        "coalesce(c.edited_text, w.text)", "CASE v.e WHEN 0 THEN l.text ELSE w.text END", "c.annotator",
        "NULL", "NULL", "c.id", "w.model_version_name",
        "CASE v.e WHEN 0 THEN l.model_version_name ELSE w.model_version_name END", "p.split",
        _flags_of("comparison_flags", "comparison_id", "c.id"), "NULL", "NULL", "c.created_at",
    ),
    body="""FROM comparisons c
        CROSS JOIN (SELECT 0 AS e UNION ALL SELECT 1) v ON v.e = 0 OR c.edited_text IS NOT NULL
        JOIN generations w
            ON w.id = CASE c.choice WHEN 'first' THEN c.first_generation_id ELSE c.second_generation_id END
        JOIN generations l
            ON l.id = CASE c.choice WHEN 'first' THEN c.second_generation_id ELSE c.first_generation_id END
        JOIN prompts p ON p.id = c.prompt_id
        WHERE c.withdrawn = 0 AND c.choice IN ('first', 'second')
          AND coalesce(c.edited_text, w.text) != CASE v.e WHEN 0 THEN l.text ELSE w.text END""",
    created="c.created_at",
    annotator="c.annotator",
    versions=("w.model_version_name", "l.model_version_name"),
    split="p.split",
    flag_rows="FROM comparison_flags x WHERE x.comparison_id = c.id",
)

_REJECT = _Source(
    name="reject",
    select=(
        "'rej-' || r.id || '-' || b.id", "rg.prompt_id", "p.text", "coalesce(b.edited_text, bg.text)",
        "rg.text", "r.annotator", "r.id", "b.id", "NULL", "bg.model_version_name", "rg.model_version_name",
        "p.split", _flags_of("feedback_flags", "feedback_id", "r.id"),
        _flags_of("feedback_flags", "feedback_id", "b.id"), "NULL", "max(r.created_at, b.created_at)",
    ),
    # CROSS JOIN fixes the loop order (a reject, its question's other answers, their verdicts): left to
    # itself the planner may pair every reject with every live accept and filter afterwards (quadratic).
    body="""FROM feedback r
        CROSS JOIN generations rg ON rg.id = r.generation_id
        CROSS JOIN generations bg ON bg.prompt_id = rg.prompt_id AND bg.id != rg.id
        CROSS JOIN feedback b ON b.generation_id = bg.id
        JOIN prompts p ON p.id = rg.prompt_id
        WHERE r.withdrawn = 0 AND r.verdict = 'reject' AND b.withdrawn = 0 AND b.verdict IN ('accept', 'edit')
          AND coalesce(b.edited_text, bg.text) != rg.text""",
    created="max(r.created_at, b.created_at)",
    annotator="r.annotator",
    versions=("bg.model_version_name", "rg.model_version_name"),
    split="p.split",
    flag_rows="FROM feedback_flags x WHERE x.feedback_id IN (r.id, b.id)",
)

_IMPORTED = _Source(
    name="imported",
    select=(
        "'imp-' || ip.id", "NULL", "ip.prompt", "ip.chosen", "ip.rejected", "NULL", "NULL", "NULL", "NULL",
        "NULL", "NULL", "'train'", "NULL", "NULL", "ip.import_batch_id", "ip.created_at",
    ),
    body="FROM imported_pairs ip WHERE 1",
    created="ip.created_at",
    annotator=None,
    versions=(),
    split=None,
    flag_rows=None,
)
# fmt: on

ALL_PAIRS = PairFilter()  # the default filter: every train-split pair of every source

SOURCES: dict[str, _Source] = {s.name: s for s in (_EDIT, _COMPARISON, _REJECT, _IMPORTED)}


@dataclass(frozen=True)
class _Checked:
    """A PairFilter validated and turned into SQL values."""

    sources: tuple[str, ...]
    date_from: str | None
    date_to: str | None
    date_to_whole_day: bool
    annotator: str | None
    model_version: str | None
    flags: tuple[str, ...]
    exclude_flagged: bool
    include_held_out: bool
    import_batch_ids: tuple[int, ...] | None


def _as_tuple(field: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise StoreValidationError(field, f"must be a list, got {value!r}")
    return tuple(value)


def check_filter(filters: PairFilter) -> _Checked:
    """Validate every field of ``filters``; StoreValidationError names the one at fault."""
    if not isinstance(filters, PairFilter):
        raise StoreValidationError("filters", f"must be a PairFilter, got {type(filters).__name__}")
    sources = tuple(check_choice("sources", s, PAIR_SOURCES) for s in _as_tuple("sources", filters.sources))
    date_from = date_to = None
    whole_day = False
    if filters.date_from is not None:
        date_from, _ = _timestamp("date_from", filters.date_from, end_of_day=False)
    if filters.date_to is not None:
        date_to, whole_day = _timestamp("date_to", filters.date_to, end_of_day=True)
    batch_ids = filters.import_batch_ids
    if batch_ids is not None:
        batch_ids = tuple(check_id("import_batch_ids", i) for i in _as_tuple("import_batch_ids", batch_ids))
    return _Checked(
        sources=sources,
        date_from=date_from,
        date_to=date_to,
        date_to_whole_day=whole_day,
        annotator=check_text("annotator", filters.annotator, required=False),
        model_version=check_text("model_version", filters.model_version, required=False),
        flags=check_flags(filters.flags, SAFETY_FLAGS),
        exclude_flagged=bool(filters.exclude_flagged),
        include_held_out=bool(filters.include_held_out),
        import_batch_ids=batch_ids,
    )


def _where(source: _Source, f: _Checked) -> tuple[str, dict[str, Any]] | None:
    """Extra WHERE conditions for one source; None when the filters rule the whole source out."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if f.date_from is not None:
        clauses.append(f"{source.created} >= :date_from")
        params["date_from"] = f.date_from
    if f.date_to is not None:
        clauses.append(f"{source.created} {'<' if f.date_to_whole_day else '<='} :date_to")
        params["date_to"] = f.date_to
    if f.annotator is not None:
        if source.annotator is None:
            return None
        clauses.append(f"{source.annotator} = :annotator")
        params["annotator"] = f.annotator
    if f.model_version is not None:
        if not source.versions:
            return None
        clauses.append("(" + " OR ".join(f"{v} = :model_version" for v in source.versions) + ")")
        params["model_version"] = f.model_version
    if f.flags:
        if source.flag_rows is None:
            return None
        marks = ", ".join(f":flag{i}" for i in range(len(f.flags)))
        clauses.append(f"EXISTS (SELECT 1 {source.flag_rows} AND x.flag IN ({marks}))")
        params.update({f"flag{i}": flag for i, flag in enumerate(f.flags)})
    if f.exclude_flagged and source.flag_rows is not None:
        clauses.append(f"NOT EXISTS (SELECT 1 {source.flag_rows})")
    if not f.include_held_out and source.split is not None:
        clauses.append(f"{source.split} = 'train'")
    if source.name == "imported" and f.import_batch_ids is not None:
        if not f.import_batch_ids:
            return None
        clauses.append(f"ip.import_batch_id IN ({', '.join(str(i) for i in f.import_batch_ids)})")
    return "".join(f" AND {c}" for c in clauses), params


def _sql(source: _Source, checked: _Checked, what: str) -> tuple[str, dict[str, Any]] | None:
    where = _where(source, checked)
    if where is None:
        return None
    extra, params = where
    if what == "count":
        return f"SELECT count(*) {source.body}{extra}", params
    names = ", ".join(f"{expr} AS {name}" for expr, name in zip(source.select, _COLUMNS, strict=True))
    return f"SELECT {names} {source.body}{extra} ORDER BY created_at, key", params


def pairs_sql(source_name: str, filters: PairFilter = ALL_PAIRS) -> tuple[str, dict[str, Any]] | None:
    """The one query reading a source's pairs in order (None: the filters rule the source out).

    A function of its own so tests can check its query plan.
    """
    return _sql(SOURCES[source_name], check_filter(filters), "rows")


def _flag_tuple(flags_a: str | None, flags_b: str | None) -> tuple[str, ...]:
    """The sorted union of one or two ``group_concat`` flag lists."""
    if flags_a is None and flags_b is None:
        return ()
    flags = set(flags_a.split(",")) if flags_a else set()
    if flags_b:
        flags.update(flags_b.split(","))
    return tuple(sorted(flags))


def _pair(source: str, row: tuple[Any, ...]) -> PreferencePair:
    """One row of a source query as a record; positional and branch-light, it runs once per pair."""
    (key, prompt_id, prompt, chosen, rejected, annotator, feedback_a, feedback_b, comparison_id,
     chosen_version, rejected_version, split, flags_a, flags_b, import_batch_id, created_at) = row  # fmt: skip
    if feedback_a is None:
        feedback_ids: tuple[int, ...] = ()
    else:
        feedback_ids = (feedback_a,) if feedback_b is None else (feedback_a, feedback_b)
    return PreferencePair(
        key, source, prompt_id, prompt, chosen, rejected, annotator, feedback_ids, comparison_id,
        chosen_version, rejected_version, split, _flag_tuple(flags_a, flags_b), import_batch_id, created_at,
    )  # fmt: skip


def _stream(
    db: Database, source: _Source, sql: str, params: dict[str, Any], batch_size: int
) -> Iterator[PreferencePair]:
    cursor = db.conn.execute(sql, params)
    try:
        while rows := cursor.fetchmany(batch_size):
            for row in rows:
                yield _pair(source.name, row)
    finally:
        cursor.close()


def iter_pairs(
    db: Database, filters: PairFilter = ALL_PAIRS, *, batch_size: int = 2000
) -> Iterator[PreferencePair]:
    """Every pair matching ``filters``, ordered by (created_at, key), streamed.

    Filters are checked before the first pair is produced (a bad filter raises at the call, not mid-way).
    Hold the store's lock while iterating (``with store.exclusive() as db``): the cursors are live.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise StoreValidationError("batch_size", f"must be a whole number >= 1, got {batch_size!r}")
    checked = check_filter(filters)
    queries = []
    for name in PAIR_SOURCES:
        if name in checked.sources and (query := _sql(SOURCES[name], checked, "rows")) is not None:
            queries.append((SOURCES[name], *query))
    return _merged(db, queries, batch_size)


def _merged(
    db: Database, queries: list[tuple[_Source, str, dict[str, Any]]], batch_size: int
) -> Iterator[PreferencePair]:
    streams = [_stream(db, source, sql, params, batch_size) for source, sql, params in queries]
    if len(streams) == 1:
        yield from streams[0]
    else:
        yield from heapq.merge(*streams, key=lambda pair: (pair.created_at, pair.key))


def count_pairs(db: Database, filters: PairFilter = ALL_PAIRS) -> int:
    """How many pairs :func:`iter_pairs` gives for ``filters`` (one count query per source)."""
    checked = check_filter(filters)
    total = 0
    for name in PAIR_SOURCES:
        if name in checked.sources and (query := _sql(SOURCES[name], checked, "count")) is not None:
            total += int(db.conn.execute(*query).fetchone()[0])
    return total
