"""Training speed: the `hitl` program's trainer (events, cancel checks) against a bare TRL SFTTrainer.

Both train the same LoRA (r=16 on q/k/v/o/gate/up/down) on the same prompt/completion data with the same
SFTConfig values; the bare one is built the way TRL's docs do it (``peft_config=``, default callbacks minus
the printer). Rounds alternate between the two so machine noise hits both alike. Reports the median
seconds per optimiser step of each (after warm-up steps) and their ratio (target < 1.05: the protocol costs
nothing measurable), plus tokens/s of ours.

    python benchmarks/training_speed.py [--model tiny|smollm2|PATH] [--rounds 3] [--steps 6] [--max-length 256]

``tiny`` is a random 2-layer Llama (hidden 64) with the SmolLM2 tokenizer, like the tests' model; ``smollm2``
is the demo model converted into the tests' cache. Last line: one JSON object (../shared/DESIGN.md).
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_machine, quiet_offline, scratch_with_model, training_parser  # noqa: E402

quiet_offline()

QUESTION = "A 67-year-old with atrial fibrillation and CKD stage 3 asks about anticoagulation. Patient {i}: what now?"
ANSWER = (
    "Assess stroke risk (CHA2DS2-VASc) and bleeding risk (HAS-BLED), check creatinine clearance, and prefer a "
    "DOAC dosed for renal function; review interacting drugs and follow up kidney function every 6 months. "
) * 3


def write_job(job_dir: Path, model: Path, steps: int, max_length: int, batch: int) -> None:
    (job_dir / "data").mkdir(parents=True)
    with (job_dir / "data" / "train.jsonl").open("w") as handle:
        for i in range(steps * batch):
            handle.write(json.dumps({
                "prompt": [{"role": "system", "content": "You are a careful clinician."},
                           {"role": "user", "content": QUESTION.format(i=i)}],
                "completion": [{"role": "assistant", "content": ANSWER}],
            }) + "\n")  # fmt: skip
    config = {"kind": "hitl", "base_model": str(model), "max_steps": steps, "max_length": max_length,
              "per_device_train_batch_size": batch, "gradient_accumulation_steps": 1}  # fmt: skip
    (job_dir / "config.json").write_text(json.dumps(config))


class StepTimer:
    """Seconds between consecutive optimiser steps (the first step includes set-up; dropped as warm-up)."""

    @staticmethod
    def make():
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def __init__(self):
                self.times: list[float] = []

            def on_train_begin(self, args, state, control, **kwargs):
                self.times = [time.perf_counter()]

            def on_step_end(self, args, state, control, **kwargs):
                self.times.append(time.perf_counter())

        return _Timer()


def ours(job_dir: Path) -> tuple[list[float], int]:
    from training import protocol
    from training.config import load_config
    from training.sft import prepare

    protocol.set_event_stream(io.StringIO())
    job = prepare(load_config(job_dir), job_dir)
    timer = StepTimer.make()
    job.trainer.add_callback(timer)
    job.trainer.train()
    return [
        b - a for a, b in zip(timer.times, timer.times[1:], strict=False)
    ], job.trainer.state.num_input_tokens_seen


def bare(job_dir: Path) -> list[float]:
    """TRL's documented way: model path + peft_config, our hyperparameters, no event callback."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from training.config import load_config
    from training.data import load_examples
    from training.sft import build_sft_args

    config = load_config(job_dir)
    model = AutoModelForCausalLM.from_pretrained(config.base_model, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    args: SFTConfig = build_sft_args(config, job_dir, on_cpu=True, bf16=False, has_eval=False)
    args.include_num_input_tokens_seen = "no"
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])  # fmt: skip
    examples = load_examples(job_dir / "data" / "train.jsonl")
    timer = StepTimer.make()
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_dict(examples.columns()),
                         processing_class=tokenizer, peft_config=lora, callbacks=[timer])  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return [b - a for a, b in zip(timer.times, timer.times[1:], strict=False)]


def main() -> None:
    parser = training_parser(__doc__, default_model="tiny")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps per run (the first is warm-up)")
    parser.add_argument("--batch", type=int, default=2)
    options = parser.parse_args()

    with scratch_with_model("training-speed-", options.model) as (scratch, model):
        ours_steps: list[float] = []
        bare_steps: list[float] = []
        tokens_per_s: list[float] = []
        for round_ in range(options.rounds):
            job = scratch / f"ours-{round_}"
            write_job(job, model, options.steps, options.max_length, options.batch)
            steps, tokens = ours(job)
            ours_steps += steps[1:]
            tokens_per_s.append(tokens / sum(steps))
            job = scratch / f"bare-{round_}"
            write_job(job, model, options.steps, options.max_length, options.batch)
            bare_steps += bare(job)[1:]
            print(f"round {round_ + 1}: ours {statistics.median(steps[1:]):.3f} s/step, "
                  f"bare {statistics.median(bare_steps[-(options.steps - 1):]):.3f} s/step", file=sys.stderr)  # fmt: skip

    ours_s, bare_s = statistics.median(ours_steps), statistics.median(bare_steps)
    ratio = ours_s / bare_s
    print_machine(options.model)
    print(f"ours {ours_s:.3f} s/step, bare TRL {bare_s:.3f} s/step, ratio {ratio:.3f}")
    result = {
        "benchmark": "training_speed",
        "model": options.model,
        "max_length": options.max_length,
        "batch": options.batch,
        "ours_s_per_step": round(ours_s, 4),
        "bare_s_per_step": round(bare_s, 4),
        "ratio": round(ratio, 3),
        "ours_tokens_per_s": round(statistics.median(tokens_per_s), 1),
        "targets": {"ratio": "< 1.05"},
        "met": ratio < 1.05,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
