"""``ppo``: the active version's adapter as the policy (and frozen reference), scored by a chosen reward
model (training/ppo/). The snapshot writes data/prompts.jsonl: the train-split questions to answer."""

from __future__ import annotations

from pathlib import Path

from medalign_desktop.jobs import preference_snapshot as prefs
from medalign_desktop.jobs.job_files import write_jsonl
from medalign_desktop.jobs.job_types import (
    LOSS_PANEL,
    Curve,
    JobKindSpec,
    Panel,
    SnapshotError,
    SnapshotInfo,
    SnapshotRequest,
    train_and_eval,
    trainer_config,
)
from medalign_desktop.store import Store
from medalign_desktop.store.training_data import prompt_splits
from training.job_folder import PROMPTS_FILE


def write_prompts(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
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
    write_jsonl(job_dir / PROMPTS_FILE, records)
    provenance = {"prompt_scope": request.prompt_scope, "prompt_ids": [pid for pid, _ in prompts]}
    return SnapshotInfo(len(prompts), len(prompts), 0, ""), provenance


def ppo_config(request: SnapshotRequest, provenance: dict) -> dict:
    return trainer_config(request, provenance, reward_adapter=request.reward_adapter)


PPO = JobKindSpec(
    "ppo", "C  PPO", write_prompts,
    (
        LOSS_PANEL,
        train_and_eval("mean reward", "reward_mean", "#1e7b34"),
        train_and_eval("KL to reference", "kl", "#b42318"),
        Panel("policy / value loss", (
            Curve("policy_loss", "#2f6fb3", "policy"),
            Curve("value_loss", "#d9822b", "value"),
        )),
        Panel("clip fraction", (Curve("clip_fraction", "#5c7080", "clip fraction"),)),
        Panel("answer length", (Curve("answer_length", "#7b3fa0", "tokens"),)),
    ),
    config=ppo_config, short_label="C · PPO", version_prefix="C-ppo", answers=True, resumable=True,
    continues_from_active=True,
)  # fmt: skip
