"""The `ppo` program in-process on the tiny Llama: events, what trains and what stays frozen, checkpoints,
cancel and failures that leave no half adapter, and config / data errors that name the field or line."""

from __future__ import annotations

import io
import json
import math
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from training import checkpoints, protocol
from training.__main__ import main
from training.config import ConfigError, config_from_dict, defaults
from training.ppo.checkpoints import write_checkpoint
from training.ppo.config import PPOJobConfig

from .conftest import parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

PPO_EXTRAS = ("reward_mean", "kl", "policy_loss", "value_loss", "clip_fraction", "answer_length", "kl_coef")


def run_main(job_dir):
    out = io.StringIO()
    code = main(["ppo", "--job-dir", str(job_dir)], events=out)
    return code, parse_events(out.getvalue())


def capture_models(monkeypatch) -> list:
    """Keep the PPOModels the program builds, to look at its adapters after the run."""
    import training.ppo.model as model_module

    built, real = [], model_module.load_models

    def load_models(config, plan):
        built.append(real(config, plan))
        return built[-1]

    monkeypatch.setattr(model_module, "load_models", load_models)
    return built


def adapter_state(models, adapter: str) -> dict[str, torch.Tensor]:
    """LoRA weights of one adapter, keyed as peft saves them (without the adapter name)."""
    return {
        n.replace(f".{adapter}.", "."): p.detach().clone()
        for n, p in models.peft.named_parameters()
        if f".{adapter}." in n and "lora_" in n
    }


def test_defaults_are_the_research_projects_and_bad_values_are_named():
    config = config_from_dict({"kind": "ppo", "base_model": "/m", "reward_adapter": "/r"})
    assert isinstance(config, PPOJobConfig)
    assert (config.learning_rate, config.batch_size, config.mini_batch_size) == (1e-5, 16, 1)
    assert (config.lora_r, config.lora_alpha, config.clip_range, config.gamma, config.lam) == (
        16,
        32,
        0.2,
        1.0,
        0.95,
    )
    assert defaults("ppo")["init_kl_coef"] == 0.2
    with pytest.raises(ConfigError, match="'reward_adapter' must name a folder"):
        config_from_dict({"kind": "ppo", "base_model": "/m"})
    with pytest.raises(ConfigError, match="'mini_batch_size' must be at most batch_size"):
        config_from_dict({"kind": "ppo", "base_model": "/m", "reward_adapter": "/r", "mini_batch_size": 32})
    with pytest.raises(ConfigError, match="'max_new_tokens' must leave room"):
        config_from_dict({"kind": "ppo", "base_model": "/m", "reward_adapter": "/r", "max_new_tokens": 4096})
    with pytest.raises(ConfigError, match="unknown key 'per_device_train_batch_size'"):
        config_from_dict(
            {"kind": "ppo", "base_model": "/m", "reward_adapter": "/r", "per_device_train_batch_size": 2}
        )


