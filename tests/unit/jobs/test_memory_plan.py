"""The memory planner's decision and its sentences, on exact figures (jobs/memory_plan.py)."""

from __future__ import annotations

import json

import pytest

from medalign_desktop.jobs.memory_plan import (
    FITS,
    MAY_NOT_FIT,
    UNLOAD,
    GiB,
    describe_bytes,
    job_device,
    job_settings,
    plan_job_memory,
)
from training.config import defaults


def test_a_job_with_room_to_spare_fits_beside_the_answering_model():
    plan = plan_job_memory(2 * GiB, 8 * GiB, 3 * GiB, device_label="CPU RAM")
    assert plan.decision == FITS and not plan.unload
    assert plan.status_message(4) == "Job #4 fits in memory (needs about 2.0 GiB, 8.0 GiB free on CPU RAM)."
    assert plan.panel_text("Retrain (B)") == (
        "Estimated memory for a Retrain (B) job: about 2.0 GiB; 8.0 GiB free on CPU RAM"
    )


def test_the_headroom_is_asked_for_beyond_the_estimate():
    # 4 GiB needed, 4.5 GiB free: it fits by the figures, not with 15 % headroom (4.6 GiB wanted)
    assert plan_job_memory(4 * GiB, int(4.5 * GiB), 0).decision == MAY_NOT_FIT
    assert plan_job_memory(4 * GiB, int(4.7 * GiB), 0).decision == FITS
    assert plan_job_memory(4 * GiB, int(4.5 * GiB), 0, headroom=0.0).decision == FITS


def test_unloading_the_answering_model_makes_enough_room():
    plan = plan_job_memory(5 * GiB, 3 * GiB, 3 * GiB, device_label="GPU 0 (NVIDIA H100)")
    assert plan.decision == UNLOAD and plan.unload
    assert plan.status_message(7) == (
        "Unloaded the answering model to make room for job #7 "
        "(needs about 5.0 GiB, 3.0 GiB free on GPU 0 (NVIDIA H100))."
    )
    assert plan.panel_text("Retrain (B)") == (
        "Estimated memory for a Retrain (B) job: about 5.0 GiB; 3.0 GiB free on GPU 0 (NVIDIA H100) "
        "(the answering model will be unloaded while it runs)"
    )


def test_a_job_too_big_even_without_the_model_still_unloads_it_and_says_it_may_not_fit():
    plan = plan_job_memory(12 * GiB, 3 * GiB, 3 * GiB)
    assert plan.decision == MAY_NOT_FIT and plan.unload
    assert plan.status_message(2) == (
        "Job #2 may not fit in memory even with the answering model unloaded (needs about 12 GiB, "
        "3.0 GiB free on CPU RAM); it runs anyway, and if memory runs out it fails with advice on which "
        "settings to lower."
    )
    assert plan.panel_text("Retrain (B)").endswith("(may not fit, even with the answering model unloaded)")


def test_without_an_answering_model_on_the_device_there_is_nothing_to_unload():
    plan = plan_job_memory(5 * GiB, 3 * GiB, 0)
    assert plan.decision == MAY_NOT_FIT and not plan.unload
    assert plan.status_message(1).startswith("Job #1 may not fit in memory (needs about 5.0 GiB, 3.0 GiB")
    assert plan.panel_text("SFT (A)").endswith("free on CPU RAM (may not fit)")


def test_negative_figures_are_refused():
    with pytest.raises(ValueError, match="negative"):
        plan_job_memory(-1, GiB, 0)


@pytest.mark.parametrize(
    "n, text",
    [(12 * GiB, "12 GiB"), (int(2.34 * GiB), "2.3 GiB"), (GiB // 10, "0.1 GiB"), (85 * 2**20, "85 MiB")],
)
def test_figures_read_at_a_glance(n, text):
    assert describe_bytes(n) == text


def test_job_settings_are_the_kinds_defaults_updated_with_config_json(tmp_path):
    config = {"kind": "dpo", "base_model": "/models/llama", "max_length": 256, "output_name": "adapter"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    kind, settings, model_dir = job_settings(tmp_path)
    assert (kind, model_dir) == ("dpo", "/models/llama")
    assert settings["max_length"] == 256 and settings["lora_r"] == defaults("dpo")["lora_r"]


def test_job_settings_name_the_file_when_it_cannot_be_used(tmp_path):
    with pytest.raises(ValueError, match=r"config\.json: the job's config cannot be read"):
        job_settings(tmp_path)
    (tmp_path / "config.json").write_text('{"kind": "nonsense"}')
    with pytest.raises(ValueError, match=r"config\.json: field 'kind' is missing or unknown \('nonsense'\)"):
        job_settings(tmp_path)


def test_the_job_runs_where_the_training_program_would_put_it():
    assert job_device({"device": "auto"}, have_cuda=True) == "cuda"
    assert job_device({"device": "auto"}, have_cuda=False) == "cpu"
    assert job_device({"device": "cpu"}, have_cuda=True) == "cpu"
    assert job_device({}, have_cuda=True) == "cuda"
