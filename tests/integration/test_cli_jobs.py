"""`medalign train|evaluate|report|jobs|versions` end to end on the tiny model, through the app's job queue:

import the sample questions -> feedback stored -> `medalign train hitl` (a real training process) -> version
registered -> `evaluate` on the held-out questions -> `report out.html` -> the version exported as a bundle
and imported into a second workspace, where it answers the same greedy text. And the faults: Ctrl+C cancels
cleanly (no version), a bundle for another base model is refused by name, a bad --set names its key.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from medalign_desktop import cli
from medalign_desktop.store import Store

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "sample_questions.jsonl"
FAST = ["--set", "max_steps=2", "--set", "max_length=64", "--set", "per_device_train_batch_size=2",
        "--set", "gradient_checkpointing=false"]  # fmt: skip


def medalign(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """The command as a terminal runs it: its own process (and Qt event loop)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "medalign_desktop.cli", *args], capture_output=True, text=True, env=env,
        timeout=timeout, cwd=ROOT,
    )  # fmt: skip


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir):
    """The sample questions imported (a fifth held out) and one clinician's verdicts on four answers."""
    db = tmp_path_factory.mktemp("cli-ws") / "ws.sqlite"
    assert cli.main(["import", str(SAMPLE), "--db", str(db), "--held-out", "0.2"]) == 0
    with Store.open(db) as store:
        for i, prompt_id in enumerate(store.queue()[:4]):  # training questions (held-out ones never queue)
            generation = store.add_generation(prompt_id, "A model answer.", model_version="base", settings={})
            if i % 2:
                store.record_verdict(
                    generation, "edit", annotator="dr-a", edited_text="The corrected answer."
                )
            else:
                store.record_verdict(generation, "accept", annotator="dr-a")
    return db


@pytest.fixture(scope="module")
def trained(workspace, tiny_model_dir):
    done = medalign("train", "hitl", "--db", str(workspace), "--model", str(tiny_model_dir), "--json", *FAST)
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    return json_lines(done.stdout)


@pytest.mark.slow
def test_train_registers_a_version_and_streams_events(trained, workspace):
    kinds = [e.get("event") for e in trained]
    assert "started" in kinds and "metric" in kinds and "finished" in kinds
    result = trained[-1]
    assert result["result"] == "succeeded" and result["version"] == "B-iter-1"
    with Store.open(workspace) as store:
        (version,) = store.list_model_versions()
        job = store.get_job(version.job_id)
    assert job.state == "succeeded" and job.config["trigger"] == "cli"
    assert any(e.get("event") == "metric" and e.get("loss") for e in trained)


@pytest.mark.slow
def test_evaluate_and_report(trained, workspace, tiny_model_dir, tmp_path, capsys):
    done = medalign(
        "evaluate", "--db", str(workspace), "--model", str(tiny_model_dir), "--max-new-tokens", "8"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "B-iter-1" in done.stdout and "base" in done.stdout
    out = tmp_path / "report.html"
    assert cli.main(["report", str(out), "--db", str(workspace)]) == 0
    assert "B-iter-1" in out.read_text(encoding="utf-8")
    pdf = medalign("report", str(tmp_path / "report.pdf"), "--db", str(workspace))  # Qt's layout, offscreen
    assert pdf.returncode == 0, pdf.stderr[-2000:]
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    capsys.readouterr()
    assert cli.main(["jobs", "list", "--db", str(workspace)]) == 0
    listing = capsys.readouterr().out
    assert "hitl" in listing and "evaluate" in listing and "succeeded" in listing
    assert cli.main(["versions", "list", "--json", "--db", str(workspace)]) == 0
    (version,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert version["name"] == "B-iter-1" and version["parent"] is None and version["kind"] == "hitl"
    assert cli.main(["versions", "activate", "B-iter-1", "--db", str(workspace)]) == 0
    assert cli.main(["versions", "delete", "B-iter-1", "--db", str(workspace)]) == cli.EXIT_ERROR
    assert "is the active version" in capsys.readouterr().err


@pytest.mark.slow
def test_a_bundle_answers_the_same_in_another_workspace(trained, workspace, tiny_model_dir, tmp_path, capsys):
    from medalign_desktop.engine import Engine, SamplingSettings

    bundle = tmp_path / "B-iter-1.tar"
    assert cli.main(["versions", "export", "B-iter-1", str(bundle), "--db", str(workspace)]) == 0
    other = tmp_path / "other.sqlite"
    args = ["versions", "import", str(bundle), "--db", str(other), "--model", str(tiny_model_dir)]
    assert cli.main(args) == 0
    with Store.open(workspace) as a, Store.open(other) as b:
        (source,) = a.list_model_versions()
        (copy,) = b.list_model_versions()
    assert copy.name == "B-iter-1" and copy.kind == "hitl" and copy.adapter_path != source.adapter_path
    installed = Path(copy.adapter_path).parent
    assert all((p.stat().st_mode & 0o077) == 0 for p in [installed, *installed.rglob("*")])  # private

    def greedy(adapter: str) -> str:
        engine = Engine()
        engine.load(str(tiny_model_dir), device="cpu", dtype="float32")
        engine.load_adapter(adapter)
        return engine.generate("What is sepsis?", SamplingSettings(temperature=0.0, max_new_tokens=12)).text

    assert greedy(copy.adapter_path) == greedy(source.adapter_path)
    assert cli.main(args) == cli.EXIT_ERROR  # the same name again
    assert "already has a version named 'B-iter-1'" in capsys.readouterr().err

    other_model = tmp_path / "OtherModel"
    shutil.copytree(tiny_model_dir, other_model)
    third = [
        "versions",
        "import",
        str(bundle),
        "--db",
        str(tmp_path / "third.sqlite"),
        "--model",
        str(other_model),
    ]
    assert cli.main(third) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "OtherModel" in err and tiny_model_dir.name in err


@pytest.mark.slow
def test_ctrl_c_cancels_without_a_version(workspace, tiny_model_dir):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "medalign_desktop.cli", "train", "sft", "--db", str(workspace), "--model",
            str(tiny_model_dir), "--json", *FAST[2:], "--set", "max_steps=400"]  # fmt: skip
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    for line in process.stdout:  # wait until it trains
        if '"event": "progress"' in line or '"event": "metric"' in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err[-2000:]
    result = json_lines(out)[-1]
    assert result["result"] == "cancelled" and result["version"] is None
    with Store.open(workspace) as store:
        assert store.get_job(result["job_id"]).state == "cancelled"
        assert not [v for v in store.list_model_versions() if v.job_id == result["job_id"]]


def test_a_setting_the_kind_lacks_is_named(workspace, tiny_model_dir, capsys):
    args = ["train", "dpo", "--db", str(workspace), "--model", str(tiny_model_dir), "--set", "max_stepz=3"]
    assert cli.main(args) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "max_stepz" in err and "max_steps" in err and "Traceback" not in err
