"""A stand-in for `python -m training` that plays a scripted event stream, for job-queue tests.

Usage (as the job runner calls it): fake_training.py KIND --job-dir DIR. DIR/config.json's "fake_mode":
  succeed   started, three metrics with progress, an adapter folder, finished
  fail      started, then a `failed` event (out of memory, with advice), exit 1
  crash     started, one metric, a traceback on stderr, then SIGKILL of itself mid-line
  hang      started, then waits; SIGTERM gives a `failed` "cancelled" event and exit 143
  stubborn  like hang but ignores SIGTERM (the runner must kill it)
  checkpoints  6 steps, a checkpoint (training/checkpoints.py layout) every 2 with eval_loss 1.5, 1.2, 1.3
            (best: step 4, last: step 6), pruned to the best and last; "fake_hang_at": N hangs as "hang"
            after step N unless resumed; with --resume it goes on after the last checkpoint's step, and fails
            if that checkpoint lacks its resume state; "fake_stopped_early": true adds stopped_early
Kind "score" reads data/answers.jsonl and, on success, writes DIR/scores.jsonl with the score
generation_id / 4 - 1 for each answer (mode "bad_scores": a broken line) instead of an adapter.
Kind "evaluate" reads data/questions.jsonl and data/cached.jsonl and writes answers.jsonl and results.json
(contract A of issue 7): version number i (0-based, in config order) answers an MCQ "The answer is X." with
the key when (prompt_id + i) is even, else with another option; other questions get "<version> on <id>".
Cached answers are passed through unchanged. Mode "bad_answers" adds a record with a bad prompt_id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training import checkpoints  # noqa: E402
from training.protocol import Failed, Finished, Metric, Progress, Started, emit  # noqa: E402

# Program-specific metrics, as the real programs name them (scaled by the step number).
EXTRAS = {
    "dpo": {"rewards/accuracies": 0.25, "rewards/margins": 0.1},
    "reward": {"accuracy": 0.25},
    "ppo": {"reward_mean": 0.5, "kl": 0.01, "policy_loss": 0.1, "value_loss": 0.2},
}


def main() -> int:
    job_dir = Path(sys.argv[sys.argv.index("--job-dir") + 1])
    config = json.loads((job_dir / "config.json").read_text())
    mode = config.get("fake_mode", "succeed")
    files = {"ppo": "prompts.jsonl", "score": "answers.jsonl", "evaluate": "questions.jsonl"}
    data = job_dir / "data" / files.get(config["kind"], "train.jsonl")
    n_train = sum(1 for _ in data.open())
    emit(Started(kind=config["kind"], total_steps=3, n_train=n_train, n_eval=0, device="cpu"))
    print("some library chatter on stdout")
    if mode == "fail":
        emit(Failed(reason="Out of GPU memory.", advice="Lower per_device_train_batch_size or max_length."))
        return 1
    if mode in ("hang", "stubborn"):
        on_sigterm(stubborn=mode == "stubborn")
        emit(Metric(step=1, loss=2.0))
        hang()
    if mode == "checkpoints":
        return run_with_checkpoints(job_dir, config, resume="--resume" in sys.argv)
    for step in (1, 2, 3):
        extra = EXTRAS.get(config["kind"], {})
        emit(
            Metric(
                step=step, epoch=step / 3, loss=3.0 - step * 0.5, learning_rate=1e-4, grad_norm=1.0,
                extra={name: value * step for name, value in extra.items()},
            )
        )  # fmt: skip
        emit(Progress(step=step, total=3, elapsed_s=0.1 * step, eta_s=0.1 * (3 - step)))
        if mode == "crash" and step == 1:
            print("Traceback (most recent call last):\nRuntimeError: boom", file=sys.stderr, flush=True)
            sys.stdout.write('{"event": "metric", "ste')
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    if config["kind"] == "score":
        return write_scores(job_dir, data, mode)
    if config["kind"] == "evaluate":
        return write_evaluation(job_dir, config, mode)
    adapter = job_dir / config.get("output_name", "adapter")
    shutil.copytree(config["fake_adapter_source"], adapter)
    emit(Finished(adapter_path=str(adapter), metrics={"train_loss": 1.5}, duration_s=0.3))
    return 0


def on_sigterm(stubborn: bool = False) -> None:
    """SIGTERM gives a `failed` "cancelled" event and exit 143 (``stubborn``: it is ignored)."""
    if stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: (emit(Failed(reason="cancelled")), os._exit(143)))


def hang() -> None:
    while True:
        time.sleep(0.05)


CHECKPOINT_EVAL = {2: 1.5, 4: 1.2, 6: 1.3}  # eval_loss at the checkpoint steps: best 4, last 6
TOTAL_STEPS = 6


def save_checkpoint(job_dir: Path, config: dict, step: int) -> None:
    """A checkpoint in the contract layout: adapter files, the resume state, checkpoint.json last."""
    folder = job_dir / checkpoints.CHECKPOINTS_DIR / f"step-{step:05d}"
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.copytree(config["fake_adapter_source"], tmp)
    (tmp / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    value = CHECKPOINT_EVAL[step]
    checkpoints.write_info(tmp, step, "eval_loss", value, False, {"eval_loss": value})
    os.rename(tmp, folder)
    checkpoints.prune(job_dir)


def run_with_checkpoints(job_dir: Path, config: dict, resume: bool) -> int:
    first = 1
    on_sigterm()
    if resume:
        _best, last = checkpoints.find_best_and_last(job_dir)
        state = last.path / "trainer_state.json" if last else None
        if state is None or json.loads(state.read_text())["global_step"] != last.step:
            emit(Failed(reason="No checkpoint with its resume state to resume from."))
            return 1
        first = last.step + 1
    for step in range(first, TOTAL_STEPS + 1):
        emit(
            Metric(step=step, loss=3.0 - 0.25 * step, learning_rate=1e-4, eval_loss=CHECKPOINT_EVAL.get(step))
        )
        emit(Progress(step=step, total=TOTAL_STEPS, elapsed_s=0.1 * step, eta_s=0.1 * (TOTAL_STEPS - step)))
        if step in CHECKPOINT_EVAL:
            save_checkpoint(job_dir, config, step)
        if step == config.get("fake_hang_at") and not resume:
            hang()
    adapter = job_dir / config.get("output_name", "adapter")
    shutil.copytree(config["fake_adapter_source"], adapter)
    metrics = {"train_loss": 1.75, "global_step": TOTAL_STEPS, "resumed_from": first - 1}
    if config.get("fake_stopped_early"):
        metrics["stopped_early"] = TOTAL_STEPS
    emit(Finished(adapter_path=str(adapter), metrics=metrics, duration_s=0.6))
    return 0


def write_scores(job_dir: Path, answers: Path, mode: str) -> int:
    ids = [json.loads(line)["generation_id"] for line in answers.read_text().splitlines() if line.strip()]
    lines = [json.dumps({"generation_id": g, "score": g / 4 - 1}) for g in ids]
    if mode == "bad_scores":
        lines.append('{"generation_id": 1, "score": "high"}')
    (job_dir / "scores.jsonl").write_text("\n".join(lines) + "\n")
    emit(Finished(adapter_path=str(job_dir / "scores.jsonl"), metrics={"n_scored": len(ids)}, duration_s=0.1))
    return 0


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fake_answer(index: int, version: str, question: dict) -> str:
    options, key = question.get("options"), question.get("answer_key")
    if not options or not key:
        return f"{version} on {question['prompt_id']}"
    letters = sorted(options) if isinstance(options, dict) else [chr(65 + i) for i in range(len(options))]
    wrong = next(letter for letter in letters if letter != key)
    return f"The answer is {key if (question['prompt_id'] + index) % 2 == 0 else wrong}."


def version_results(rows: list[dict], questions: list[dict], reward: bool) -> dict:
    mcq = [r for r in rows if r["correct"] is not None]
    n_ref = sum(1 for q in questions if q.get("reference_answer"))
    correct = sum(1 for r in mcq if r["correct"])
    return {
        "n_questions": len(rows), "n_mcq": len(mcq), "mcq_correct": correct,
        "mcq_unparsed": sum(1 for r in mcq if r["parsed_option"] is None),
        "accuracy": correct / len(mcq) if mcq else None, "n_with_reference": n_ref,
        "rouge_l": 0.5 if n_ref else None, "bleu": 12.5 if n_ref else None,
        "reward_mean": 0.25 if reward else None,
        "mean_length_tokens": sum(r["n_tokens"] for r in rows) / len(rows),
        "n_generated": sum(1 for r in rows if not r["cached"]), "n_cached": sum(1 for r in rows if r["cached"]),
    }  # fmt: skip


def write_evaluation(job_dir: Path, config: dict, mode: str) -> int:
    questions = _jsonl(job_dir / "data" / "questions.jsonl")
    cached = {(c["version"], c["prompt_id"]): c for c in _jsonl(job_dir / "data" / "cached.jsonl")}
    answers, results = [], {}
    for index, version in enumerate(v["name"] for v in config["versions"]):
        rows = []
        for question in questions:
            hit = cached.get((version, question["prompt_id"]))
            text = hit["text"] if hit else fake_answer(index, version, question)
            parsed = text[-2] if text.startswith("The answer is ") else None
            key = question.get("answer_key") if question.get("options") else None
            rows.append({
                "version": version, "prompt_id": question["prompt_id"], "text": text,
                "n_tokens": len(text.split()), "finish_reason": "stop", "cached": hit is not None,
                "parsed_option": parsed, "correct": (parsed == key) if key else None,
                "reward": 0.25 if config.get("reward_adapter") else None,
            })  # fmt: skip
        answers += rows
        results[version] = version_results(rows, questions, bool(config.get("reward_adapter")))
    lines = [json.dumps(a) for a in answers]
    if mode == "bad_answers":
        lines.append(json.dumps({"version": answers[0]["version"], "prompt_id": "first", "text": "x"}))
    (job_dir / "answers.jsonl").write_text("\n".join(lines) + "\n")
    settings = {"max_new_tokens": config["max_new_tokens"], "temperature": 0,
                "system_prompt": config["system_prompt"], "seed": config.get("seed", 0)}  # fmt: skip
    (job_dir / "results.json").write_text(json.dumps({"settings": settings, "versions": results}))
    n_generated = sum(1 for a in answers if not a["cached"])
    metrics = {"n_versions": len(results), "n_questions": len(questions), "n_generated": n_generated}
    emit(Finished(adapter_path=str(job_dir / "results.json"), metrics=metrics, duration_s=0.1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
