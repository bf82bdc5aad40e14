"""What a Retrain or SFT click turns into: a JobRequest built from the workspace's active version."""

from __future__ import annotations

from medalign_desktop.jobs.manager import JobRequest
from medalign_desktop.store import Store


def training_request(
    store: Store,
    *,
    kind: str,
    base_model: str,
    system_prompt: str,
    trigger: str = "manual",
    overrides: dict | None = None,
) -> JobRequest:
    """Incremental retraining (``hitl``) continues from the active version's adapter; SFT starts from the base.

    The active version is also the new version's parent, so the Models page can draw the lineage.
    """
    active = store.active_model_version()
    parent_adapter = active.adapter_path if kind == "hitl" and active is not None else None
    return JobRequest(
        kind=kind, base_model=base_model, system_prompt=system_prompt,
        parent_version_id=active.id if active is not None and kind == "hitl" else None,
        parent_adapter=parent_adapter, overrides=dict(overrides or {}), trigger=trigger,
    )  # fmt: skip
