"""Evaluation of model versions on held-out questions, and blind side-by-side review (schema v4).

Evaluation answers are ordinary ``generations`` rows with the canonical settings of
:func:`evaluation_settings` (greedy, fixed ``max_new_tokens`` and system prompt, ``"evaluation": true``).
Because ``settings_json`` is stored canonically (sorted keys), "already answered with these settings" is an
exact string match: :func:`evaluation_cache` finds what an evaluation job need not generate again.

A blind review is a comparison (mode 'versions') between two versions' evaluation answers to one held-out
question, plus the safety flags put on each answer (``review_flags``). Being a comparison, it gives a
preference pair by the usual rules; the pair is on a held-out question, so it is exported only when asked
for and never reaches a training snapshot.

Holding out questions: :func:`hold_out_share` may move a question that already has feedback. That is
allowed on purpose (the clinician decides what is held out); the snapshot guards re-read every question's
split, so from then on it never reaches a training job, though versions trained before the move saw it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store import comparisons, generations
from medalign_desktop.store.db import insert, query_value, require_row, transaction
from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.rows import (
    CachedAnswer,
    EvaluationResult,
    Generation,
    Prompt,
    ReviewItem,
    Vote,
    split_flags,
)
from medalign_desktop.store.validation import check_flags, check_id, check_optional_number, check_text
from medalign_desktop.store.vocab import SAFETY_FLAGS

IS_EVALUATION = "json_extract({g}.settings_json, '$.evaluation') = 1"


def evaluation_settings(max_new_tokens: Any, system_prompt: Any) -> dict[str, Any]:
    """The settings recorded on every evaluation answer; equal settings mean a reusable (cached) answer."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise StoreValidationError("max_new_tokens", f"must be a whole number >= 1, got {max_new_tokens!r}")
    if system_prompt is None:
        system_prompt = ""
    check_text("system_prompt", system_prompt, required=False)
    return {
        "evaluation": True,
        "temperature": 0,
        "max_new_tokens": max_new_tokens,
        "system_prompt": system_prompt,
    }


def _names(field: str, values: Iterable[Any]) -> list[str]:
    if isinstance(values, str):
        raise StoreValidationError(field, f"must be a list of version names, not the string {values!r}")
    return [check_text(f"{field}[{i}]", name) for i, name in enumerate(values)]  # type: ignore[misc]


def evaluation_cache(db: Database, version_names: Iterable[Any], settings: Any) -> list[CachedAnswer]:
    """The newest answer of each (version, question) stored with exactly ``settings``, oldest first."""
    names = _names("version_names", version_names)
    if not names:
        return []
    marks = ",".join("?" * len(names))
    sql = f"""
        SELECT g.model_version_name, g.prompt_id, g.id, g.text, g.n_tokens, g.finish_reason
        FROM generations g JOIN (
            SELECT max(id) AS id FROM generations WHERE settings_json = ? AND model_version_name IN ({marks})
            GROUP BY model_version_name, prompt_id) k ON k.id = g.id
        ORDER BY g.id
    """
    rows = db.execute(sql, [generations.check_settings(settings), *names]).fetchall()
    return [CachedAnswer(*row) for row in rows]


# -- storing an evaluation job's results -------------------------------------------------------------------


