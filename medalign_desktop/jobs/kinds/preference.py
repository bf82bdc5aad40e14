"""``dpo`` and ``reward``: learning from preference pairs (training/dpo.py, training/reward.py).

Both write data/train.jsonl as preference pairs (jobs/preference_snapshot.py): the clinicians' feedback
pairs plus the imported pair batches the user chose.

    dpo     from the active version's adapter, which is also DPO's frozen reference (Model D)
    reward  a fresh LoRA plus a score head on the base model; a reward model never answers questions
"""

from __future__ import annotations

from pathlib import Path

from medalign_desktop.jobs import preference_snapshot as prefs
from medalign_desktop.jobs.job_files import write_jsonl
from medalign_desktop.jobs.job_types import (
    LOSS_PANEL,
    JobKindSpec,
    SnapshotError,
    SnapshotInfo,
    SnapshotRequest,
    train_and_eval,
)
from medalign_desktop.store import Store
from training.job_folder import TRAIN_FILE


def write_pairs(store: Store, request: SnapshotRequest, job_dir: Path) -> tuple[SnapshotInfo, dict]:
    try:
        selection = prefs.select_pairs(store, request.import_batch_ids)
        prefs.assert_pairs_not_held_out(store, selection.pairs)
    except prefs.PreferenceSnapshotError as exc:
        raise SnapshotError(str(exc)) from None
    write_jsonl(job_dir / TRAIN_FILE, (prefs.pair_record(p, request.system_prompt) for p in selection.pairs))
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


DPO = JobKindSpec(
    "dpo", "D  DPO", write_pairs,
    (
        LOSS_PANEL,
        train_and_eval("reward accuracy", "rewards/accuracies", "#1e7b34"),
        train_and_eval("reward margin", "rewards/margins", "#7b3fa0"),
    ),
    short_label="D · DPO", version_prefix="D-dpo", answers=True, resumable=True, continues_from_active=True,
    uses_pair_batches=True,
)  # fmt: skip
REWARD = JobKindSpec(
    "reward", "C  reward model", write_pairs,
    (
        LOSS_PANEL,
        train_and_eval("pairwise accuracy", "accuracy", "#1e7b34", "held-back slice"),
        train_and_eval("reward margin", "margin", "#7b3fa0", "held-back slice"),
    ),
    version_prefix="R-reward", resumable=True, uses_pair_batches=True,
)  # fmt: skip
