"""The reward program in-process on the tiny Llama: LoRA + score head, accuracy logged, saving, scoring."""

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
from training.config import defaults, load_config
from training.reward import prepare
from training.reward_score import load_reward_model, score_conversations, score_texts

from .conftest import pair, parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def run_main(job_dir, kind="reward"):
    out = io.StringIO()
    code = main([kind, "--job-dir", str(job_dir)], events=out)
    return code, parse_events(out.getvalue())


def conversations(item: dict) -> tuple[list, list]:
    return item["prompt"] + item["chosen"], item["prompt"] + item["rejected"]


def test_reward_defaults_hold_back_a_slice():
    config = defaults("reward")
    assert config["learning_rate"] == 1e-5 and config["eval_fraction"] > 0 and config["kind"] == "reward"


def test_lora_and_score_head_train_the_base_stays(make_pair_job, events_buffer):
    job_dir = make_pair_job(kind="reward", learning_rate=1e-3, eval_fraction=0.0)
    job = prepare(load_config(job_dir), job_dir)
    model = job.trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("score" in n for n in trainable), "the score head must train"
    assert all("lora_" in n or "score.modules_to_save" in n for n in trainable)
    job.trainer.train()

    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert {n for n in trainable if "lora_B" in n or "score" in n} <= changed
    assert changed <= trainable, f"frozen parameters changed: {sorted(changed - trainable)[:3]}"
    metrics = [e for e in parse_events(events_buffer.getvalue()) if isinstance(e, protocol.Metric)]
    assert [m.step for m in metrics if m.loss is not None] == [1, 2, 3]
    for m in metrics:
        assert math.isfinite(m.loss) and 0 <= m.extra["accuracy"] <= 1 and "margin" in m.extra


def test_reward_job_end_to_end_logs_held_back_accuracy(make_pair_job):
    job_dir = make_pair_job(kind="reward", n_pairs=10, eval_fraction=0.2)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events
    started = next(e for e in events if isinstance(e, protocol.Started))
    assert (started.kind, started.n_train, started.n_eval) == ("reward", 8, 2)
    evals = [e for e in events if isinstance(e, protocol.Metric) and e.eval_loss is not None]
    assert evals and 0 <= evals[-1].extra["eval_accuracy"] <= 1
    adapter = job_dir / "adapter"
    saved = load_file(str(adapter / "adapter_model.safetensors"))
    assert any("score" in k for k in saved) and any("lora_A" in k for k in saved)
    assert json.loads((adapter / "adapter_config.json").read_text())["task_type"] == "SEQ_CLS"
    assert json.loads((adapter / "training_info.json").read_text())["kind"] == "reward"
    result = json.loads((job_dir / "result.json").read_text())
    metrics = result["metrics"]
    assert result["status"] == "finished" and metrics["global_step"] == 3
    assert 0 <= metrics["eval_accuracy"] <= 1 and 0 <= metrics["accuracy"] <= 1
    assert math.isfinite(metrics["eval_loss"]) and math.isfinite(metrics["final_loss"])
    assert not list(job_dir.glob("*.tmp-*")) and not (job_dir / "trainer-scratch").exists()


def test_trained_reward_model_prefers_the_chosen_answers(make_pair_job, tiny_model_dir):
    # An easy, separable toy set: a careful dose vs a careless one, 20 optimiser steps at a high rate.
    job_dir = make_pair_job(
        kind="reward", n_pairs=8, eval_fraction=0.0, learning_rate=3e-3, max_steps=20,
        per_device_train_batch_size=4,
    )  # fmt: skip
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events
    adapter = job_dir / "adapter"
    items = [pair(i) for i in range(8)]
    torch.manual_seed(123)  # a random fresh head would change the scores; the adapter's head must win
    chosen = score_texts(tiny_model_dir, adapter, [conversations(item)[0] for item in items])
    torch.manual_seed(456)
    rejected = score_texts(tiny_model_dir, adapter, [conversations(item)[1] for item in items])
    assert sum(c > r for c, r in zip(chosen, rejected, strict=True)) >= 7, (chosen, rejected)
    # batching (right padding) gives the same scores as one at a time
    model, tokenizer = load_reward_model(tiny_model_dir, adapter)
    mixed = [conversations(items[0])[0], conversations(items[1])[1], conversations(items[2])[0]]
    one_by_one = [score_conversations(model, tokenizer, [c])[0] for c in mixed]
    assert score_conversations(model, tokenizer, mixed) == pytest.approx(one_by_one, abs=1e-5)
    assert one_by_one[0] == pytest.approx(chosen[0], abs=1e-5)

    # a second job continues from this reward model: its LoRA and its score head
    second = make_pair_job(kind="reward", name="job2", parent_adapter=str(adapter), max_steps=1)
    job = prepare(load_config(second), second)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    head = next(p for n, p in job.trainer.model.named_parameters() if "score.modules_to_save" in n)
    assert torch.equal(head.detach(), next(v for k, v in weights.items() if "score" in k))


def test_a_chat_adapter_is_not_a_reward_parent(make_pair_job, tiny_adapters, tiny_model_dir):
    code, events = run_main(make_pair_job(kind="reward", parent_adapter=str(tiny_adapters[0])))
    assert code == 1 and "not a reward adapter" in events[-1].reason
    assert str(tiny_adapters[0]) in events[-1].reason
    with pytest.raises(ValueError, match="not a reward adapter"):
        score_texts(tiny_model_dir, tiny_adapters[0], [])


def test_bad_pair_line_is_named(make_pair_job):
    job_dir = make_pair_job(kind="reward")
    with (job_dir / "data" / "train.jsonl").open("a") as handle:
        handle.write("\n" + json.dumps({**pair(50), "chosen": pair(50)["rejected"]}) + "\n")
    code, events = run_main(job_dir)
    assert code == 1 and "train.jsonl line 10: 'chosen' and 'rejected' are the same" in events[-1].reason


def test_pairs_longer_than_max_length_are_left_out(make_pair_job):
    job_dir = make_pair_job(kind="reward", max_steps=1, eval_fraction=0.0)
    long_pair = pair(99)
    long_pair["chosen"][0]["content"] = "dose " * 200
    with (job_dir / "data" / "train.jsonl").open("a") as handle:
        handle.write(json.dumps(long_pair) + "\n")
    code, events = run_main(job_dir)
    assert code == 0, events
    warnings = [e.message for e in events if isinstance(e, protocol.Log) and e.level == "warning"]
    assert any("Dropped 1 of 9 pairs" in w for w in warnings)
    assert next(e for e in events if isinstance(e, protocol.Started)).n_train == 8


def test_sigterm_cancels_without_an_adapter(make_pair_job, monkeypatch):
    job_dir = make_pair_job(kind="reward", max_steps=50, eval_fraction=0.0)
    from training.callbacks import EventCallback

    original = EventCallback.on_step_end

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(EventCallback, "on_step_end", on_step_end)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_CANCELLED and events[-1].cancelled
    assert not (job_dir / "adapter").exists() and not list(job_dir.glob("adapter.tmp-*"))
    assert json.loads((job_dir / "result.json").read_text())["status"] == "cancelled"
