"""Score jobs: the app's side of `python -m training score` (training/score.py).

A score job's result is not a model version but a file of scores: the snapshot writes the answers the
chosen reward version has not scored yet (``data/answers.jsonl``, with the system prompt as training
snapshots have it), and when the job succeeds :func:`store_scores` reads ``scores.jsonl`` back into the
store, against the reward version recorded in the job's config. Store calls only: runs on the store thread.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from medalign_desktop.jobs.job_types import JobRequest
from medalign_desktop.store import Store, StoreValidationError
from training.job_folder import SCORES_FILE  # what training/score.py writes (it reads SCORE_INPUT_FILE)


class ScoringError(Exception):
    """A score job's request or result cannot be used; the message says which file / line / version."""


def answer_record(generation_id: int, question: str, answer: str, system_prompt: str) -> dict:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"generation_id": generation_id, "messages": messages}


def reward_version(store: Store, version_id: int | None):
    """The reward version ``version_id`` (None: the newest one); raises ScoringError if there is none."""
    rewards = sorted((v for v in store.list_model_versions() if v.kind == "reward"), key=lambda v: -v.id)
    if not rewards:
        raise ScoringError("No reward model yet: train one first (Reward model on the Train page).")
    if version_id is None:
        return rewards[0]
    for version in rewards:
        if version.id == version_id:
            return version
    raise ScoringError(f"Model version {version_id} is not a registered reward model.")


def scoring_version(store: Store, preferred_id: int | None):
    """The reward version whose scores the app shows: ``preferred_id`` while it is a registered reward model,
    else the newest reward model; None when there is none."""
    try:
        return reward_version(store, preferred_id)
    except ScoringError:
        return None if preferred_id is None else scoring_version(store, None)


def unscored_count(store: Store, version_id: int) -> int:
    return len(store.unscored_generations(version_id))


def score_request(
    store: Store, *, base_model: str, system_prompt: str, reward_version_id: int | None = None
) -> JobRequest:
    """The job that scores every answer the reward version (default: the newest) has not scored yet.
    The reward version's own base model is used when it recorded one: its adapter belongs to that base."""
    version = reward_version(store, reward_version_id)
    return JobRequest(
        kind="score",
        base_model=version.base_model or base_model,
        system_prompt=system_prompt,
        reward_adapter=str(version.adapter_path),
        reward_version_id=version.id,
    )


def _read_scores(path: Path) -> list[tuple[int, float]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoringError(f"The score job's result {path} cannot be read ({exc}).") from exc
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            generation_id, score = data["generation_id"], data["score"]
        except (ValueError, TypeError, KeyError) as exc:
            raise ScoringError(f"{path} line {number}: not a score record ({exc}).") from None
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise ScoringError(f"{path} line {number}: 'score' must be a finite number, got {score!r}.")
        rows.append((generation_id, float(score)))
    return rows


def store_scores(store: Store, job_id: int, job_dir: str | Path) -> int:
    """Store a finished score job's ``scores.jsonl`` against its reward version; returns how many."""
    version_id = store.get_job(job_id).config.get("reward_version_id")
    if not isinstance(version_id, int):
        raise ScoringError(f"Score job {job_id} does not record which reward model gave its scores.")
    rows = _read_scores(Path(job_dir) / SCORES_FILE)
    try:
        return store.add_scores(version_id, rows)
    except StoreValidationError as exc:
        raise ScoringError(f"The scores of job {job_id} were not stored: {exc}.") from None