def test_ppo_job_trains_the_policy_only(
    make_ppo_job, tiny_model_dir, tiny_adapters, tiny_reward_adapter, monkeypatch
):
    parent = tiny_adapters[0]
    job_dir = make_ppo_job(parent_adapter=str(parent), learning_rate=1e-3)
    built = capture_models(monkeypatch)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_OK, events[-1]

    kinds = [e.EVENT for e in events if isinstance(e, protocol.Event)]
    assert all(isinstance(e, protocol.Event) for e in events) and kinds[-2:] == ["artifact", "finished"]
    started = next(e for e in events if isinstance(e, protocol.Started))
    assert (started.kind, started.total_steps, started.n_train) == ("ppo", 2, 6)
    metrics = [e for e in events if isinstance(e, protocol.Metric)]
    assert [m.step for m in metrics] == [1, 2]
    for m in metrics:
        assert set(PPO_EXTRAS) <= set(m.extra) and all(math.isfinite(m.extra[k]) for k in PPO_EXTRAS)
        assert math.isfinite(m.loss) and m.learning_rate == 1e-3 and 1 <= m.extra["answer_length"] <= 8
        assert all(m.extra[f"{phase}_s"] > 0 for phase in ("generation", "scoring", "optimisation"))
    assert metrics[0].extra["kl"] == pytest.approx(0.0, abs=1e-5)  # the policy starts as the reference
    assert metrics[1].extra["kl"] != 0.0
    assert [(p.step, p.total) for p in events if isinstance(p, protocol.Progress)] == [(1, 2), (2, 2)]

    (models,) = built
    start = load_file(str(parent / "adapter_model.safetensors"))
    ref = adapter_state(models, "ref")
    assert ref.keys() == start.keys() and all(torch.equal(ref[k], start[k]) for k in start), (
        "the reference moved"
    )
    saved_reward = load_file(str(tiny_reward_adapter / "adapter_model.safetensors"))
    reward = adapter_state(models, "reward")
    assert len(reward) == len(saved_reward) - 1  # all but the score head, which is models.score_head
    for name, tensor in reward.items():
        assert torch.equal(tensor, saved_reward[name]), f"{name} of the reward adapter moved"
    assert torch.equal(models.score_head.weight.detach(), saved_reward["base_model.model.score.weight"])
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    compared = 0
    for name, param in models.peft.get_base_model().named_parameters():
        key = name.replace(".base_layer", "")
        if "lora_" not in key and key in base:
            assert torch.equal(param.detach(), base[key]), f"base weight {key} moved"
            compared += 1
    assert compared == len(base)
    policy = adapter_state(models, "default")
    assert any(not torch.equal(policy[k], start[k]) for k in start), "the policy LoRA did not change"

    # The final adapter is a plain LoRA folder holding the trained policy.
    adapter = job_dir / "adapter"
    assert events[-1].adapter_path == str(adapter)
    final = load_file(str(adapter / "adapter_model.safetensors"))
    assert final.keys() == start.keys() and all(torch.equal(final[k], policy[k]) for k in final)
    info = json.loads((adapter / "training_info.json").read_text())
    assert info["kind"] == "ppo" and info["reward_adapter"] == str(tiny_reward_adapter)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter))

    result = json.loads((job_dir / "result.json").read_text())
    assert result["status"] == "finished" and result["metrics"]["global_step"] == 2
    assert all(result["metrics"][f"{p}_s_per_step"] > 0 for p in ("generation", "scoring", "optimisation"))
    kept = sorted(p.name for p in (job_dir / "checkpoints").iterdir())
    last = result["checkpoints"]["last"]
    assert kept == ["step-1", "step-2"] and last["path"].endswith("step-2") and last["step"] == 2
    # 6 prompts are too few to hold back 8: no evaluation, so "best" is the rollouts' reward_mean.
    assert (last["metric"], last["value"]) == ("reward_mean", metrics[1].extra["reward_mean"])
    assert started.n_eval == 0 and result["metrics"]["stopped_early"] is False
    assert any("too few to hold back" in e.message for e in events if isinstance(e, protocol.Log))
    assert (job_dir / "checkpoints" / "step-2" / "value_head.safetensors").is_file()
    assert not list(job_dir.rglob("*.tmp-*"))


def fake_save(fail: bool = False):
    """A ``save`` for write_checkpoint writing a policy folder, or failing half-way when ``fail`` is set."""

    def save(folder):
        (folder / "adapter_config.json").write_text("{}")
        if fail:
            raise OSError(28, "No space left on device")
        (folder / "adapter_model.safetensors").write_bytes(b"weights")

    return save


def test_checkpoints_keep_the_last_and_the_best(tmp_path):
    for step, reward in enumerate([0.5, 0.9, 0.1, 0.2], start=1):
        write_checkpoint(
            tmp_path, step, fake_save(), "eval_reward_mean", reward, {"eval_reward_mean": reward}
        )
    kept = checkpoints.list_checkpoints(tmp_path)
    assert [c.step for c in kept] == [2, 4]
    best, last = checkpoints.best_and_last(kept)
    assert (best.step, last.step) == (2, 4)
    assert (best.metric, best.value, best.higher_is_better) == ("eval_reward_mean", 0.9, True)
    with pytest.raises(OSError):
        write_checkpoint(tmp_path, 5, fake_save(fail=True), "eval_reward_mean", 2.0, {})
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-2", "step-4"]
    # A checkpoint between evaluations has no value: never the best while one has a value.
    write_checkpoint(tmp_path, 6, fake_save(), "eval_reward_mean", None, {"reward_mean": 9.0})
    best, last = checkpoints.find_best_and_last(tmp_path)
    assert (best.step, last.step, last.value) == (2, 6, None)


