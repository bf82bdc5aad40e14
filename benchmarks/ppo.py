"""PPO memory and speed: the `ppo` program against the `dpo` program on the same questions.

Both run as real subprocesses (``python -m training <kind> --job-dir DIR``) from the same parent adapter (the
app's active version). DPO learns a good over a bad answer to each of N questions (its default batch: 2 pairs
x 2 accumulation, gradient checkpointing); PPO answers the same N questions with the policy, scores the
answers with a reward adapter (LoRA + score head, built here with the `reward` job's recipe: the weights do
not matter for memory and time) and optimises with its research-project settings (batch 16, mini-batch 1)
unless told otherwise. PPO holds policy, reference, value and reward on one base model; the research project
held four models and needed 2.0x the memory of DPO. Each child's peak RSS comes from ``os.wait4``; PPO's
seconds per step by phase (generation / scoring / optimisation) come from its result.json.
Target: PPO peak RSS / DPO peak RSS < 1.3.

    python benchmarks/ppo.py [--model smollm2|tiny|PATH] [--prompts 16] [--steps 2] [--batch-size 16]
                             [--mini-batch-size 1] [--ppo-epochs 4] [--max-new-tokens 128] [--max-length 256]

Last line: one JSON object (../shared/DESIGN.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import print_machine, scratch_with_model, training_parser  # noqa: E402
from dpo import WORSE, make_parent, prompt, run_job  # noqa: E402
from training_speed import ANSWER  # noqa: E402

from training.pair_data import pair_line  # noqa: E402

TARGET = 1.3
PHASES = ("generation", "scoring", "optimisation")


def make_reward_adapter(model: Path, out: Path) -> Path:
    """A reward adapter as the `reward` job saves one (SEQ_CLS LoRA r=16 on all projections + score head)."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForSequenceClassification

    from training.config import RewardJobConfig
    from training.lora import lora_config

    torch.manual_seed(1)
    base = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1, dtype=torch.float32)
    peft_model = get_peft_model(
        base, lora_config(RewardJobConfig(base_model=str(model)), task_type="SEQ_CLS")
    )
    peft_model.save_pretrained(out)
    return out


def write_job(root: Path, kind: str, config: dict, lines: list[str]) -> Path:
    job = root / kind
    (job / "data").mkdir(parents=True)
    (job / "config.json").write_text(json.dumps({"kind": kind, **config}))
    data_file = "prompts.jsonl" if kind == "ppo" else "train.jsonl"
    (job / "data" / data_file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return job


def main() -> None:
    parser = training_parser(__doc__)
    parser.add_argument("--prompts", type=int, default=16, help="N questions (N pairs for dpo)")
    parser.add_argument("--steps", type=int, default=2, help="PPO steps; DPO runs 4 optimiser steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--mini-batch-size", type=int, default=1)
    parser.add_argument("--ppo-epochs", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    options = parser.parse_args()

    with scratch_with_model("ppo-bench-", options.model) as (scratch, model):
        common = {"base_model": str(model), "device": "cpu", "max_length": options.max_length}
        common["parent_adapter"] = str(make_parent(model, scratch / "parent-adapter"))
        reward = make_reward_adapter(model, scratch / "reward-adapter")
        ppo_config = {
            **common,
            "reward_adapter": str(reward),
            "max_steps": options.steps,
            "batch_size": options.batch_size,
            "mini_batch_size": options.mini_batch_size,
            "ppo_epochs": options.ppo_epochs,
            "max_new_tokens": options.max_new_tokens,
            "checkpoint_every": options.steps,
        }
        prompts = [json.dumps({"id": f"p-{i}", "prompt": prompt(i)}) for i in range(options.prompts)]
        ppo_job = write_job(scratch, "ppo", ppo_config, prompts)
        pairs = [pair_line(prompt(i), ANSWER, WORSE, f"pair-{i}") for i in range(options.prompts)]
        dpo_job = write_job(scratch, "dpo", {**common, "max_steps": 4}, pairs)
        ppo = run_job("ppo", ppo_job)
        ppo_metrics = json.loads((ppo_job / "result.json").read_text())["metrics"]
        try:
            dpo = run_job("dpo", dpo_job)
        except SystemExit as exc:  # the dpo program missing or broken: report PPO alone
            print(f"dpo: {exc}", file=sys.stderr)
            dpo = None

    per_phase = {f"ppo_{p}_s_per_step": round(ppo_metrics[f"{p}_s_per_step"], 3) for p in PHASES}
    ratio = ppo["rss_mb"] / dpo["rss_mb"] if dpo else None
    print_machine(options.model)
    print(
        f"peak RSS: ppo {ppo['rss_mb']:.0f} MB"
        + (f" / dpo {dpo['rss_mb']:.0f} MB = {ratio:.3f}" if dpo else "")
    )
    print("ppo seconds per step: " + ", ".join(f"{k} {v}" for k, v in per_phase.items()))
    result = {
        "benchmark": "ppo",
        "model": options.model,
        "prompts": options.prompts,
        "steps": options.steps,
        "batch_size": options.batch_size,
        "mini_batch_size": options.mini_batch_size,
        "ppo_epochs": options.ppo_epochs,
        "max_new_tokens": options.max_new_tokens,
        "rss_ratio": None if ratio is None else round(ratio, 3),
        "ppo_peak_rss_mb": round(ppo["rss_mb"], 1),
        "dpo_peak_rss_mb": None if dpo is None else round(dpo["rss_mb"], 1),
        **per_phase,
        "ppo_s_per_step": round(sum(ppo_metrics[f"{p}_s_per_step"] for p in PHASES), 3),
        "ppo_answer_length": round(ppo_metrics["answer_length"], 1),
        "dpo_steps_per_s": None if dpo is None else round(dpo["steps_per_s"], 4),
        "targets": {"rss_ratio": f"< {TARGET}"},
        "met": None if ratio is None else ratio < TARGET,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
