"""Snapshot what a training job needs from SQLite into its own folder.

The training process reads only this folder, so the database keeps one writer (the app), and a job can be
re-run or audited later from exactly the data it saw:

    <job_dir>/config.json       the training program's config (training/README.md)
    <job_dir>/data/train.jsonl  sft / hitl: conversational prompt/completion examples (loss on the answer
                                only); dpo / reward: preference pairs (jobs/preference_snapshot.py)
    <job_dir>/data/prompts.jsonl ppo: the questions to generate answers for
    <job_dir>/data/answers.jsonl score: the answers a reward model has not scored yet (jobs/scoring.py)
    <job_dir>/data/questions.jsonl, data/cached.jsonl
                                evaluate: the held-out questions and the answers already stored with the
                                same settings (jobs/evaluation.py)
    <job_dir>/snapshot.json     provenance: which verdicts, pairs and questions went in, and why

The folder is private whatever the umask: 0700 folders, 0600 files (they hold clinicians' questions and
answers). Incremental retraining (``hitl``) learns from the feedback that arrived since the last retrain plus a
seeded random replay sample of earlier feedback, so old lessons are not forgotten.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medalign_desktop.jobs import evaluation, scoring
from medalign_desktop.jobs import preference_snapshot as prefs
from medalign_desktop.store import Store, StoreValidationError
from medalign_desktop.store.db import make_private_dirs
from medalign_desktop.store.training_data import (
    TrainingExample,
    feedback_examples,
    last_retrain_cutoff,
    prompt_splits,
    reference_examples,
)

DEFAULT_REPLAY_FRACTION = 0.5  # replayed old examples per new example


class SnapshotError(Exception):
    """The job cannot start: nothing to learn from, or the data breaks a rule. The message says which."""


@dataclass(frozen=True)
class SnapshotRequest:
    kind: str  # "hitl", "sft", "dpo", "reward" or "ppo"
    base_model: str
    system_prompt: str
    parent_adapter: str | None = None
    replay_fraction: float = DEFAULT_REPLAY_FRACTION
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # hyperparameters for the training config
    import_batch_ids: tuple[int, ...] = ()  # dpo / reward: imported pair batches to learn from too
    reward_adapter: str | None = None  # ppo: the reward model's adapter folder
    prompt_scope: str = "all"  # ppo: "all" train-split questions or "unannotated" ones
    max_prompts: int | None = None  # ppo: a seeded sample of at most this many questions
    reward_version_id: int | None = None  # score: the reward version whose unscored answers go in
    eval_versions: tuple[str, ...] = ()  # evaluate: the version names to answer with ("base": the base model)


@dataclass(frozen=True)
class SnapshotInfo:
    n_train: int
    n_new: int
    n_replay: int
    cutoff: str


def select_examples(store: Store, request: SnapshotRequest) -> tuple[list[TrainingExample], SnapshotInfo]:
    if request.kind == "sft":
        examples = reference_examples(store.db)
        if not examples:
            raise SnapshotError(
                "No imported questions with reference answers on the train split to fine-tune on."
            )
        return examples, SnapshotInfo(len(examples), len(examples), 0, "")
    if request.kind != "hitl":
        raise SnapshotError(f"Snapshots for '{request.kind}' jobs are not supported yet.")
    cutoff = last_retrain_cutoff(store.db)
    everything = feedback_examples(store.db)
    new = [e for e in everything if e.created_at > cutoff]
    old = [e for e in everything if e.created_at <= cutoff]
    if not new:
        raise SnapshotError("No new accepted or edited answers since the last retrain.")
    n_replay = min(len(old), math.ceil(request.replay_fraction * len(new)))
    replay = random.Random(request.seed).sample(old, n_replay)
    return new + replay, SnapshotInfo(len(new) + n_replay, len(new), n_replay, cutoff)


def assert_no_held_out(store: Store, examples: list[TrainingExample]) -> None:
    """The held-out guard: re-read every question's split; a held-out one must never be trained on."""
    splits = prompt_splits(store.db, sorted({e.prompt_id for e in examples}))
    leaked = sorted(pid for pid, split in splits.items() if split != "train")
    if leaked:
        raise SnapshotError(
            f"Held-out questions would be trained on (ids {leaked[:10]}); the job was not started."
        )


def to_conversation(example: TrainingExample, system_prompt: str) -> dict:
    prompt = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    prompt.append({"role": "user", "content": example.question})
    return {
        "id": f"{example.source}-{example.feedback_id or example.prompt_id}",
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": example.answer}],
    }


FILE_MODE, DIR_MODE = 0o600, 0o700