def _check_results(results: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """(canonical answer settings, the settings as reported, metrics per version) of a results.json."""
    if not isinstance(results, Mapping):
        raise StoreValidationError(
            "results", f"must be a mapping (results.json), got {type(results).__name__}"
        )
    settings = results.get("settings")
    if not isinstance(settings, Mapping):
        raise StoreValidationError("results.settings", "is missing or not a mapping")
    canonical = evaluation_settings(settings.get("max_new_tokens"), settings.get("system_prompt", ""))
    versions = results.get("versions")
    if not isinstance(versions, Mapping) or not versions:
        raise StoreValidationError("results.versions", "must map each evaluated version to its metrics")
    for name, metrics in versions.items():
        check_text("results.versions", name)
        if not isinstance(metrics, Mapping):
            raise StoreValidationError(f"results.versions[{name!r}]", "must be a mapping of metrics")
    return canonical, dict(settings), {name: dict(metrics) for name, metrics in versions.items()}


def _check_answer(index: int, answer: Any, versions: Mapping[str, Any]) -> dict[str, Any] | None:
    """The generation fields of one answers.jsonl record, or None for a cached (already stored) answer."""
    where = f"answers[{index}]"
    if not isinstance(answer, Mapping):
        raise StoreValidationError(where, f"must be a mapping, got {type(answer).__name__}")
    version = answer.get("version")
    if version not in versions:
        raise StoreValidationError(f"{where}.version", f"{version!r} is not one of the evaluated versions")
    prompt_id = check_id(f"{where}.prompt_id", answer.get("prompt_id"))
    cached = answer.get("cached", False)
    if not isinstance(cached, bool):
        raise StoreValidationError(f"{where}.cached", f"must be true or false, got {cached!r}")
    if cached:
        return None
    text = answer.get("text")
    if not isinstance(text, str):
        raise StoreValidationError(f"{where}.text", f"must be text, got {type(text).__name__}")
    return {
        "version": version,
        "prompt_id": prompt_id,
        "text": check_text(f"{where}.text", text, required=False),
        "n_tokens": check_optional_number(f"{where}.n_tokens", answer.get("n_tokens"), integer=True),
        "finish_reason": check_text(f"{where}.finish_reason", answer.get("finish_reason"), required=False),
    }


def _json(field: str, value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreValidationError(field, f"must be JSON-serialisable without NaN: {exc}") from None


def store_evaluation(
    db: Database, clock: Callable[[], str], job_id: Any, results: Any, answers: Iterable[Any]
) -> None:
    """One transaction: a generation per newly generated answer, one ``evaluation_results`` row per version.

    An answer already stored for the same (version, question, settings) is not stored twice.
    """
    if job_id is not None:
        check_id("job_id", job_id)
    canonical, reported, versions = _check_results(results)
    rows = [row for i, a in enumerate(answers) if (row := _check_answer(i, a, versions)) is not None]
    metrics_json = {name: _json(f"results.versions[{name!r}]", m) for name, m in versions.items()}
    settings_json = _json("results.settings", reported)
    with transaction(db):
        if job_id is not None:
            require_row(db, "jobs", job_id, "job_id", "id")
        stored = {(c.version, c.prompt_id) for c in evaluation_cache(db, list(versions), canonical)}
        for row in rows:
            if (row["version"], row["prompt_id"]) in stored:
                continue
            generations.add_generation(
                db, clock, row["prompt_id"], row["text"], settings=canonical, model_version=row["version"],
                n_tokens=row["n_tokens"], finish_reason=row["finish_reason"],
            )  # fmt: skip
            stored.add((row["version"], row["prompt_id"]))
        now = clock()
        for name in versions:
            insert(db, "evaluation_results", {
                "job_id": job_id, "version_name": name, "metrics_json": metrics_json[name],
                "settings_json": settings_json, "created_at": now,
            })  # fmt: skip


def evaluation_results(db: Database, *, latest_only: bool = True) -> list[EvaluationResult]:
    """Stored results oldest first; ``latest_only``: the newest row of each version only."""
    sql = """
        SELECT * FROM evaluation_results r
        WHERE NOT :latest OR r.id = (SELECT max(id) FROM evaluation_results x WHERE x.version_name = r.version_name)
        ORDER BY r.id
    """
    return [
        EvaluationResult(
            version=row["version_name"],
            job_id=row["job_id"],
            created_at=row["created_at"],
            metrics=json.loads(row["metrics_json"]),
            settings=json.loads(row["settings_json"]),
        )
        for row in db.query(sql, {"latest": 1 if latest_only else 0})
    ]


# -- the held-out split ------------------------------------------------------------------------------------


def held_out_count(db: Database) -> int:
    return int(query_value(db, "SELECT count(*) FROM prompts WHERE split = 'held_out'"))


def held_out_prompts(db: Database) -> list[Prompt]:
    """Every held-out question, oldest first (what an evaluation job answers)."""
    return [
        Prompt.from_row(r) for r in db.query("SELECT * FROM prompts WHERE split = 'held_out' ORDER BY id")
    ]


def hold_out_share(db: Database, import_batch_id: Any, fraction: Any, seed: Any) -> int:
    """Hold out ``round(fraction * n)`` of the batch's n questions, drawn with ``random.Random(seed)``.

    The same batch, fraction and seed always draw the same questions (a second call moves nothing).
    Returns how many questions moved from train to held-out.
    """
    check_id("import_batch_id", import_batch_id)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise StoreValidationError("fraction", f"must be a number above 0 and at most 1, got {fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StoreValidationError("seed", f"must be a whole number, got {seed!r}")
    with transaction(db):
        kind = require_row(db, "import_batches", import_batch_id, "import_batch_id", "kind")["kind"]
        if kind != "questions":
            raise StoreValidationError(
                "import_batch_id", f"import batch {import_batch_id} holds preference pairs, not questions"
            )
        sql = "SELECT id FROM prompts WHERE import_batch_id = ? ORDER BY id"
        ids = [row[0] for row in db.execute(sql, [import_batch_id])]
        chosen = random.Random(seed).sample(ids, math.floor(fraction * len(ids) + 0.5))
        update = "UPDATE prompts SET split = 'held_out' WHERE id = ? AND split = 'train'"
        return sum(db.execute(update, [pid]).rowcount for pid in sorted(chosen))


# -- blind review ------------------------------------------------------------------------------------------

_REVIEW_SQL = f"""
    WITH answers AS (
        SELECT g.prompt_id, g.model_version_name AS version, max(g.id) AS gid
        FROM generations g JOIN prompts p ON p.id = g.prompt_id
        WHERE p.split = 'held_out' AND g.model_version_name IN (:a, :b) AND {IS_EVALUATION.format(g="g")}
        GROUP BY g.prompt_id, g.model_version_name)
    SELECT a.prompt_id, a.gid, b.gid FROM answers a JOIN answers b ON b.prompt_id = a.prompt_id
    WHERE a.version = :a AND b.version = :b AND NOT EXISTS (
        SELECT 1 FROM comparisons c WHERE c.withdrawn = 0 AND c.annotator = :annotator
          AND ((c.first_generation_id = a.gid AND c.second_generation_id = b.gid)
            OR (c.first_generation_id = b.gid AND c.second_generation_id = a.gid)))
    ORDER BY a.prompt_id
"""


def _generation(db: Database, generation_id: int) -> Generation:
    return generations.get_generation(db, generation_id)


def next_review_item(
    db: Database, version_a: Any, version_b: Any, *, annotator: Any, rng_seed: Any
) -> ReviewItem | None:
    """A held-out question both versions answered in an evaluation whose two answers this annotator has not
    compared yet (live comparisons), drawn at random; the two answers in random order. None: all done."""
    version_a = check_text("version_a", version_a)
    version_b = check_text("version_b", version_b)
    if version_a == version_b:
        raise StoreValidationError("version_b", "must differ from version_a")
    annotator = check_text("annotator", annotator)
    params = {"a": version_a, "b": version_b, "annotator": annotator}
    left = db.execute(_REVIEW_SQL, params).fetchall()
    if not left:
        return None
    rng = random.Random(rng_seed)
    prompt_id, a_id, b_id = rng.choice(left)
    swapped = rng.random() < 0.5
    first, second = (b_id, a_id) if swapped else (a_id, b_id)
    prompt = Prompt.from_row(next(iter(db.query("SELECT * FROM prompts WHERE id = ?", [prompt_id]))))
    return ReviewItem(prompt, _generation(db, first), _generation(db, second), swapped, len(left))


def _check_answer_flags(answer_flags: Any, first_id: int, second_id: int) -> dict[int, tuple[str, ...]]:
    if answer_flags is None:
        return {}
    if not isinstance(answer_flags, Mapping):
        raise StoreValidationError("answer_flags", f"must map answer ids to flags, got {answer_flags!r}")
    checked: dict[int, tuple[str, ...]] = {}
    for generation_id, flags in answer_flags.items():
        if generation_id not in (first_id, second_id):
            raise StoreValidationError(
                "answer_flags", f"answer {generation_id!r} is not one of the two answers reviewed"
            )
        try:
            checked[generation_id] = check_flags(flags, SAFETY_FLAGS)
        except StoreValidationError as exc:
            raise StoreValidationError(f"answer_flags[{generation_id}]", exc.message) from None
    return checked


def record_review(
    db: Database,
    clock: Callable[[], str],
    first_generation_id: Any,
    second_generation_id: Any,
    choice: Any,
    *,
    annotator: Any,
    swapped: Any,
    answer_flags: Any = None,
    notes: Any = None,
) -> int:
    """A comparison (mode 'versions') with every flag, plus each answer's own flags; one transaction."""
    check_id("first_generation_id", first_generation_id)
    check_id("second_generation_id", second_generation_id)
    flags = _check_answer_flags(answer_flags, first_generation_id, second_generation_id)
    every_flag = sorted({flag for answer in flags.values() for flag in answer})
    with transaction(db):
        comparison_id = comparisons.record_comparison(
            db, clock, first_generation_id, second_generation_id, choice, annotator=annotator,
            swapped=swapped, mode="versions", safety_flags=every_flag, notes=notes,
        )  # fmt: skip
        rows = [(comparison_id, g, flag) for g, answer in flags.items() for flag in answer]
        db.conn.executemany(
            "INSERT INTO review_flags (comparison_id, generation_id, flag) VALUES (?, ?, ?)", rows
        )
    return comparison_id


def _flags_sql(generation: str) -> str:
    return (
        "(SELECT group_concat(flag, ',') FROM review_flags r "
        f"WHERE r.comparison_id = c.id AND r.generation_id = {generation})"
    )


_VOTES_SQL = f"""
    SELECT f.model_version_name, s.model_version_name, c.choice, {_flags_sql("c.first_generation_id")},
           {_flags_sql("c.second_generation_id")}, c.id, c.prompt_id, c.annotator,
           c.first_generation_id, c.second_generation_id
    FROM comparisons c
    JOIN generations f ON f.id = c.first_generation_id
    JOIN generations s ON s.id = c.second_generation_id
    JOIN prompts p ON p.id = c.prompt_id
    WHERE c.withdrawn = 0 AND c.mode = 'versions' AND p.split = 'held_out'
      AND {IS_EVALUATION.format(g="f")} AND {IS_EVALUATION.format(g="s")}
      AND f.model_version_name IS NOT NULL AND s.model_version_name IS NOT NULL
    ORDER BY c.id
"""


def review_votes(db: Database) -> list[Vote]:
    """Every live blind review between evaluation answers on held-out questions, oldest first."""
    return [
        Vote(fv, sv, choice, split_flags(ff), split_flags(sf), cid, pid, who, gf, gs)
        for fv, sv, choice, ff, sf, cid, pid, who, gf, gs in db.execute(_VOTES_SQL)
    ]
