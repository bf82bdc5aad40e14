"""Evaluation jobs: the app's side of `python -m training evaluate` (training/evaluate.py).

The snapshot (jobs/snapshot.py, kind ``evaluate``) writes the held-out questions, the answers already
stored with the same settings (``data/cached.jsonl``: not generated again) and the versions to evaluate.
The program answers every (version, question) greedily and computes the metrics; when the job succeeds
:func:`store_evaluation_results` stores the new answers as generations and one result per version, in one
transaction. Store calls only: runs on the store thread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from medalign_desktop.jobs.job_types import JobRequest
from medalign_desktop.store import Store, StoreValidationError
from medalign_desktop.store.eval_results import evaluation_settings
from medalign_desktop.store.rows import CachedAnswer, Prompt
from training.job_folder import ANSWERS_FILE, RESULTS_FILE  # what training/evaluate.py writes

BASE = "base"  # the bare base model's version name
DEFAULT_MAX_NEW_TOKENS = 256
# versions that answer questions (a reward model does not): jobs/kinds' kinds with ``answers`` (this module
# sits below that table, which imports it; tests/unit/jobs/test_kinds.py checks the two agree)
ANSWERING_KINDS = ("sft", "hitl", "dpo", "ppo")
NO_HELD_OUT = (
    "Mark questions as held out first (select questions and choose Hold out, or hold out a share of an "
    "import); evaluation answers only held-out questions."
)


class EvaluationError(Exception):
    """An evaluation job's request or result cannot be used; the message says which version / file / line."""


def version_entries(store: Store, names: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """``[{"name", "adapter_path"}]`` for the program's config, each name once, in the order given."""
    registered = {v.name: v for v in store.list_model_versions()}
    entries: list[dict[str, Any]] = []
    for name in dict.fromkeys(names):
        if name == BASE and BASE not in registered:
            entries.append({"name": BASE, "adapter_path": None})
            continue
        version = registered.get(name)
        if version is None:
            raise EvaluationError(f"There is no model version named {name!r} to evaluate.")
        if version.kind not in ANSWERING_KINDS:
            raise EvaluationError(f"{name} is a {version.kind} model: it does not answer questions.")
        if not version.adapter_path:
            raise EvaluationError(f"{name} has no adapter folder recorded; it cannot be evaluated.")
        entries.append({"name": name, "adapter_path": str(version.adapter_path)})
    if not entries:
        raise EvaluationError("Choose at least one model version to evaluate.")
    return entries


def evaluable_versions(store: Store) -> list[str]:
    """The names a user can evaluate: the base model, then every answering version in creation order."""
    return [BASE] + [
        v.name for v in store.list_model_versions() if v.kind in ANSWERING_KINDS and v.name != BASE
    ]


def answer_settings(max_new_tokens: int, system_prompt: str) -> dict[str, Any]:
    """The settings every evaluation answer is stored with (the cache key)."""
    return evaluation_settings(max_new_tokens, system_prompt)


def question_record(prompt: Prompt) -> dict[str, Any]:
    return {
        "prompt_id": prompt.id,
        "question": prompt.text,
        "reference_answer": prompt.reference_answer,
        "answer_key": prompt.answer_key,
        "options": prompt.options,
    }


CACHED_FIELDS = ("version", "prompt_id", "text", "n_tokens", "finish_reason")  # a line of data/cached.jsonl


def cached_record(answer: CachedAnswer) -> dict[str, Any]:
    return {name: getattr(answer, name) for name in CACHED_FIELDS}


def evaluation_request(
    store: Store,
    versions: tuple[str, ...] | list[str],
    base_model: str,
    system_prompt: str,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    *,
    reward_version_id: int | None = None,
) -> JobRequest:
    """The job that evaluates ``versions`` ("base" for the base model) on the held-out questions, with the
    app's scoring reward model (``reward_version_id`` while it is one, else the newest) if there is one."""
    from medalign_desktop.jobs.scoring import scoring_version

    if store.held_out_count() == 0:
        raise EvaluationError(NO_HELD_OUT)
    entries = version_entries(store, versions)
    answer_settings(max_new_tokens, system_prompt)  # refuses a bad max_new_tokens before a job exists
    reward = scoring_version(store, reward_version_id)
    return JobRequest(
        kind="evaluate",
        base_model=base_model,
        system_prompt=system_prompt,
        overrides={"max_new_tokens": max_new_tokens},
        reward_adapter=str(reward.adapter_path) if reward is not None and reward.adapter_path else None,
        reward_version_id=reward.id if reward is not None else None,
        eval_versions=tuple(entry["name"] for entry in entries),
    )


# -- reading the program's results ------------------------------------------------------------------------


def _read_answers(path: Path) -> tuple[list[dict], list[int]]:
    """The records of answers.jsonl and the line number of each."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"The evaluation's answers {path} cannot be read ({exc}).") from exc
    records, numbers = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise EvaluationError(f"{path} line {number}: not a JSON record ({exc}).") from None
        if not isinstance(record, dict):
            raise EvaluationError(f"{path} line {number}: not an answer record.")
        records.append(record)
        numbers.append(number)
    return records, numbers


def _read_results(path: Path) -> dict:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EvaluationError(f"The evaluation's results {path} cannot be read ({exc}).") from exc
    if not isinstance(results, dict):
        raise EvaluationError(f"{path}: not a results object.")
    return results


def _where(exc: StoreValidationError, answers: Path, results: Path, numbers: list[int]) -> str:
    """The validation message with ``answers[i]`` replaced by the file and line it came from."""
    match = re.match(r"answers\[(\d+)\](\.\w+)?", exc.field)
    if match and int(match.group(1)) < len(numbers):
        field = (match.group(2) or "").lstrip(".")
        return f"{answers} line {numbers[int(match.group(1))]}{': ' + field if field else ''}: {exc.message}"
    return f"{results if exc.field.startswith('results') else answers}: {exc}"


def store_evaluation_results(store: Store, job_id: int, job_dir: str | Path) -> int:
    """Store a finished evaluation job's answers and results; returns how many versions were stored."""
    answers_path, results_path = Path(job_dir) / ANSWERS_FILE, Path(job_dir) / RESULTS_FILE
    results = _read_results(results_path)
    answers, numbers = _read_answers(answers_path)
    asked = store.get_job(job_id).config.get("eval_versions")
    versions = results.get("versions")
    if isinstance(asked, list) and isinstance(versions, dict) and set(versions) - set(asked):
        unknown = sorted(set(versions) - set(asked))
        raise EvaluationError(f"{results_path}: versions {unknown} were not asked for by job {job_id}.")
    try:
        store.store_evaluation(job_id, results, answers)
    except StoreValidationError as exc:
        where = _where(exc, answers_path, results_path, numbers)
        raise EvaluationError(f"The results of evaluation job {job_id} were not stored: {where}") from None
    return len(versions) if isinstance(versions, dict) else 0
