"""Reward-model scores of answers (schema v3, table ``answer_scores``).

A `score` job (training/score.py) scores answers with one reward model version; the app stores the scores
here, one per (answer, reward version), and the History page shows those of the chosen reward model.
Scoring is not training: held-out questions' answers are scored too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from sqlite_utils import Database

from medalign_desktop.store.db import require_row, transaction
from medalign_desktop.store.errors import StoreValidationError
from medalign_desktop.store.validation import check_id

UPSERT_SQL = """
    INSERT INTO answer_scores (generation_id, model_version_id, score, created_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (generation_id, model_version_id) DO UPDATE SET score = excluded.score,
        created_at = excluded.created_at
"""


def check_reward_version(db: Database, version_id: Any) -> int:
    """``version_id`` must be a registered model version of kind 'reward'."""
    check_id("version_id", version_id)
    kind = require_row(db, "model_versions", version_id, "version_id", "kind")["kind"]
    if kind != "reward":
        raise StoreValidationError(
            "version_id", f"model version {version_id} is a '{kind}' model, not a reward model"
        )
    return version_id


def _check_scores(db: Database, scores: Iterable[Any]) -> list[tuple[int, float]]:
    rows: list[tuple[int, float]] = []
    for index, item in enumerate(scores):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise StoreValidationError("scores", f"item {index} must be (generation_id, score), got {item!r}")
        generation_id, score = item
        check_id(f"scores[{index}].generation_id", generation_id)
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise StoreValidationError(f"scores[{index}].score", f"must be a finite number, got {score!r}")
        rows.append((generation_id, float(score)))
    ids = sorted({g for g, _ in rows})
    known = {
        r[0] for r in db.execute(f"SELECT id FROM generations WHERE id IN ({','.join('?' * len(ids))})", ids)
    }
    missing = [g for g in ids if g not in known]
    if missing:
        raise StoreValidationError("scores", f"no answers with ids {missing[:10]}")
    return rows


def add_scores(db: Database, clock: Callable[[], str], version_id: Any, scores: Iterable[Any]) -> int:
    """Store ``[(generation_id, score), ...]`` for a reward version in one transaction (replacing earlier
    scores of the same answers by the same version); all or nothing. Returns how many were stored."""
    with transaction(db):
        check_reward_version(db, version_id)
        rows = _check_scores(db, list(scores))
        now = clock()
        db.conn.executemany(UPSERT_SQL, [(g, version_id, s, now) for g, s in rows])
    return len(rows)


def unscored_generations(db: Database, version_id: Any) -> list[tuple[int, str, str]]:
    """``(generation_id, question text, answer text)`` of every answer the reward version has not scored,
    oldest first. The answer is the model's original text (an edit's text is the clinician's, not the model's)."""
    check_reward_version(db, version_id)
    sql = """
        SELECT g.id, p.text, g.text FROM generations g JOIN prompts p ON p.id = g.prompt_id
        WHERE NOT EXISTS (
            SELECT 1 FROM answer_scores s WHERE s.generation_id = g.id AND s.model_version_id = ?)
        ORDER BY g.id
    """
    return [(row[0], row[1], row[2]) for row in db.execute(sql, [version_id])]


def answer_scores(db: Database, version_id: Any) -> dict[int, float | None]:
    """generation id -> score of every answer the reward version has scored."""
    check_id("version_id", version_id)
    sql = "SELECT generation_id, score FROM answer_scores WHERE model_version_id = ?"
    return dict(db.execute(sql, [version_id]).fetchall())
