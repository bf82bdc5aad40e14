"""The sft / hitl programs in-process on the tiny Llama: loss mask, what trains, parent adapters, saving."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from training import protocol
from training.__main__ import main
from training.config import load_config
from training.sft import prepare

from .conftest import SYSTEM, example, parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def run_main(job_dir, kind="hitl"):
    import io

    out = io.StringIO()
    code = main([kind, "--job-dir", str(job_dir)], events=out)
    return code, parse_events(out.getvalue())


def lora_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def test_loss_is_on_the_answer_tokens_only(make_job, events_buffer):
    job_dir = make_job()
    job = prepare(load_config(job_dir), job_dir)
    trainer = job.trainer
    tokenizer = trainer.processing_class
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    input_ids, labels = batch["input_ids"], batch["labels"]  # (3, T), (3, T)
    assert input_ids.shape == labels.shape and input_ids.shape[0] == 3
    for row in range(3):
        item = example(row)
        prompt_ids = tokenizer.apply_chat_template(item["prompt"], add_generation_prompt=True, tokenize=True)
        n_prompt = len(prompt_ids["input_ids"] if hasattr(prompt_ids, "keys") else prompt_ids)
        real = batch["attention_mask"][row].bool()  # (T,) False on padding
        assert (labels[row, :n_prompt] == -100).all(), "prompt tokens must not be trained on"
        assert (labels[row][~real] == -100).all(), "padding must not be trained on"
        trained = input_ids[row][labels[row] != -100]
        assert torch.equal(trained, labels[row][labels[row] != -100])
        text = tokenizer.decode(trained)
        assert text.startswith(item["completion"][0]["content"])
        assert SYSTEM not in text and "What is the usual" not in text
        assert len(trained) > 0 and n_prompt + len(trained) == int(real.sum())


def test_training_changes_lora_only_and_logs_metrics(make_job, events_buffer):
    job_dir = make_job(max_steps=3)
    job = prepare(load_config(job_dir), job_dir)
    model = job.trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    job.trainer.train()

    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert {n for n in trainable if "lora_B" in n} <= changed  # B starts at zero and must move
    assert changed <= trainable, f"frozen parameters changed: {sorted(changed - trainable)[:3]}"

    events = parse_events(events_buffer.getvalue())
    metrics = [e for e in events if isinstance(e, protocol.Metric) and e.loss is not None]
    assert [m.step for m in metrics] == [1, 2, 3]
    assert all(
        math.isfinite(m.loss) and m.learning_rate is not None and m.grad_norm is not None for m in metrics
    )
    assert all(m.tokens_per_s and m.tokens_per_s > 0 for m in metrics)
    progress = [e for e in events if isinstance(e, protocol.Progress)]
    assert [(p.step, p.total) for p in progress] == [(1, 3), (2, 3), (3, 3)] and progress[-1].eta_s == 0
    started = [e for e in events if isinstance(e, protocol.Started)]
    assert (
        started
        and started[0].total_steps == 3
        and started[0].n_train == 8
        and started[0].device.startswith("cpu")
    )


def test_hitl_end_to_end_saves_a_complete_adapter(make_job, monkeypatch):
    job_dir = make_job()
    renames = []
    real_rename = os.rename

    def checking_rename(src, dst):  # the folder must be complete before it takes the final name
        if os.path.basename(os.path.dirname(dst)) == "checkpoints":  # pruning renames old checkpoints away
            return real_rename(src, dst)
        assert {"adapter_config.json", "adapter_model.safetensors"} <= set(os.listdir(src))
        assert ".tmp-" in str(src)
        renames.append((str(src), str(dst)))
        real_rename(src, dst)

    monkeypatch.setattr("training.atomic_files.os.rename", checking_rename)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events
    kinds = [e.EVENT for e in events if isinstance(e, protocol.Event)]
    assert kinds[0] == "log" and kinds[-2:] == ["artifact", "finished"] and "started" in kinds
    assert all(isinstance(e, protocol.Event) for e in events)
    finished = events[-1]
    adapter = job_dir / "adapter"
    assert finished.adapter_path == str(adapter) and renames == [(renames[0][0], str(adapter))]
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert not list(job_dir.glob("*.tmp-*")) and not (job_dir / "trainer-scratch").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 16
    result = json.loads((job_dir / "result.json").read_text())
    assert result["status"] == "finished" and result["metrics"]["global_step"] == 3
    assert math.isfinite(result["metrics"]["train_loss"]) and finished.metrics["n_train"] == 8


def test_hitl_continues_from_the_parent_adapter(make_job, tiny_adapters, events_buffer):
    parent = tiny_adapters[0]
    job_dir = make_job(parent_adapter=str(parent), max_steps=2)
    job = prepare(load_config(job_dir), job_dir)
    saved = load_file(str(parent / "adapter_model.safetensors"))
    initial = lora_state(job.trainer.model)
    # peft saves "...q_proj.lora_A.weight"; in the model it is "...q_proj.lora_A.default.weight"
    assert len(initial) == len(saved)
    for name, tensor in initial.items():
        key = name.replace(".default", "")
        assert torch.equal(tensor, saved[key]), f"{name} does not start from the parent's weights"
    assert all(p.requires_grad for n, p in job.trainer.model.named_parameters() if "lora_" in n)

    from training.sft import run

    result = run(load_config(job_dir), job_dir)
    trained = load_file(str(job_dir / "adapter" / "adapter_model.safetensors"))
    assert trained.keys() == saved.keys()
    assert any(not torch.equal(trained[k], saved[k]) for k in saved)
    assert (
        json.loads((job_dir / "adapter" / "adapter_config.json").read_text())["r"] == 4
    )  # the parent's rank
    info = json.loads((job_dir / "adapter" / "training_info.json").read_text())
    assert info["parent_adapter"] == str(parent) and result["adapter_path"] == str(job_dir / "adapter")


def test_sft_with_eval_file_reports_eval_loss(make_job):
    job_dir = make_job(kind="sft", max_steps=2, eval_examples=2)
    code, events = run_main(job_dir, kind="sft")
    assert code == 0, events
    evals = [e for e in events if isinstance(e, protocol.Metric) and e.eval_loss is not None]
    assert evals and math.isfinite(evals[-1].eval_loss)
    started = next(e for e in events if isinstance(e, protocol.Started))
    assert (started.kind, started.n_eval) == ("sft", 2)
    assert "eval_loss" in events[-1].metrics


def test_sigterm_stops_at_a_step_boundary_without_an_adapter(make_job, monkeypatch):
    job_dir = make_job(max_steps=50)
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
    steps = [e.step for e in events if isinstance(e, protocol.Progress)]
    assert steps == [1, 2]
    assert not (job_dir / "adapter").exists() and not list(job_dir.glob("adapter.tmp-*"))
    assert json.loads((job_dir / "result.json").read_text())["status"] == "cancelled"
    assert signal.getsignal(signal.SIGTERM) is not None  # handlers restored


def test_failed_save_leaves_no_adapter(make_job, monkeypatch):
    job_dir = make_job(max_steps=1)
    from peft import PeftModel

    def broken_save(self, path, **kwargs):
        os.makedirs(path, exist_ok=True)
        (open(os.path.join(path, "adapter_config.json"), "w")).write("{}")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PeftModel, "save_pretrained", broken_save)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_FAILED
    assert "No space left on device" in events[-1].reason
    assert not (job_dir / "adapter").exists() and not list(job_dir.glob("adapter.tmp-*"))


@pytest.mark.parametrize(
    "error, reason",
    [
        (
            lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
            "Out of GPU memory",
        ),
        (lambda: MemoryError(), "Out of memory (RAM)"),
    ],
)
def test_out_of_memory_gives_advice(make_job, monkeypatch, error, reason):
    def boom(*args, **kwargs):
        raise error()

    monkeypatch.setattr("training.sft.prepare", boom)
    code, events = run_main(make_job())
    assert code == protocol.EXIT_FAILED
    failed = events[-1]
    assert failed.reason == reason
    for setting in ("per_device_train_batch_size", "max_length", "gradient_checkpointing"):
        assert setting in failed.advice
    if reason == "Out of GPU memory":
        assert "4bit" in failed.advice


def test_bad_base_model_folder_is_named(make_job, tmp_path):
    missing = tmp_path / "no-such-model"
    code, events = run_main(make_job(base_model=str(missing)))
    assert code == protocol.EXIT_FAILED and str(missing) in events[-1].reason
    empty = tmp_path / "empty-model"
    empty.mkdir()
    code, events = run_main(make_job(name="job2", base_model=str(empty)))
    assert "config.json" in events[-1].reason and str(empty) in events[-1].reason


def test_bad_parent_adapter_is_named(make_job, tmp_path):
    code, events = run_main(make_job(parent_adapter=str(tmp_path)))
    assert code == 1 and "adapter_config.json" in events[-1].reason and str(tmp_path) in events[-1].reason


def test_bad_data_line_is_named(make_job):
    job_dir = make_job()
    with (job_dir / "data" / "train.jsonl").open("a") as handle:
        handle.write('{"prompt": [{"role": "user", "content": "hi"}]}\n')
    code, events = run_main(job_dir)
    assert code == 1 and "train.jsonl line 9: 'completion' is missing" in events[-1].reason


def test_empty_train_file(make_job):
    job_dir = make_job()
    (job_dir / "data" / "train.jsonl").write_text("")
    code, events = run_main(job_dir)
    assert code == 1 and "train.jsonl has no examples" in events[-1].reason


def test_prompts_longer_than_max_length(make_job):
    code, events = run_main(make_job(max_length=8))
    assert code == 1 and "max_length=8" in events[-1].reason and "Raise max_length" in events[-1].advice


def test_existing_output_is_not_overwritten(make_job):
    job_dir = make_job()
    (job_dir / "adapter").mkdir()
    code, events = run_main(job_dir)
    assert code == 1 and "already exists" in events[-1].reason


def test_examples_whose_prompt_fills_max_length_are_dropped_with_a_warning(make_job):
    job_dir = make_job(max_steps=1)
    long_prompt = example(99)
    long_prompt["prompt"][1]["content"] = "symptom " * 200
    with (job_dir / "data" / "train.jsonl").open("a") as handle:
        handle.write(json.dumps(long_prompt) + "\n")
    code, events = run_main(job_dir)
    assert code == 0
    warnings = [e for e in events if isinstance(e, protocol.Log) and e.level == "warning"]
    assert any("Dropped 1 of 9 examples" in w.message for w in warnings)
    assert next(e for e in events if isinstance(e, protocol.Started)).n_train == 8
