"""``sft`` and ``hitl``: supervised fine-tuning on answers (training/sft.py runs both).

    sft   the imported questions' reference answers on the train split, from the base model (Model A)
    hitl  the clinicians' accepted and edited answers since the last retrain plus a seeded random replay
          sample of earlier ones, so old lessons are not forgotten, from the active version (Model B)

Both write data/train.jsonl: conversational prompt/completion examples (loss on the answer only).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from medalign_desktop.jobs.job_files import write_jsonl
from medalign_desktop.jobs.job_types import (
    LEARNING_RATE_PANEL,
    LOSS_PANEL,
    JobKindSpec,
    SnapshotError,
    SnapshotInfo,
    SnapshotRequest,
)
from medalign_desktop.store import Store
from medalign_desktop.store.training_data import (
    TrainingExample,
    feedback_examples,
    last_retrain_cutoff,
    prompt_splits,
    reference_examples,
)
from training.job_folder import TRAIN_FILE


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


def write_examples(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
    examples, info = select_examples(store, request)
    assert_no_held_out(store, examples)
    write_jsonl(job_dir / TRAIN_FILE, (to_conversation(e, request.system_prompt) for e in examples))
    provenance = {
        "replay_fraction": request.replay_fraction,
        "prompt_ids": [e.prompt_id for e in examples],
        "feedback_ids": [e.feedback_id for e in examples if e.feedback_id is not None],
    }
    return info, provenance


_PANELS = (LOSS_PANEL, LEARNING_RATE_PANEL)
SFT = JobKindSpec(
    "sft", "A  SFT", write_examples, _PANELS, short_label="A · SFT", version_prefix="A-sft", answers=True,
    resumable=True,
)  # fmt: skip
HITL = JobKindSpec(
    "hitl", "B  incremental LoRA", write_examples, _PANELS, short_label="B · HITL", version_prefix="B-iter",
    answers=True, resumable=True, continues_from_active=True,
)  # fmt: skip
