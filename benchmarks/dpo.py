"""DPO memory and speed: the `dpo` program against the `hitl` program on the same data size.

Both run as real subprocesses (``python -m training <kind> --job-dir DIR``) with their default batch settings
(hitl: 4 examples x 1; dpo: 2 pairs x 2 accumulation, i.e. the same 4 per optimiser step and the same 4
sequences per forward) on N examples / N pairs built from the same questions: hitl learns prompt -> chosen
answer, dpo learns chosen over rejected. Both start from the same parent adapter (as in the app: the active
version), so DPO also holds TRL's frozen "ref" copy of it on the same base. Each child's peak RSS comes from
``os.wait4`` (the kernel's ru_maxrss of that process), steps/s from the ``progress`` events' timestamps
(after the first step, which includes set-up). Target: DPO peak RSS / HITL peak RSS < 1.3 (one base model in
memory).

    python benchmarks/dpo.py [--model smollm2|tiny|PATH] [--pairs 16] [--steps 4] [--max-length 256]

Last line: one JSON object (../shared/DESIGN.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import print_machine, scratch_with_model, training_parser  # noqa: E402
from training_speed import ANSWER, QUESTION  # noqa: E402

from training.pair_data import pair_line  # noqa: E402

WORSE = "Probably fine to start any anticoagulant at full dose; no need to check the kidneys."
TARGET = 1.3


def prompt(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a careful clinician."},
        {"role": "user", "content": QUESTION.format(i=i)},
    ]


def write_jobs(root: Path, model: Path, n: int, steps: int, max_length: int, parent: Path) -> dict[str, Path]:
    """Two job folders on the same n questions: hitl (prompt -> good answer) and dpo (good over bad)."""
    common = {"base_model": str(model), "max_steps": steps, "max_length": max_length, "device": "cpu"}
    jobs = {}
    for kind in ("hitl", "dpo"):
        job = root / kind
        (job / "data").mkdir(parents=True)
        (job / "config.json").write_text(json.dumps({"kind": kind, **common, "parent_adapter": str(parent)}))
        with (job / "data" / "train.jsonl").open("w", encoding="utf-8") as handle:
            for i in range(n):
                if kind == "hitl":
                    line = {"prompt": prompt(i), "completion": [{"role": "assistant", "content": ANSWER}]}
                    handle.write(json.dumps(line) + "\n")
                else:
                    handle.write(pair_line(prompt(i), ANSWER, WORSE, f"pair-{i}") + "\n")
        jobs[kind] = job
    return jobs


def make_parent(model: Path, out: Path) -> Path:
    """A starting adapter like the app's active version (r=16 on all projections, small random B)."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from training.config import HITLJobConfig
    from training.lora import lora_config

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    peft_model = get_peft_model(base, lora_config(HITLJobConfig(base_model=str(model))))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.01)
    peft_model.save_pretrained(out)
    return out


def run_job(kind: str, job: Path) -> dict[str, float]:
    """Run one training program; its peak RSS (MB, from wait4) and steps/s (progress event timestamps)."""
    command = [sys.executable, "-m", "training", kind, "--job-dir", str(job)]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    step_times: list[float] = []
    last: dict = {}
    assert proc.stdout is not None
    for line in proc.stdout:  # events, one JSON object per line
        event = json.loads(line)
        last = event
        if event["event"] == "progress":
            step_times.append(float(event["time"]))
    _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves: ru_maxrss of that child alone
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} job failed (exit {proc.returncode}): {last}")
    steps_per_s = (len(step_times) - 1) / (step_times[-1] - step_times[0]) if len(step_times) > 1 else 0.0
    rss_mb = usage.ru_maxrss / 1024  # Linux: KiB
    print(f"{kind}: peak RSS {rss_mb:.0f} MB, {steps_per_s:.3f} steps/s, "
          f"{time.monotonic() - started:.1f} s in all", file=sys.stderr)  # fmt: skip
    return {"rss_mb": rss_mb, "steps_per_s": steps_per_s}


def main() -> None:
    parser = training_parser(__doc__)
    parser.add_argument("--pairs", type=int, default=16, help="N examples (hitl) and N pairs (dpo)")
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps per job (the first is warm-up)")
    options = parser.parse_args()

    with scratch_with_model("dpo-bench-", options.model) as (scratch, model):
        parent = make_parent(model, scratch / "parent-adapter")
        jobs = write_jobs(scratch, model, options.pairs, options.steps, options.max_length, parent)
        hitl = run_job("hitl", jobs["hitl"])
        dpo = run_job("dpo", jobs["dpo"])

    ratio = dpo["rss_mb"] / hitl["rss_mb"]
    print_machine(options.model)
    print(f"peak RSS: dpo {dpo['rss_mb']:.0f} MB / hitl {hitl['rss_mb']:.0f} MB = {ratio:.3f}")
    result = {
        "benchmark": "dpo",
        "model": options.model,
        "n": options.pairs,
        "steps": options.steps,
        "max_length": options.max_length,
        "rss_ratio": round(ratio, 3),
        "dpo_peak_rss_mb": round(dpo["rss_mb"], 1),
        "hitl_peak_rss_mb": round(hitl["rss_mb"], 1),
        "dpo_steps_per_s": round(dpo["steps_per_s"], 4),
        "hitl_steps_per_s": round(hitl["steps_per_s"], 4),
        "targets": {"rss_ratio": f"< {TARGET}"},
        "met": ratio < TARGET,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
