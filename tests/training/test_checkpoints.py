"""Checkpoints: training/checkpoints.py itself (best / last, ties, unevaluated ones, incomplete folders, pruning)
and the trainer programs' checkpoints in that layout (checkpoint.json last, a loadable adapter, last + best kept,
DPO's frozen reference left out)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training import protocol
from training.__main__ import main
from training.checkpoints import (
    INFO_FILE,
    best_and_last,
    find_best_and_last,
    list_checkpoints,
    prune,
    write_info,
)

from .conftest import parse_events

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def fake_checkpoint(
    job_dir: Path, step: int, value: float | None, higher: bool = False, complete=True
) -> Path:
    folder = job_dir / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    if complete:
        write_info(
            folder, step, "eval_loss", value, higher, {"eval_loss": value} if value is not None else {}
        )
    return folder


# -- training/checkpoints.py --


def test_best_is_the_lowest_value_and_last_the_highest_step(tmp_path):
    for step, value in ((2, 1.5), (4, 0.9), (6, 1.1)):
        fake_checkpoint(tmp_path, step, value)
    best, last = find_best_and_last(tmp_path)
    assert (best.step, best.value, last.step) == (4, 0.9, 6)
    assert best.describe() == "step 4 (eval_loss 0.9)" and best.metrics == {"eval_loss": 0.9}


def test_ties_go_to_the_later_step_and_higher_is_better_flips(tmp_path):
    for step, value in ((2, 0.5), (4, 0.5), (6, 0.7)):
        fake_checkpoint(tmp_path, step, value)
    assert find_best_and_last(tmp_path)[0].step == 4
    rewards = tmp_path / "ppo"
    for step, value in ((1, 0.2), (2, 0.9), (3, 0.4)):
        fake_checkpoint(rewards, step, value, higher=True)
    assert find_best_and_last(rewards)[0].step == 2


def test_unevaluated_checkpoints_are_never_best_unless_none_is_evaluated(tmp_path):
    fake_checkpoint(tmp_path, 2, 1.0)
    fake_checkpoint(tmp_path, 4, None)
    best, last = find_best_and_last(tmp_path)
    assert (
        (best.step, last.step) == (2, 4) and last.value is None and last.describe().endswith("not evaluated)")
    )
    bare = tmp_path / "bare"
    fake_checkpoint(bare, 1, None)
    fake_checkpoint(bare, 3, None)
    best, last = find_best_and_last(bare)
    assert best is last and last.step == 3
    assert best_and_last([]) == (None, None) and find_best_and_last(tmp_path / "nothing") == (None, None)


def test_incomplete_folders_are_not_checkpoints(tmp_path):
    fake_checkpoint(tmp_path, 2, 1.0)
    fake_checkpoint(tmp_path, 8, None, complete=False)  # half written: no checkpoint.json yet
    broken = fake_checkpoint(tmp_path, 6, 0.1)
    (broken / INFO_FILE).write_text('{"step": 6, "val')  # cut off
    nan = fake_checkpoint(tmp_path, 4, None)
    (nan / INFO_FILE).write_text(json.dumps({"step": 4, "metric": "eval_loss", "value": float("nan")}))
    (tmp_path / "checkpoints" / "stray.txt").write_text("not a folder")
    trash = fake_checkpoint(tmp_path, 3, 0.2)  # renamed away for deletion when the process was killed
    trash.rename(trash.with_name("checkpoint-3.trash-123"))
    assert [(c.step, c.value) for c in list_checkpoints(tmp_path)] == [(2, 1.0), (4, None)]


def test_prune_keeps_the_last_and_the_best_only(tmp_path):
    for step, value in ((1, 2.0), (2, 0.5), (3, 1.0), (4, 1.5)):
        fake_checkpoint(tmp_path, step, value)
    half = fake_checkpoint(tmp_path, 5, None, complete=False)
    prune(tmp_path)
    assert [c.step for c in list_checkpoints(tmp_path)] == [2, 4]
    assert half.is_dir()  # not a checkpoint: not prune's business
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "checkpoint-2",
        "checkpoint-4",
        "checkpoint-5",
    ]


# -- the programs' checkpoints --


def run_main(job_dir, kind="hitl", *flags):
    out = io.StringIO()
    code = main([kind, "--job-dir", str(job_dir), *flags], events=out)
    return code, parse_events(out.getvalue())


def eval_losses(events) -> dict[int, float]:
    return {e.step: e.eval_loss for e in events if isinstance(e, protocol.Metric) and e.eval_loss is not None}


@pytest.mark.slow
def test_hitl_checkpoints_layout_and_last_plus_best(make_job, tiny_model_dir, monkeypatch):
    import training.callbacks as callbacks

    seen_when_info_written: dict[int, set[str]] = {}
    real_write_info = callbacks.write_info

    def recording_write_info(folder, step, *args):
        seen_when_info_written[step] = set(os.listdir(folder))
        real_write_info(folder, step, *args)

    monkeypatch.setattr(callbacks, "write_info", recording_write_info)
    # lr 1e-2 at a constant rate overshoots on the tiny model: eval_loss falls, then rises (best != last)
    job_dir = make_job(
        n_examples=16,
        max_steps=4,
        eval_steps=1,
        learning_rate=1e-2,
        warmup_ratio=0.0,
        lr_scheduler_type="constant",
    )
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events[-1]

    # checkpoint.json came last: the adapter and the resume state were complete before it
    resume_state = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"}
    assert sorted(seen_when_info_written) == [1, 2, 3, 4]
    for files in seen_when_info_written.values():
        assert {
            "adapter_config.json",
            "adapter_model.safetensors",
        } | resume_state <= files and INFO_FILE not in files
    artifacts = [e.path for e in events if isinstance(e, protocol.Artifact) and e.name == "checkpoint"]
    assert artifacts == [str(job_dir / "checkpoints" / f"checkpoint-{s}") for s in (1, 2, 3, 4)]

    evals = eval_losses(events)
    best_step = min(evals, key=evals.get)
    kept = list_checkpoints(job_dir)
    best, last = best_and_last(kept)
    assert best.step == best_step != last.step == 4, evals  # only the last and the best are left
    assert [c.step for c in kept] == sorted({best_step, 4})
    for c in kept:
        assert c.metric == "eval_loss" and c.value == pytest.approx(evals[c.step]) and not c.higher_is_better
        assert "loss" in c.metrics and "learning_rate" in c.metrics

    result = json.loads((job_dir / "result.json").read_text())
    assert result["checkpoints"]["best"] == {
        "path": str(best.path),
        "step": best.step,
        "metric": "eval_loss",
        "value": best.value,
    }
    assert result["checkpoints"]["last"]["step"] == 4
    assert result["metrics"]["best_step"] == best.step and result["metrics"]["best_eval_loss"] == best.value
    assert result["metrics"]["stopped_early"] is False

    # the last checkpoint is the final adapter; each checkpoint is a plain peft adapter folder
    final = load_file(job_dir / "adapter" / "adapter_model.safetensors")
    for name, tensor in load_file(last.path / "adapter_model.safetensors").items():
        assert torch.equal(tensor, final[name]), name
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), best.path)
    loaded = {n: p for n, p in model.named_parameters() if "lora_B" in n}
    assert loaded and any(p.abs().sum() > 0 for p in loaded.values())  # trained weights, not the zero init

    # a fresh start in the same folder would mix runs: refused, naming the folder and what to do
    (job_dir / "adapter").rename(job_dir / "adapter-1")
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_FAILED
    assert "already holds checkpoints" in events[-1].reason and "--resume" in events[-1].advice


@pytest.mark.slow
def test_without_evaluation_the_checkpoints_have_no_value_and_best_is_last(make_job):
    job_dir = make_job(n_examples=8, max_steps=3, eval_steps=2)  # 8 < 10 examples: no slice held back
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK
    kept = list_checkpoints(job_dir)
    assert [(c.step, c.value) for c in kept] == [(3, None)]  # saved at 2 and 3; best == last, so one kept
    result = json.loads((job_dir / "result.json").read_text())
    assert result["checkpoints"]["best"] == result["checkpoints"]["last"]
    assert "best_eval_loss" not in result["metrics"] and "best_step" not in result["metrics"]


@pytest.mark.slow
def test_dpo_checkpoints_hold_only_the_trained_adapter(make_pair_job, tiny_adapters):
    parent = tiny_adapters[0]
    job_dir = make_pair_job(
        parent_adapter=str(parent), learning_rate=1e-3, n_pairs=12, max_steps=2, eval_steps=1
    )
    code, events = run_main(job_dir, "dpo")
    assert code == protocol.EXIT_OK, events[-1]
    best, last = find_best_and_last(job_dir)
    assert last.step == 2 and best.value is not None
    for checkpoint in {best.path, last.path}:
        assert not [p for p in checkpoint.iterdir() if p.is_dir()]  # no "ref/" copy of the reference
        config = json.loads((checkpoint / "adapter_config.json").read_text())
        assert config["r"] == json.loads((parent / "adapter_config.json").read_text())["r"]
    final = load_file(job_dir / "adapter" / "adapter_model.safetensors")
    saved = load_file(last.path / "adapter_model.safetensors")
    assert saved.keys() == final.keys() and all(torch.equal(saved[k], final[k]) for k in final)
    start = load_file(parent / "adapter_model.safetensors")
    assert any(
        not torch.equal(saved[k], start[k]) for k in start
    )  # the trained "default", not the frozen "ref"
