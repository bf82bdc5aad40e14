"""``evaluate``: versions answer the held-out questions, and the answers are measured (training/evaluate.py,
jobs/evaluation.py). The snapshot writes data/questions.jsonl and data/cached.jsonl (the answers stored
before with the same settings); a successful job's answers.jsonl and results.json are stored.
"""

from __future__ import annotations

from pathlib import Path

from medalign_desktop.jobs import evaluation
from medalign_desktop.jobs.job_files import write_jsonl
from medalign_desktop.jobs.job_types import JobKindSpec, SnapshotError, SnapshotInfo, SnapshotRequest
from medalign_desktop.store import Store, StoreValidationError
from training.job_folder import CACHED_FILE, QUESTIONS_FILE


def write_evaluation(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
    """Held-out questions only; the answers stored before with the same settings go in as cached."""
    questions = store.held_out_prompts()
    if not questions:
        raise SnapshotError(evaluation.NO_HELD_OUT)
    max_new_tokens = request.overrides.get("max_new_tokens", evaluation.DEFAULT_MAX_NEW_TOKENS)
    try:
        versions = evaluation.version_entries(store, request.eval_versions)
        settings = evaluation.answer_settings(max_new_tokens, request.system_prompt)
    except (evaluation.EvaluationError, StoreValidationError) as exc:
        raise SnapshotError(str(exc)) from None
    held_out = {p.id for p in questions}
    names = [v["name"] for v in versions]
    cached = [c for c in store.evaluation_cache(names, settings) if c.prompt_id in held_out]
    write_jsonl(job_dir / QUESTIONS_FILE, (evaluation.question_record(p) for p in questions))
    write_jsonl(job_dir / CACHED_FILE, (evaluation.cached_record(c) for c in cached))
    n_generate = len(questions) * len(versions) - len(cached)
    provenance = {
        "versions": versions,
        "settings": settings,
        "prompt_ids": sorted(held_out),
        "n_cached": len(cached),
    }
    return SnapshotInfo(len(questions), n_generate, 0, ""), provenance


def evaluate_config(request: SnapshotRequest, provenance: dict) -> dict:
    """config.json of an evaluation job: it trains nothing."""
    return {
        "kind": "evaluate", "base_model": request.base_model,
        "versions": (provenance or {}).get("versions", []), "reward_adapter": request.reward_adapter,
        "max_new_tokens": evaluation.DEFAULT_MAX_NEW_TOKENS, "system_prompt": request.system_prompt,
        "seed": 0, **request.overrides,
    }  # fmt: skip


# trains nothing: no curves to draw, so no plot (its progress bar and log say it all)
EVALUATE = JobKindSpec(
    "evaluate", "evaluate", write_evaluation, (), config=evaluate_config,
    store_results=evaluation.store_evaluation_results, result_error=evaluation.EvaluationError,
)  # fmt: skip