def _open_private(path: Path):
    """A text file for writing with mode 0600 from its first byte, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "w", encoding="utf-8")


def _private_dir(path: Path) -> None:
    make_private_dirs(path)
    os.chmod(path, DIR_MODE)


def _write_json(path: Path, data) -> None:
    with _open_private(path) as handle:
        handle.write(json.dumps(data, ensure_ascii=False, indent=2))


def _fsync_jsonl(path: Path, records) -> None:
    _private_dir(path.parent)
    with _open_private(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _write_examples(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
    examples, info = select_examples(store, request)
    assert_no_held_out(store, examples)
    _fsync_jsonl(
        job_dir / "data" / "train.jsonl", (to_conversation(e, request.system_prompt) for e in examples)
    )
    provenance = {
        "replay_fraction": request.replay_fraction,
        "prompt_ids": [e.prompt_id for e in examples],
        "feedback_ids": [e.feedback_id for e in examples if e.feedback_id is not None],
    }
    return info, provenance


def _write_pairs(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
    try:
        selection = prefs.select_pairs(store, request.import_batch_ids)
        prefs.assert_pairs_not_held_out(store, selection.pairs)
    except prefs.PreferenceSnapshotError as exc:
        raise SnapshotError(str(exc)) from None
    _fsync_jsonl(
        job_dir / "data" / "train.jsonl",
        (prefs.pair_record(p, request.system_prompt) for p in selection.pairs),
    )
    n = len(selection.pairs)
    provenance = {
        "pair_keys": [p.key for p in selection.pairs],
        "n_feedback_pairs": selection.n_feedback,
        "n_imported_pairs": selection.n_imported,
        "n_dropped_held_out": selection.n_dropped_held_out,
        "import_batch_ids": list(request.import_batch_ids),
        "prompt_ids": sorted({p.prompt_id for p in selection.pairs if p.prompt_id is not None}),
    }
    return SnapshotInfo(n, n, 0, ""), provenance


def _write_prompts(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
    if not request.reward_adapter:
        raise SnapshotError("PPO needs a reward model: train one first (Reward model on the Train page).")
    try:
        prompts = prefs.select_prompts(
            store, scope=request.prompt_scope, max_prompts=request.max_prompts, seed=request.seed
        )
    except prefs.PreferenceSnapshotError as exc:
        raise SnapshotError(str(exc)) from None
    splits = prompt_splits(store.db, [pid for pid, _ in prompts])
    if any(split != "train" for split in splits.values()):
        raise SnapshotError("Held-out questions would be used for PPO rollouts; the job was not started.")
    records = (
        {"id": f"p-{pid}", "prompt": prefs.conversation_prompt(text, request.system_prompt)}
        for pid, text in prompts
    )
    _fsync_jsonl(job_dir / "data" / "prompts.jsonl", records)
    provenance = {"prompt_scope": request.prompt_scope, "prompt_ids": [pid for pid, _ in prompts]}
    return SnapshotInfo(len(prompts), len(prompts), 0, ""), provenance


def _write_answers(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
    if request.reward_version_id is None or not request.reward_adapter:
        raise SnapshotError(
            "A score job needs a reward model: train one first (Reward model on the Train page)."
        )
    answers = store.unscored_generations(request.reward_version_id)
    if not answers:
        raise SnapshotError("Every answer is scored already by this reward model.")
    records = (scoring.answer_record(g, q, a, request.system_prompt) for g, q, a in answers)
    _fsync_jsonl(job_dir / scoring.ANSWERS_FILE, records)
    provenance = {
        "reward_version_id": request.reward_version_id,
        "generation_ids": [g for g, _, _ in answers],
    }
    return SnapshotInfo(len(answers), len(answers), 0, ""), provenance


def _write_evaluation(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
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
    _fsync_jsonl(job_dir / evaluation.QUESTIONS_FILE, (evaluation.question_record(p) for p in questions))
    _fsync_jsonl(job_dir / evaluation.CACHED_FILE, (evaluation.cached_record(c) for c in cached))
    n_generate = len(questions) * len(versions) - len(cached)
    provenance = {
        "versions": versions,
        "settings": settings,
        "prompt_ids": sorted(held_out),
        "n_cached": len(cached),
    }
    return SnapshotInfo(len(questions), n_generate, 0, ""), provenance


WRITERS = {
    "sft": _write_examples,
    "hitl": _write_examples,
    "dpo": _write_pairs,
    "reward": _write_pairs,
    "ppo": _write_prompts,
    "score": _write_answers,
    "evaluate": _write_evaluation,
}


def job_config(request: SnapshotRequest, provenance: dict | None = None) -> dict:
    """config.json for the training program (training/README.md); score and evaluate jobs train nothing."""
    if request.kind == "evaluate":
        return {
            "kind": "evaluate", "base_model": request.base_model,
            "versions": (provenance or {}).get("versions", []), "reward_adapter": request.reward_adapter,
            "max_new_tokens": evaluation.DEFAULT_MAX_NEW_TOKENS, "system_prompt": request.system_prompt,
            "seed": 0, **request.overrides,
        }  # fmt: skip
    if request.kind == "score":
        return {
            "kind": "score", "base_model": request.base_model, "reward_adapter": request.reward_adapter,
            **request.overrides,
        }  # fmt: skip
    return {
        "kind": request.kind,
        "base_model": request.base_model,
        "parent_adapter": request.parent_adapter,
        "output_name": "adapter",
        **({"reward_adapter": request.reward_adapter} if request.kind == "ppo" else {}),
        **request.overrides,
    }


def write_snapshot(store: Store, request: SnapshotRequest, job_dir: str | Path) -> SnapshotInfo:
    """Write config.json, the data files and snapshot.json into ``job_dir`` (created, must be new/empty)."""
    job_dir = Path(job_dir)
    writer = WRITERS.get(request.kind)
    if writer is not None:
        _private_dir(job_dir)
    if writer is None:
        raise SnapshotError(f"Snapshots for '{request.kind}' jobs are not supported yet.")
    info, provenance = writer(store, request, job_dir)
    _write_json(job_dir / "config.json", job_config(request, provenance))
    _write_json(
        job_dir / "snapshot.json",
        {**asdict(info), "kind": request.kind, "seed": request.seed, **provenance},
    )
    return info
