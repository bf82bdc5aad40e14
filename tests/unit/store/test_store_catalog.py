"""Model versions and jobs: the simple records later issues build the training workflow on."""

from __future__ import annotations

import pytest

from medalign_desktop.store import Store, StoreValidationError


def test_model_versions(store: Store) -> None:
    job = store.create_job("sft", {"lr": 2e-4}, job_dir="/tmp/job-1")
    sft = store.add_model_version(
        "sft-1", "sft", job_id=job, base_model="SmolLM2-135M", adapter_path="/a/sft-1", data_size=900,
        metrics={"eval_loss": 1.25},
    )  # fmt: skip
    hitl = store.add_model_version("hitl-1", "hitl", parent_id=sft)
    versions = store.list_model_versions()
    assert [v.name for v in versions] == ["sft-1", "hitl-1"]
    assert versions[0].metrics == {"eval_loss": 1.25} and versions[0].job_id == job
    assert versions[1].parent_id == sft and versions[1].metrics == {}
    assert store.active_model_version() is None

    store.set_active_model_version(sft)
    store.set_active_model_version(hitl)
    assert store.active_model_version().name == "hitl-1"
    assert [v.is_active for v in store.list_model_versions()] == [False, True]
    store.set_active_model_version(None)
    assert store.active_model_version() is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "dup"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "parent_id": 99}, "parent_id"),
        ({"name": "x", "job_id": 99}, "job_id"),
        ({"name": "x", "metrics": [1]}, "metrics"),
        ({"name": "x", "data_size": -3}, "data_size"),
    ],
)
def test_invalid_model_versions(store: Store, kwargs, field) -> None:
    store.add_model_version("dup", "sft")
    with pytest.raises(StoreValidationError) as info:
        store.add_model_version(kwargs.pop("name"), "sft", **kwargs)
    assert info.value.field == field
    with pytest.raises(StoreValidationError):
        store.set_active_model_version(42)


def test_job_lifecycle(store: Store) -> None:
    job = store.create_job("dpo", {"beta": 0.1})
    record = store.get_job(job)
    assert (record.state, record.config, record.started_at, record.finished_at) == (
        "queued",
        {"beta": 0.1},
        None,
        None,
    )
    store.update_job(job, job_dir="/jobs/7", data_size=120)
    store.set_job_state(job, "running")
    store.set_job_state(job, "failed", error="CUDA out of memory")
    record = store.get_job(job)
    assert (record.state, record.error, record.job_dir, record.data_size) == (
        "failed",
        "CUDA out of memory",
        "/jobs/7",
        120,
    )
    assert record.created_at <= record.started_at <= record.finished_at
    with pytest.raises(StoreValidationError, match="cannot go from 'failed' to 'running'"):
        store.set_job_state(job, "running")
    with pytest.raises(StoreValidationError) as info:
        store.set_job_state(job, "paused")
    assert info.value.field == "state"
    assert [j.id for j in store.list_jobs(kind="dpo")] == [job] and store.list_jobs(kind="sft") == []


def test_job_metrics(store: Store) -> None:
    job = store.create_job("sft", {})
    store.add_job_metrics(job, [(1, "loss", 2.5), {"step": 2, "name": "loss", "value": 2.1}, (2, "lr", 1e-4)])
    assert [(m.step, m.value) for m in store.job_metrics(job, "loss")] == [(1, 2.5), (2, 2.1)]
    assert len(store.job_metrics(job)) == 3
    with pytest.raises(StoreValidationError) as info:
        store.add_job_metrics(job, [(3, "loss", "high")])
    assert info.value.field == "rows.value"
    with pytest.raises(StoreValidationError):
        store.add_job_metrics(999, [(1, "loss", 1.0)])
    assert len(store.job_metrics(job)) == 3


def test_delete_model_version_only_when_unused(store: Store) -> None:
    parent = store.add_model_version("sft-1", "sft")
    child = store.add_model_version("hitl-1", "hitl", parent_id=parent)
    used = store.add_model_version("hitl-2", "hitl")
    store.add_generation(store.add_prompt("q"), "a", model_version=used, settings={})
    store.set_active_model_version(child)

    for version_id, reason in [
        (parent, "derived version"),
        (child, "active version"),
        (used, "recorded answer"),
    ]:
        with pytest.raises(StoreValidationError, match=reason) as info:
            store.delete_model_version(version_id)
        assert info.value.field == "version_id"
    with pytest.raises(StoreValidationError, match="no model version with id 99"):
        store.delete_model_version(99)

    store.set_active_model_version(None)
    store.delete_model_version(child)
    store.delete_model_version(parent)
    assert [v.name for v in store.list_model_versions()] == ["hitl-2"]
