"""The `ppo` program: ``python -m training ppo --job-dir DIR`` (one process, one device).

Steps: check config, folders and prompts (before torch loads) -> load the base once with the policy,
reference and reward adapters (training/ppo/model.py) -> ``max_steps`` PPO steps (training/ppo/loop.py), each
reported as a `metric` event (reward_mean, kl, policy_loss, value_loss, clip_fraction, answer_length,
kl_coef, timings) and a `progress` event -> a checkpoint every ``checkpoint_every`` steps (the last and the
best kept; training/ppo/checkpoints.py) -> the final policy adapter saved to ``DIR/<output_name>.tmp-<pid>``
and renamed to ``DIR/<output_name>`` when complete -> ``DIR/result.json``.

Cancel (SIGTERM) stops at the next generate call, forward pass or optimiser step; complete checkpoints stay,
temporary folders are removed, and no final adapter is written.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from training import protocol
from training.cancel import CancelToken
from training.data import DataError
from training.lora import ModelError, check_adapter_folder, check_model_folder
from training.ppo.config import PPOJobConfig
from training.sft import log, write_result


def check_inputs(config: PPOJobConfig, job_dir: Path) -> list[tuple[str, list[dict[str, str]]]]:
    """Cheap checks that fail fast, before torch loads; returns the prompts."""
    from training.ppo.rollout import read_prompts

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ModelError(
            "The ppo program runs in one process on one device: start it with python -m training."
        )
    final_dir = job_dir / config.output_name
    if final_dir.exists():
        raise FileExistsError(f"{final_dir} already exists; refusing to overwrite an earlier adapter.")
    check_model_folder(config.base_model)
    if config.parent_adapter:
        check_adapter_folder(config.parent_adapter)
    try:
        check_adapter_folder(config.reward_adapter)
    except ModelError as exc:
        raise ModelError(str(exc).replace("Parent adapter", "Reward adapter")) from None
    return read_prompts(job_dir)


def run(config: PPOJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Run PPO and save the final policy adapter; returns {adapter_path, metrics, duration_s}. Raises on failure."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    started = time.monotonic()
    raw_prompts = check_inputs(config, job_dir)

    import torch

    from training.lora import choose_device, count_parameters, load_tokenizer
    from training.ppo.loop import PPOStep, PromptSampler
    from training.ppo.model import load_models
    from training.ppo.rollout import tokenize_prompts

    torch.manual_seed(config.seed)
    plan = choose_device(config.device, config.quantization)
    tokenizer = load_tokenizer(config.base_model)
    prompts, skipped = tokenize_prompts(tokenizer, raw_prompts, config.max_prompt_length)
    if not prompts:
        raise DataError(
            f"No prompt fits in max_length - max_new_tokens = {config.max_prompt_length} tokens.",
            advice="Raise max_length, or shorten the system prompt.",
        )
    if skipped:
        log(
            f"Skipped {skipped} of {len(raw_prompts)} prompts longer than {config.max_prompt_length} tokens.",
            "warning",
        )
    log(f"{len(prompts)} prompts; loading {config.base_model} on {plan.describe()}.")
    models = load_models(config, plan)
    cancel.check()
    total = count_parameters(models.peft)[1]
    trainable = sum(p.numel() for p in models.trainable_parameters())  # policy LoRA + value head
    origin = f"continuing from {config.parent_adapter}" if config.parent_adapter else "fresh LoRA"
    log(
        f"Policy LoRA ({origin}): {trainable:,} trainable of {total:,} parameters; reward {config.reward_adapter}."
    )

    cancel.deferred = True  # from here a signal stops at the next forward pass or optimiser step
    ppo = PPOStep(models, tokenizer, config, cancel)
    sampler = PromptSampler(prompts, config.seed)
    history = train(config, job_dir, ppo, sampler, plan.describe(), len(prompts))
    adapter_path = save_final(models, job_dir / config.output_name, cancel, config)
    metrics = summarise(history, job_dir, started)
    metrics.update(n_prompts=len(prompts), n_skipped=skipped, trainable_parameters=trainable)
    protocol.emit(protocol.Artifact(name="adapter", path=str(adapter_path)))
    from training.ppo.checkpoints import best_and_last, list_checkpoints

    best, last = best_and_last(list_checkpoints(job_dir))
    write_result(
        job_dir,
        {
            "status": "finished",
            "kind": config.kind,
            "adapter_path": str(adapter_path),
            "metrics": metrics,
            "checkpoints": {"best": best and str(best.path), "last": last and str(last.path)},
            "config": config.to_dict(),
        },
    )
    return {"adapter_path": str(adapter_path), "metrics": metrics, "duration_s": metrics["duration_s"]}


def train(
    config: PPOJobConfig, job_dir: Path, ppo: Any, sampler: Any, device: str, n_prompts: int
) -> list[Any]:
    """The PPO steps with their events and checkpoints; returns each step's StepStats."""
    from training.ppo.checkpoints import write_checkpoint

    protocol.emit(
        protocol.Started(
            kind=config.kind, total_steps=config.max_steps, n_train=n_prompts, n_eval=0, device=device
        )
    )
    start, history = time.monotonic(), []
    for step in range(1, config.max_steps + 1):
        stats = ppo.run(sampler.take(config.batch_size))
        history.append(stats)
        values = asdict(stats)
        protocol.emit(
            protocol.Metric(
                step=step,
                epoch=round(step * config.batch_size / n_prompts, 4),
                loss=stats.loss,
                learning_rate=config.learning_rate,
                grad_norm=stats.grad_norm,
                extra={k: v for k, v in values.items() if k not in ("loss", "grad_norm")},
            )
        )
        if step % config.checkpoint_every == 0 or step == config.max_steps:
            checkpoint = write_checkpoint(job_dir, step, ppo.models, values)
            protocol.emit(protocol.Artifact(name="checkpoint", path=str(checkpoint.path)))
        elapsed = time.monotonic() - start
        eta = elapsed / step * (config.max_steps - step)
        protocol.emit(
            protocol.Progress(
                step=step, total=config.max_steps, elapsed_s=round(elapsed, 3), eta_s=round(eta, 3)
            )
        )
        ppo.cancel.check()
    return history


def summarise(history: list[Any], job_dir: Path, started: float) -> dict[str, Any]:
    """result.json's metrics: the last step's values, the best reward, and seconds per step by phase."""
    last = asdict(history[-1])
    best_step = max(range(len(history)), key=lambda i: history[i].reward_mean)
    return {
        **last,
        "final_loss": last["loss"],
        "first_reward_mean": history[0].reward_mean,
        "best_reward_mean": history[best_step].reward_mean,
        "best_step": best_step + 1,
        "global_step": len(history),
        **{
            f"{phase}_s_per_step": statistics.mean(getattr(s, f"{phase}_s") for s in history)
            for phase in ("generation", "scoring", "optimisation")
        },
        "duration_s": round(time.monotonic() - started, 3),
    }


def save_final(models: Any, final_dir: Path, cancel: CancelToken, config: PPOJobConfig) -> Path:
    """The policy adapter to a temporary folder, renamed into place only when complete."""
    tmp = final_dir.with_name(f"{final_dir.name}.tmp-{os.getpid()}")
    try:
        models.save_policy(tmp)
        info = {
            "kind": config.kind,
            "base_model": config.base_model,
            "parent_adapter": config.parent_adapter,
            "reward_adapter": config.reward_adapter,
        }
        (tmp / "training_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        cancel.check()  # last chance: after the rename the job counts as finished
        cancel.deferred = True
        os.rename(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final_dir
