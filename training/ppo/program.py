"""The `ppo` program: ``python -m training ppo --job-dir DIR [--resume]`` (one process, one device).

Steps: check config, folders and prompts (before torch loads) -> load the base once with the policy,
reference and reward adapters (training/ppo/model.py) -> hold back evaluation prompts
(training/ppo/evaluation.py) -> ``max_steps`` PPO steps (training/ppo/loop.py), each reported as a `metric`
event (reward_mean, kl, policy_loss, value_loss, clip_fraction, answer_length, kl_coef, timings) and a
`progress` event -> every ``eval_every`` steps an evaluation (a `metric` event with eval_reward_mean, eval_kl,
eval_answer_length; early stopping when it stops improving) -> a checkpoint at every evaluation and every
``checkpoint_every`` steps (the last and the best kept; training/ppo/checkpoints.py) -> the final policy
adapter saved to ``DIR/<output_name>.tmp-<pid>`` and renamed to ``DIR/<output_name>`` when complete ->
``DIR/result.json``.

Cancel (SIGTERM) stops at the next generate call, forward pass or optimiser step; complete checkpoints stay,
temporary folders are removed, and no final adapter is written. ``--resume`` continues from the last complete
checkpoint with the optimiser, RNGs, prompt order and KL coefficient restored (training/ppo/resume.py).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training import protocol
from training.atomic_files import save_folder_atomically
from training.cancel import CancelToken
from training.checkpoints import CheckpointInfo, find_best_and_last
from training.data import DataError
from training.job_folder import EVAL_PROMPTS_FILE, finished_result
from training.lora import check_adapter_folder
from training.ppo.config import PPOJobConfig
from training.runner import check_job_folders, log, write_result, write_training_info

RawPrompts = list[tuple[str, list[dict[str, str]]]]


def check_inputs(config: PPOJobConfig, job_dir: Path) -> tuple[RawPrompts, RawPrompts | None]:
    """Cheap checks that fail fast, before torch loads; returns the prompts and data/eval_prompts.jsonl's."""
    from training.ppo.rollout import read_prompts

    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size > 1:  # the hand-written loop neither all-reduces gradients nor shards rollouts
        raise DataError(
            f"The ppo program runs in one process on one device, and this launch started {world_size} "
            f"(WORLD_SIZE={world_size}): its PPO loop does not share gradients or rollouts between processes, "
            "so each would train its own copy.",
            advice="Start ppo jobs with the plain launcher, python -m training (torchrun / accelerate launch "
            "are for sft, hitl, dpo and reward).",
        )
    check_job_folders(config, job_dir)
    check_adapter_folder(config.reward_adapter, "Reward adapter")
    has_eval_file = (job_dir / EVAL_PROMPTS_FILE).is_file()
    return read_prompts(job_dir), read_prompts(job_dir, EVAL_PROMPTS_FILE) if has_eval_file else None


def resume_checkpoint(config: PPOJobConfig, job_dir: Path) -> CheckpointInfo:
    """The last complete checkpoint, with what resuming needs; a DataError with advice when there is none."""
    from training.ppo.resume import check_resumable

    _, last = find_best_and_last(job_dir)
    if last is None:
        raise DataError(
            f"Nothing to resume: {job_dir / 'checkpoints'} holds no complete checkpoint (the job stopped "
            f"before its first one; one is written every {config.checkpoint_every} steps and at every "
            "evaluation).",
            advice="Start the job again from the beginning.",
        )
    check_resumable(last.path)
    return last


def prepare_prompts(
    config: PPOJobConfig, tokenizer: Any, raw: RawPrompts, raw_eval: RawPrompts | None
) -> Any:
    """Tokenise the prompts (skipping the too long ones, with a warning) and split off the evaluation ones."""
    from training.ppo.evaluation import from_file, hold_back
    from training.ppo.rollout import tokenize_prompts

    prompts, skipped = tokenize_prompts(tokenizer, raw, config.max_prompt_length)
    if not prompts:
        raise DataError(
            f"No prompt fits in max_length - max_new_tokens = {config.max_prompt_length} tokens.",
            advice="Raise max_length, or shorten the system prompt.",
        )
    if skipped:
        log(
            f"Skipped {skipped} of {len(raw)} prompts longer than {config.max_prompt_length} tokens.",
            "warning",
        )
    if raw_eval is None:
        split = hold_back(prompts, config)
    else:
        evaluation, eval_skipped = tokenize_prompts(tokenizer, raw_eval, config.max_prompt_length)
        split = from_file(prompts, evaluation, eval_skipped, config)
    log(split.note)
    return split, skipped


