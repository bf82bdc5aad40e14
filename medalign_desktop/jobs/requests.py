"""What a training click turns into: a JobRequest built from the workspace's active version.

Which adapter a new job starts from, per kind:

    sft     the base model (a fresh LoRA on the imported instruction set)
    hitl    the active version's adapter (incremental: the next iteration of Model B)
    dpo     the active version's adapter; it is also DPO's frozen reference
    reward  the base model (a fresh LoRA plus a score head); a reward model never answers questions
    ppo     the active version's adapter as the policy (and frozen reference), scored by a chosen reward model
"""

from __future__ import annotations

from medalign_desktop.jobs.job_types import JobRequest  # lives below every job module
from medalign_desktop.jobs.kinds import kinds_where
from medalign_desktop.store import Store

POLICY_KINDS = kinds_where(answers=True)  # versions that answer questions (and can be activated)
CONTINUES_FROM_ACTIVE = kinds_where(continues_from_active=True)


class RequestError(ValueError):
    """The job cannot be asked for yet; the message says what to do first."""


def reward_versions(store: Store) -> list:
    """Registered reward models, newest first."""
    return sorted((v for v in store.list_model_versions() if v.kind == "reward"), key=lambda v: -v.id)


def training_request(
    store: Store,
    *,
    kind: str,
    base_model: str,
    system_prompt: str,
    trigger: str = "manual",
    overrides: dict | None = None,
    import_batch_ids: tuple[int, ...] = (),
    reward_version_id: int | None = None,
    prompt_scope: str = "all",
    max_prompts: int | None = None,
    parent: str | None = None,
) -> JobRequest:
    """The active (answering) version is the new version's parent, so the Models page can draw the lineage;
    ``parent`` (a version's name, from `medalign train --parent`) chooses another answering version, "base"
    the base model."""
    if parent == "base":
        active = None
    else:
        active = answering_version(store, parent) if parent else store.active_model_version()
    if active is not None and active.kind not in POLICY_KINDS:
        active = None  # defensive: a reward model is never the answering version
    continues = kind in CONTINUES_FROM_ACTIVE and active is not None
    reward_adapter = None
    if kind == "ppo":
        reward_adapter = _reward_adapter(store, reward_version_id)
    return JobRequest(
        kind=kind, base_model=base_model, system_prompt=system_prompt,
        parent_version_id=active.id if continues else None,
        parent_adapter=active.adapter_path if continues else None,
        overrides=dict(overrides or {}), trigger=trigger,
        import_batch_ids=tuple(import_batch_ids) if kind in kinds_where(uses_pair_batches=True) else (),
        reward_adapter=reward_adapter, prompt_scope=prompt_scope, max_prompts=max_prompts,
    )  # fmt: skip


def answering_version(store: Store, name: str):
    """The answering version called ``name``; RequestError lists the names there are."""
    versions = [v for v in store.list_model_versions() if v.kind in POLICY_KINDS]
    for version in versions:
        if version.name == name:
            return version
    known = ", ".join(v.name for v in versions) or "none yet"
    raise RequestError(f"No answering model version named {name!r} (there are: {known}).")


def _reward_adapter(store: Store, reward_version_id: int | None) -> str:
    rewards = reward_versions(store)
    if not rewards:
        raise RequestError("PPO needs a reward model: train one first (Reward model on the Train page).")
    if reward_version_id is None:
        return str(rewards[0].adapter_path)
    for version in rewards:
        if version.id == reward_version_id:
            return str(version.adapter_path)
    raise RequestError(f"Model version {reward_version_id} is not a registered reward model.")


def preference_job_inputs(store: Store) -> tuple[int, list[dict]]:
    """For the DPO / reward dialog: how many feedback pairs there are, and the imported pair batches."""
    from medalign_desktop.jobs.preference_snapshot import FEEDBACK_SOURCES
    from medalign_desktop.store.rows import PairFilter

    n_feedback = store.count_pairs(PairFilter(sources=FEEDBACK_SOURCES))
    batches = [_as_dict(batch) for batch in store.import_batches(kind="pairs")]
    return n_feedback, batches


def ppo_job_inputs(store: Store) -> tuple[list, int, int]:
    """For the PPO dialog: the reward models (newest first) and how many questions each scope holds."""
    from medalign_desktop.store.training_data import train_prompts

    with store.exclusive() as db:
        n_all = len(train_prompts(db))
        n_unannotated = len(train_prompts(db, unannotated_only=True))
    return reward_versions(store), n_all, n_unannotated


def _as_dict(record) -> dict:
    return dict(record) if isinstance(record, dict) else dict(vars(record))
