"""The job folder: the one contract on disk between the app and a training program.

The app writes ``config.json``, ``snapshot.json`` and ``data/``; the program reads only this folder and writes
its outputs here (the finished adapter goes to the config's output folder, written to a temporary folder and
renamed). Both sides import these names from this module, so a file name is written once.

    <job>/
      config.json            the job's config (training.config / training.ppo.config dataclasses)
      snapshot.json          what the app snapshotted: counts, data hashes, provenance (the app's manifest)
      data/train.jsonl       training examples (sft, hitl) or preference pairs (dpo, reward)
      data/eval.jsonl        the held-out split of the same, when there is one
      data/prompts.jsonl     PPO prompts;  data/eval_prompts.jsonl  PPO evaluation prompts
      data/questions.jsonl   evaluate: the questions;  data/cached.jsonl  answers already generated
      data/answers.jsonl     score: the answers to score
      answers.jsonl          evaluate's output: one answer per (version, question)
      results.json           evaluate's output: metrics per version
      scores.jsonl           score's output: one reward per answer
      checkpoints/           resumable checkpoints (checkpoint.json in each)
      result.json            the outcome: status, metrics, checkpoints, paths
"""

from __future__ import annotations

from typing import Any, TypedDict

CONFIG_FILE = "config.json"
SNAPSHOT_FILE = "snapshot.json"
RESULT_FILE = "result.json"
DATA_DIR = "data"
TRAIN_FILE = "data/train.jsonl"
EVAL_FILE = "data/eval.jsonl"
PROMPTS_FILE = "data/prompts.jsonl"
EVAL_PROMPTS_FILE = "data/eval_prompts.jsonl"
# evaluate
QUESTIONS_FILE = "data/questions.jsonl"
CACHED_FILE = "data/cached.jsonl"
ANSWERS_FILE = "answers.jsonl"
RESULTS_FILE = "results.json"
# score
SCORE_INPUT_FILE = "data/answers.jsonl"
SCORES_FILE = "scores.jsonl"
# resumable state
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_INFO_FILE = "checkpoint.json"


# -- result.json: the outcome a program writes last (training/runner.py's write_result) -----------------------
STATUS_FINISHED = "finished"  # a failed run writes "failed" or "cancelled" (training/__main__.py)


class JobResult(TypedDict, total=False):
    """result.json's fields. A finished run: status, kind, adapter_path (score and evaluate: their output file),
    metrics, config, and checkpoints for the kinds that keep them ({"best"|"last": {path, step, metric, value}}).
    A run that did not finish: status, reason, advice."""

    status: str
    kind: str
    adapter_path: str
    metrics: dict[str, Any]
    checkpoints: dict[str, dict[str, Any]]
    config: dict[str, Any]
    reason: str
    advice: str


RESULT_FIELDS = tuple(JobResult.__annotations__)


def finished_result(
    kind: str,
    adapter_path: str,
    metrics: dict[str, Any],
    config: dict[str, Any],
    checkpoints: dict[str, dict[str, Any]] | None = None,
) -> JobResult:
    """result.json of a finished run (``checkpoints`` only for a kind that keeps them)."""
    result = JobResult(status=STATUS_FINISHED, kind=kind, adapter_path=adapter_path, metrics=metrics)
    if checkpoints is not None:
        result["checkpoints"] = checkpoints
    result["config"] = config
    return result


def ended_result(status: str, reason: str, advice: str) -> JobResult:
    """result.json of a run that did not finish: "failed" or "cancelled", why, and what to do."""
    return JobResult(status=status, reason=reason, advice=advice)
