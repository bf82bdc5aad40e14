"""The dpo program in-process on the tiny Llama: reference handling, what trains, metrics, saving, failures."""

from __future__ import annotations

import io
import json
import math
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from training import protocol
from training.__main__ import main
from training.config import ConfigError, DPOJobConfig, config_from_dict, defaults, load_config
from training.data import DataError
from training.dpo import prepare, run
from training.pair_data import load_pairs

from .conftest import pair, parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def run_main(job_dir, kind="dpo"):
    out = io.StringIO()
    code = main([kind, "--job-dir", str(job_dir)], events=out)
    return code, parse_events(out.getvalue())


def params(model, part: str) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if part in n}


def test_dpo_defaults_follow_the_research_project_and_halve_the_hitl_batch():
    dpo, hitl = defaults("dpo"), defaults("hitl")
    assert (dpo["learning_rate"], dpo["beta"], dpo["max_length"], dpo["warmup_ratio"]) == (
        5e-6,
        0.1,
        1024,
        0.1,
    )
    assert dpo["loss_type"] == "sigmoid" and dpo["num_train_epochs"] == 1.0
    # 2 sequences per pair: half the pairs per forward, the same effective batch as hitl
    assert dpo["per_device_train_batch_size"] * 2 == hitl["per_device_train_batch_size"]
    effective = dpo["per_device_train_batch_size"] * dpo["gradient_accumulation_steps"]
    assert effective == hitl["per_device_train_batch_size"] * hitl["gradient_accumulation_steps"]
    assert dpo["gradient_checkpointing"] is True
    with pytest.raises(ConfigError, match="'beta' must be greater than 0"):
        config_from_dict({"kind": "dpo", "base_model": "/m", "beta": 0})
    with pytest.raises(ConfigError, match="'loss_type' must be one of"):
        config_from_dict({"kind": "dpo", "base_model": "/m", "loss_type": "hinge-ish"})
    assert isinstance(config_from_dict({"kind": "dpo", "base_model": "/m", "beta": 1}), DPOJobConfig)


def test_fresh_lora_trains_against_the_base_and_logs_reward_metrics(make_pair_job, events_buffer):
    job_dir = make_pair_job()
    job = prepare(load_config(job_dir), job_dir)
    model = job.trainer.model
    assert "ref" not in model.peft_config  # reference = the base with the adapter disabled
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    job.trainer.train()

    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert {n for n in trainable if "lora_B" in n} <= changed
    assert changed <= trainable, f"frozen parameters changed: {sorted(changed - trainable)[:3]}"

    events = parse_events(events_buffer.getvalue())
    metrics = [e for e in events if isinstance(e, protocol.Metric) and e.loss is not None]
    assert [m.step for m in metrics] == [1, 2, 3]
    for m in metrics:
        assert math.isfinite(m.loss) and m.grad_norm is not None
        assert {"rewards/accuracies", "rewards/margins", "rewards/chosen", "logps/chosen"} <= set(m.extra)
        assert 0 <= m.extra["rewards/accuracies"] <= 1
    # step 1: the adapter is still the reference (B = 0), so the loss is log 2 and the margin 0
    assert metrics[0].loss == pytest.approx(math.log(2), abs=1e-4)
    assert metrics[0].extra["rewards/margins"] == pytest.approx(0, abs=1e-4)
    started = next(e for e in events if isinstance(e, protocol.Started))
    assert (started.kind, started.total_steps, started.n_train) == ("dpo", 3, 8)


def test_parent_adapter_is_start_and_frozen_reference(make_pair_job, tiny_adapters, events_buffer):
    parent = tiny_adapters[0]
    job_dir = make_pair_job(parent_adapter=str(parent), learning_rate=1e-3)
    job = prepare(load_config(job_dir), job_dir)
    model = job.trainer.model
    saved = load_file(str(parent / "adapter_model.safetensors"))
    default, ref = params(model, ".default."), params(model, ".ref.")
    assert len(default) == len(ref) == len(saved)
    for name, tensor in default.items():  # both start from the parent's weights
        assert torch.equal(tensor, saved[name.replace(".default", "")])
        assert torch.equal(ref[name.replace(".default.", ".ref.")], tensor)
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".ref." in n)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    job.trainer.train()

    assert all(torch.equal(p, params(model, ".ref.")[n]) for n, p in ref.items()), "the reference moved"
    now = dict(model.named_parameters())
    assert all(torch.equal(p, now[n].detach()) for n, p in base_before.items()), "the base moved"
    assert any(not torch.equal(p, now[n].detach()) for n, p in default.items()), "the adapter did not train"
    events = parse_events(events_buffer.getvalue())
    first = next(e for e in events if isinstance(e, protocol.Metric) and e.loss is not None)
    assert first.loss == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at the start


