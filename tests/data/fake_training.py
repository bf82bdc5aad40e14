"""A stand-in for `python -m training` that plays a scripted event stream, for job-queue tests.

Usage (as the job runner calls it): fake_training.py KIND --job-dir DIR. DIR/config.json's "fake_mode":
  succeed   started, three metrics with progress, an adapter folder, finished
  fail      started, then a `failed` event (out of memory, with advice), exit 1
  crash     started, one metric, a traceback on stderr, then SIGKILL of itself mid-line
  hang      started, then waits; SIGTERM gives a `failed` "cancelled" event and exit 143
  stubborn  like hang but ignores SIGTERM (the runner must kill it)
Kind "score" reads data/answers.jsonl and, on success, writes DIR/scores.jsonl with the score
generation_id / 4 - 1 for each answer (mode "bad_scores": a broken line) instead of an adapter.
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
    files = {"ppo": "prompts.jsonl", "score": "answers.jsonl"}
    data = job_dir / "data" / files.get(config["kind"], "train.jsonl")
    n_train = sum(1 for _ in data.open())
    emit(Started(kind=config["kind"], total_steps=3, n_train=n_train, n_eval=0, device="cpu"))
    print("some library chatter on stdout")
    if mode == "fail":
        emit(Failed(reason="Out of GPU memory.", advice="Lower per_device_train_batch_size or max_length."))
        return 1
    if mode in ("hang", "stubborn"):
        if mode == "hang":
            signal.signal(signal.SIGTERM, lambda *_: (emit(Failed(reason="cancelled")), os._exit(143)))
        else:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit(Metric(step=1, loss=2.0))
        while True:
            time.sleep(0.05)
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
    adapter = job_dir / config.get("output_name", "adapter")
    shutil.copytree(config["fake_adapter_source"], adapter)
    emit(Finished(adapter_path=str(adapter), metrics={"train_loss": 1.5}, duration_s=0.3))
    return 0


def write_scores(job_dir: Path, answers: Path, mode: str) -> int:
    ids = [json.loads(line)["generation_id"] for line in answers.read_text().splitlines() if line.strip()]
    lines = [json.dumps({"generation_id": g, "score": g / 4 - 1}) for g in ids]
    if mode == "bad_scores":
        lines.append('{"generation_id": 1, "score": "high"}')
    (job_dir / "scores.jsonl").write_text("\n".join(lines) + "\n")
    emit(Finished(adapter_path=str(job_dir / "scores.jsonl"), metrics={"n_scored": len(ids)}, duration_s=0.1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