def run(config: PPOJobConfig, job_dir: str | Path, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Run PPO and save the final policy adapter; returns {adapter_path, metrics, duration_s}. Raises on failure."""
    job_dir = Path(job_dir)
    cancel = cancel or CancelToken()
    started = time.monotonic()
    raw_prompts, raw_eval = check_inputs(config, job_dir)
    resume_from = resume_checkpoint(config, job_dir) if config.resume else None

    import torch

    from training.lora import choose_device, count_parameters, load_tokenizer
    from training.ppo.checkpoints import best_and_last_summary, remove_leftovers
    from training.ppo.evaluation import EarlyStopping, Evaluator
    from training.ppo.loop import PPOStep, PromptSampler
    from training.ppo.model import load_models
    from training.ppo.resume import RunState, restore

    torch.manual_seed(config.seed)
    plan = choose_device(config.device, config.quantization)
    tokenizer = load_tokenizer(config.base_model)
    split, skipped = prepare_prompts(config, tokenizer, raw_prompts, raw_eval)
    log(f"{len(split.train)} training prompts; loading {config.base_model} on {plan.describe()}.")
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
    sampler = PromptSampler(split.train, config.seed)
    evaluator = Evaluator(models, tokenizer, config, split.eval, cancel) if split.eval else None
    state = RunState(early=EarlyStopping(config.early_stopping_patience))
    if resume_from is not None:
        remove_leftovers(job_dir)
        state = restore(resume_from.path, ppo, sampler, config.early_stopping_patience)
        log(f"Resuming after step {state.step} of {config.max_steps} from {resume_from.path}.")
    train(config, job_dir, Loop(ppo, sampler, evaluator, state), plan.describe())
    adapter_path = save_final(models, job_dir / config.output_name, cancel, config)
    metrics = summarise(state, started)
    metrics.update(n_prompts=len(split.train), n_eval_prompts=len(split.eval), n_skipped=skipped)
    metrics.update(trainable_parameters=trainable)
    protocol.emit(protocol.Artifact(name="adapter", path=str(adapter_path)))
    summary = best_and_last_summary(job_dir)
    write_result(job_dir, finished_result(config.kind, str(adapter_path), metrics, config.to_dict(), summary))
    return {"adapter_path": str(adapter_path), "metrics": metrics, "duration_s": metrics["duration_s"]}


@dataclass(frozen=True)
class Loop:
    """What the training loop works on: the PPO step, the prompt sampler, the evaluator (None: the run does not
    evaluate) and the run's state (training/ppo/resume.py)."""

    ppo: Any
    sampler: Any
    evaluator: Any
    state: Any


def train(config: PPOJobConfig, job_dir: Path, loop: Loop, device: str) -> None:
    """The PPO steps after ``loop.state.step`` with their events, evaluations and checkpoints."""
    state, n_train = loop.state, len(loop.sampler.prompts)
    n_eval = len(loop.evaluator.prompts) if loop.evaluator else 0
    protocol.emit(
        protocol.Started(
            kind=config.kind, total_steps=config.max_steps, n_train=n_train, n_eval=n_eval, device=device
        )
    )
    start, first = time.monotonic(), state.step
    while state.step < config.max_steps and not state.stopped_early:
        step = state.step + 1
        stats = asdict(loop.ppo.run(loop.sampler.take(config.batch_size)))
        state.step = step
        state.history.append(stats)
        epoch = round(step * config.batch_size / n_train, 4)
        protocol.emit(
            protocol.Metric(
                step=step,
                epoch=epoch,
                loss=stats["loss"],
                learning_rate=config.learning_rate,
                grad_norm=stats["grad_norm"],
                extra={k: v for k, v in stats.items() if k not in ("loss", "grad_norm")},
            )
        )
        evaluation = evaluate(config, loop, step, epoch)
        if evaluation is not None or step % config.checkpoint_every == 0 or step == config.max_steps:
            checkpoint(job_dir, loop, {**stats, **(evaluation or {})})
        elapsed = time.monotonic() - start
        eta = elapsed / (step - first) * (config.max_steps - step)
        protocol.emit(
            protocol.Progress(
                step=step, total=config.max_steps, elapsed_s=round(elapsed, 3), eta_s=round(eta, 3)
            )
        )
        if state.stopped_early:
            log(state.early.sentence(step))
        loop.ppo.cancel.check()


def evaluate(config: PPOJobConfig, loop: Loop, step: int, epoch: float) -> dict[str, float] | None:
    """The evaluation after ``step`` when one is due: a `metric` event, and the early-stopping decision."""
    from training.ppo.evaluation import is_evaluation_step

    if loop.evaluator is None or not is_evaluation_step(step, config):
        return None
    evaluation = asdict(loop.evaluator.run())
    loop.state.evaluations.append({"step": step, **evaluation})
    loop.state.stopped_early = loop.state.early.update(step, evaluation["eval_reward_mean"])
    stopped = {"stopped_early": 1.0} if loop.state.stopped_early else {}  # the app marks the job live
    protocol.emit(protocol.Metric(step=step, epoch=epoch, extra={**evaluation, **stopped}))
    return evaluation


def checkpoint(job_dir: Path, loop: Loop, metrics: dict[str, float]) -> None:
    """Write the checkpoint of ``loop.state.step`` (adapter, value head, resume state) and announce it."""
    from training.ppo.checkpoints import EVAL_METRIC, TRAIN_METRIC, write_checkpoint
    from training.ppo.resume import save_state

    def save(folder: Path) -> None:
        loop.ppo.models.save_policy(folder, with_value_head=True)
        save_state(folder, loop.state, loop.ppo, loop.sampler)

    if loop.evaluator is not None:
        metric, value = EVAL_METRIC, metrics.get(EVAL_METRIC)
    else:
        metric, value = TRAIN_METRIC, metrics[TRAIN_METRIC]
    info = write_checkpoint(job_dir, loop.state.step, save, metric, value, metrics)
    protocol.emit(protocol.Artifact(name="checkpoint", path=str(info.path)))


def summarise(state: Any, started: float) -> dict[str, Any]:
    """result.json's metrics over the whole run (resumed runs included): the last step's values, the best
    reward, the last and the best evaluation, and seconds per step by phase."""
    history = state.history
    last = history[-1]
    best_step = max(range(len(history)), key=lambda i: history[i]["reward_mean"])
    metrics = {
        **last,
        "final_loss": last["loss"],
        "first_reward_mean": history[0]["reward_mean"],
        "best_reward_mean": history[best_step]["reward_mean"],
        "best_step": best_step + 1,
        "global_step": state.step,
        "stopped_early": state.stopped_early,
        **{
            f"{phase}_s_per_step": statistics.mean(s[f"{phase}_s"] for s in history)
            for phase in ("generation", "scoring", "optimisation")
        },
        "duration_s": round(time.monotonic() - started, 3),
    }
    if state.evaluations:
        evaluation = state.evaluations[-1]
        metrics.update({k: evaluation[k] for k in ("eval_reward_mean", "eval_kl", "eval_answer_length")})
        metrics.update(best_eval_reward_mean=state.early.best_value, best_eval_step=state.early.best_step)
    return metrics


def save_final(models: Any, final_dir: Path, cancel: CancelToken, config: PPOJobConfig) -> Path:
    """The policy adapter to a temporary folder, renamed into place only when complete."""

    def write(folder: Path) -> None:
        models.save_policy(folder)
        write_training_info(folder, config, reward_adapter=config.reward_adapter)

    return save_folder_atomically(final_dir, cancel, write)