def test_dpo_end_to_end_saves_only_the_trained_adapter(make_pair_job, tiny_adapters):
    parent = tiny_adapters[0]
    job_dir = make_pair_job(parent_adapter=str(parent), learning_rate=1e-3, eval_pairs=2)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events
    kinds = [e.EVENT for e in events if isinstance(e, protocol.Event)]
    assert kinds[-2:] == ["artifact", "finished"] and "started" in kinds
    adapter = job_dir / "adapter"
    assert sorted(p.name for p in adapter.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "training_info.json",
    ]  # no "ref/" subfolder
    trained = load_file(str(adapter / "adapter_model.safetensors"))
    saved = load_file(str(parent / "adapter_model.safetensors"))
    assert trained.keys() == saved.keys() and any(not torch.equal(trained[k], saved[k]) for k in saved)
    info = json.loads((adapter / "training_info.json").read_text())
    assert info == {"kind": "dpo", "base_model": info["base_model"], "parent_adapter": str(parent)}
    result = json.loads((job_dir / "result.json").read_text())
    metrics = result["metrics"]
    assert result["status"] == "finished" and metrics["global_step"] == 3 and metrics["n_eval"] == 2
    assert math.isfinite(metrics["final_loss"]) and 0 <= metrics["rewards/accuracies"] <= 1
    assert math.isfinite(metrics["rewards/margins"]) and math.isfinite(metrics["eval_loss"])
    assert 0 <= metrics["eval_rewards/accuracies"] <= 1
    evals = [e for e in events if isinstance(e, protocol.Metric) and e.eval_loss is not None]
    assert evals and "eval_rewards/margins" in evals[-1].extra
    assert not list(job_dir.glob("*.tmp-*")) and not (job_dir / "trainer-scratch").exists()


def test_bad_pair_line_is_named_before_training(make_pair_job):
    job_dir = make_pair_job()
    bad = pair(99)
    del bad["rejected"]
    with (job_dir / "data" / "train.jsonl").open("a") as handle:
        handle.write(json.dumps(bad) + "\n")
    code, events = run_main(job_dir)
    assert code == 1 and "train.jsonl line 9: 'rejected' is missing" in events[-1].reason
    assert not any(isinstance(e, protocol.Started) for e in events)
    assert json.loads((job_dir / "result.json").read_text())["status"] == "failed"


def test_sigterm_stops_at_a_step_boundary_without_an_adapter(make_pair_job, monkeypatch):
    job_dir = make_pair_job(max_steps=50)
    from training.callbacks import EventCallback

    original = EventCallback.on_step_end

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the app's Cancel, arriving mid-run
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(EventCallback, "on_step_end", on_step_end)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_CANCELLED
    assert isinstance(events[-1], protocol.Failed) and events[-1].cancelled
    assert [e.step for e in events if isinstance(e, protocol.Progress)] == [1, 2]
    assert not (job_dir / "adapter").exists() and not list(job_dir.glob("adapter.tmp-*"))
    assert json.loads((job_dir / "result.json").read_text())["status"] == "cancelled"


def test_prompts_longer_than_max_length_fail_with_advice(make_pair_job):
    code, events = run_main(make_pair_job(max_length=8))
    assert code == 1 and "max_length=8" in events[-1].reason and "Raise max_length" in events[-1].advice


def test_run_refuses_to_overwrite(make_pair_job, events_buffer):
    job_dir = make_pair_job()
    (job_dir / "adapter").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        run(load_config(job_dir), job_dir)
    assert len(load_pairs(job_dir / "data" / "train.jsonl")) == 8


def test_eval_pairs_whose_prompt_fills_max_length_turn_evaluation_off(make_pair_job):
    job_dir = make_pair_job(max_steps=1)
    long_pair = pair(100)
    long_pair["prompt"][1]["content"] = "symptom " * 200
    (job_dir / "data" / "eval.jsonl").write_text(json.dumps(long_pair) + "\n")
    code, events = run_main(job_dir)
    assert code == 0, events
    warnings = [e.message for e in events if isinstance(e, protocol.Log) and e.level == "warning"]
    assert any("No evaluation pair is left" in w for w in warnings)
    assert not any(isinstance(e, protocol.Metric) and e.eval_loss is not None for e in events)
    assert events[-1].metrics["n_eval"] == 0


# -- pair data (no torch) --


def write_lines(path, *lines) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p.pop("chosen"), "line 2: 'chosen' is missing"),
        (lambda p: p["prompt"].pop(), "line 2: the prompt must end with a user message"),
        (lambda p: p["rejected"][0].update(content="  "), "line 2: the rejected answer is empty"),
        (lambda p: p["chosen"][0].update(role="user"), r"line 2: chosen\[0\] has role 'user'"),
        (lambda p: p.update(rejected="text"), "line 2: 'rejected' must be a non-empty list"),
        (lambda p: p.update(id=[1]), "line 2: 'id' must be a string"),
    ],
)
def test_bad_pairs_are_named_by_line(tmp_path, change, message):
    bad = pair(1)
    change(bad)
    path = tmp_path / "train.jsonl"
    write_lines(path, json.dumps(pair(0)), json.dumps(bad))
    with pytest.raises(DataError, match=message):
        load_pairs(path)


def test_pairs_ids_and_eval_split(tmp_path):
    from training.pair_data import load_pair_data, pair_line

    data = tmp_path / "data"
    data.mkdir()
    lines = [json.dumps({k: v for k, v in pair(i).items() if k != "id"}) for i in range(9)]
    write_lines(data / "train.jsonl", pair_line(pair(9)["prompt"], "good", "bad", "edit-9"), "", *lines)
    pairs = load_pairs(data / "train.jsonl")
    assert pairs.ids[:3] == ["edit-9", "line-3", "line-4"] and len(pairs) == 10
    assert set(pairs.columns()) == {"prompt", "chosen", "rejected"}
    train, held = load_pair_data(tmp_path, 0.2, seed=42)
    assert (len(train), len(held)) == (8, 2) and not set(train.ids) & set(held.ids)
    assert load_pair_data(tmp_path, 0.2, seed=42)[1].ids == held.ids  # same seed, same split
    write_lines(data / "eval.jsonl", json.dumps(pair(50)))
    train, held = load_pair_data(tmp_path, 0.2, seed=42)
    assert (len(train), held.ids) == (10, ["pair-50"])