def test_sigterm_mid_run_keeps_the_last_complete_checkpoint(make_ppo_job, monkeypatch):
    job_dir = make_ppo_job(max_steps=5, checkpoint_every=2)
    from training.ppo.loop import PPOStep

    calls, original = [], PPOStep._optimiser_step

    def optimiser_step(self, scored, rows):
        calls.append(rows)
        if len(calls) == 5:  # step 3's first optimiser step (2 per PPO step)
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, scored, rows)

    monkeypatch.setattr(PPOStep, "_optimiser_step", optimiser_step)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_CANCELLED and events[-1].cancelled
    assert len(calls) == 5  # stopped at the next optimiser step
    assert [e.step for e in events if isinstance(e, protocol.Progress)] == [1, 2]
    assert [p.name for p in (job_dir / "checkpoints").iterdir()] == ["step-2"]
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "value_head.safetensors",
        "checkpoint.json",
    } <= {p.name for p in (job_dir / "checkpoints" / "step-2").iterdir()}
    assert not (job_dir / "adapter").exists() and not list(job_dir.rglob("*.tmp-*"))
    assert json.loads((job_dir / "result.json").read_text())["status"] == "cancelled"


def test_sigterm_while_a_checkpoint_is_written_finishes_that_checkpoint(make_ppo_job, monkeypatch):
    job_dir = make_ppo_job(max_steps=3)
    from training.ppo.model import PPOModels

    original = PPOModels.save_policy

    def save_policy(self, folder, with_value_head=False):
        os.kill(os.getpid(), signal.SIGTERM)
        return original(self, folder, with_value_head)

    monkeypatch.setattr(PPOModels, "save_policy", save_policy)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_CANCELLED
    assert [p.name for p in (job_dir / "checkpoints").iterdir()] == ["step-1"]
    assert (job_dir / "checkpoints" / "step-1" / "adapter_model.safetensors").is_file()
    assert not (job_dir / "adapter").exists() and not list(job_dir.rglob("*.tmp-*"))


def test_a_failed_checkpoint_write_leaves_no_half_folder(make_ppo_job, monkeypatch):
    job_dir = make_ppo_job(max_steps=2)
    from training.ppo.model import PPOModels

    def broken(self, folder, with_value_head=False):
        fake_save(fail=True)(folder)

    monkeypatch.setattr(PPOModels, "save_policy", broken)
    code, events = run_main(job_dir)
    assert code == protocol.EXIT_FAILED and "No space left on device" in events[-1].reason
    assert not list((job_dir / "checkpoints").iterdir()) and not (job_dir / "adapter").exists()


def test_input_problems_are_named(make_ppo_job, tmp_path):
    code, events = run_main(make_ppo_job(name="j1", reward_adapter=str(tmp_path / "nope")))
    assert code == 1 and f"Reward adapter folder {tmp_path / 'nope'}" in events[-1].reason
    job_dir = make_ppo_job(name="j2")
    with (job_dir / "data" / "prompts.jsonl").open("a") as handle:
        handle.write('{"prompt": [{"role": "assistant", "content": "hi"}]}\n')
    code, events = run_main(job_dir)
    assert code == 1 and "prompts.jsonl line 7: the prompt must end with a user message" in events[-1].reason
    code, events = run_main(make_ppo_job(name="j3", max_length=20, max_new_tokens=8))
    assert code == 1 and "No prompt fits" in events[-1].reason and "Raise max_length" in events[-1].advice
    job_dir = make_ppo_job(name="j4")
    (job_dir / "adapter").mkdir()
    code, events = run_main(job_dir)
    assert code == 1 and "already exists" in events[-1].reason


def test_sigkill_after_checkpoints_leaves_only_complete_ones_and_no_adapter(make_ppo_job):
    """A real kill (no handler runs): every checkpoint folder left is complete and loadable; no adapter."""
    import subprocess
    import sys

    from peft import PeftConfig

    job_dir = make_ppo_job(max_steps=200, checkpoint_every=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "ppo", "--job-dir", str(job_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )  # fmt: skip
    try:
        artifacts = 0
        for line in process.stdout:
            event = protocol.parse_line(line)
            artifacts += isinstance(event, protocol.Artifact)
            if artifacts >= 2:  # two checkpoints written: kill during the next step
                process.kill()
                break
    finally:
        process.kill()
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    kept = checkpoints.list_checkpoints(job_dir)
    assert kept, "a complete checkpoint must survive the kill"
    for checkpoint in kept:
        files = {p.name for p in checkpoint.path.iterdir()}
        assert {"adapter_config.json", "adapter_model.safetensors", "checkpoint.json"} <= files
        load_file(checkpoint.path / "adapter_model.safetensors")  # whole, not truncated
        assert PeftConfig.from_pretrained(str(checkpoint.path)).r > 0
    # Folders a kill can leave mid-write are never named like a checkpoint or the adapter.
    for path in (job_dir / "checkpoints").iterdir():
        assert path in {c.path for c in kept} or ".tmp-" in path.name or ".trash-" in path.name, path
    assert not (job_dir / "adapter").exists()
