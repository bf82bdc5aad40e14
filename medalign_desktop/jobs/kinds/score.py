"""``score``: a reward model scores the answers it has not scored yet (training/score.py, jobs/scoring.py).

The snapshot writes data/answers.jsonl; a successful job's scores.jsonl is stored, not a model version.
"""

from __future__ import annotations

from pathlib import Path

from medalign_desktop.jobs import scoring
from medalign_desktop.jobs.job_files import write_jsonl
from medalign_desktop.jobs.job_types import JobKindSpec, SnapshotError, SnapshotInfo, SnapshotRequest
from medalign_desktop.store import Store
from training.job_folder import SCORE_INPUT_FILE


def write_answers(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
    if request.reward_version_id is None or not request.reward_adapter:
        raise SnapshotError(
            "A score job needs a reward model: train one first (Reward model on the Train page)."
        )
    answers = store.unscored_generations(request.reward_version_id)
    if not answers:
        raise SnapshotError("Every answer is scored already by this reward model.")
    records = (scoring.answer_record(g, q, a, request.system_prompt) for g, q, a in answers)
    write_jsonl(job_dir / SCORE_INPUT_FILE, records)
    provenance = {
        "reward_version_id": request.reward_version_id,
        "generation_ids": [g for g, _, _ in answers],
    }
    return SnapshotInfo(len(answers), len(answers), 0, ""), provenance


def score_config(request: SnapshotRequest, provenance: dict) -> dict:
    """config.json of a score job: it trains nothing."""
    return {
        "kind": "score", "base_model": request.base_model, "reward_adapter": request.reward_adapter,
        **request.overrides,
    }  # fmt: skip


# trains nothing: no curves to draw, so no plot (its progress bar and log say it all)
SCORE = JobKindSpec(
    "score", "score", write_answers, (), config=score_config, store_results=scoring.store_scores,
    result_error=scoring.ScoringError,
)  # fmt: skip
