"""Snapshot what a training job needs from SQLite into its own folder.

The training process reads only this folder, so the database keeps one writer (the app), and a job can be
re-run or audited later from exactly the data it saw:

    <job_dir>/config.json       the training program's config (training/README.md)
    <job_dir>/data/train.jsonl  conversational prompt/completion examples (loss on the answer only)
    <job_dir>/snapshot.json     provenance: which verdicts and questions went in, and why

Incremental retraining (``hitl``) learns from the feedback that arrived since the last retrain plus a
seeded random replay sample of earlier feedback, so old lessons are not forgotten.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medalign_desktop.store import Store
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
    kind: str  # "hitl" or "sft"
    base_model: str
    system_prompt: str
    parent_adapter: str | None = None
    replay_fraction: float = DEFAULT_REPLAY_FRACTION
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # hyperparameters for the training config


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


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def write_snapshot(store: Store, request: SnapshotRequest, job_dir: str | Path) -> SnapshotInfo:
    """Write config.json, data/train.jsonl and snapshot.json into ``job_dir`` (created, must be new/empty)."""
    job_dir = Path(job_dir)
    examples, info = select_examples(store, request)
    assert_no_held_out(store, examples)
    (job_dir / "data").mkdir(parents=True, exist_ok=True)
    with (job_dir / "data" / "train.jsonl").open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(
                json.dumps(to_conversation(example, request.system_prompt), ensure_ascii=False) + "\n"
            )
        handle.flush()
        os.fsync(handle.fileno())
    config = {
        "kind": request.kind,
        "base_model": request.base_model,
        "parent_adapter": request.parent_adapter,
        "output_name": "adapter",
        **request.overrides,
    }
    _write_json(job_dir / "config.json", config)
    _write_json(
        job_dir / "snapshot.json",
        {
            **asdict(info),
            "kind": request.kind,
            "seed": request.seed,
            "replay_fraction": request.replay_fraction,
            "prompt_ids": [e.prompt_id for e in examples],
            "feedback_ids": [e.feedback_id for e in examples if e.feedback_id is not None],
        },
    )
    return info
