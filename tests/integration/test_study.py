"""`medalign study run` on the sample study (resources/sample_study.toml) with the tiny model: A, B, C and D
trained through the app's job queue, evaluated and reported; a second run trains nothing again."""

from __future__ import annotations

import json

import pytest

from medalign_desktop.store import Store
from tests.integration.test_cli_jobs import ROOT, json_lines, medalign

STUDY = ROOT / "resources" / "sample_study.toml"


@pytest.mark.slow
def test_the_sample_study_runs_end_to_end_and_resumes_idempotently(tmp_path, tiny_model_dir):
    db = tmp_path / "study.sqlite"
    args = ("study", "run", str(STUDY), "--db", str(db), "--model", str(tiny_model_dir))
    first = medalign(*args, "--json", timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    started = [e["job_id"] for e in json_lines(first.stdout) if e.get("event") == "started"]
    assert len(started) == 6 and len(set(started)) == 6  # 5 trainings + 1 evaluation, each reported once
    report = (tmp_path / "sample-study-report.html").read_text(encoding="utf-8")
    for name in ("A-sft-1", "B-iter-1", "C-ppo-1", "D-dpo-1"):
        assert name in report, name
    with Store.open(db) as store:
        versions = {v.name: v for v in store.list_model_versions()}
        jobs_before = len(store.list_jobs())
    assert versions["B-iter-1"].parent_id == versions["A-sft-1"].id
    assert versions["D-dpo-1"].parent_id == versions["A-sft-1"].id
    assert versions["C-ppo-1"].parent_id == versions["A-sft-1"].id
    record = json.loads((tmp_path / "study-jobs" / "study-sample.json").read_text())
    assert set(record["steps"]) == {"sft", "hitl", "reward", "ppo", "dpo"}

    again = medalign(*args, "--json", timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    said = [json.loads(line)["study"] for line in again.stdout.splitlines() if line.startswith('{"study"')]
    assert sum(" skipped: " in line for line in said) == 5, said
    with Store.open(db) as store:
        new_jobs = store.list_jobs()[jobs_before:]
    assert [job.kind for job in new_jobs] == ["evaluate"]  # nothing trained twice
