"""Acceptance: the memory estimate (training/memory.py) against the measured peak RSS of real training runs.

Each case runs the real program, ``python -m training <kind> --job-dir DIR``, for 2 steps, through a small
wrapper process that starts it, waits for it and prints ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the peak
of that one child, untouched by pytest's other children. The data fill ``max_length`` (long answers, cut at
max_length; reward pairs and PPO prompts just under it) because the estimate is for that worst case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.conftest import SYSTEM
from training.memory import MiB, estimate_job_memory

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TOLERANCE = 0.25  # the acceptance: within 25 % of the measured peak
REPO = Path(__file__).resolve().parents[2]
WRAPPER = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run([sys.executable, '-m', 'training', sys.argv[1], '--job-dir', sys.argv[2]],\n"
    "                      stdout=subprocess.DEVNULL, stderr=open(sys.argv[3], 'w'))\n"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def peak_rss(kind: str, job_dir: Path) -> int:
    """Run the job's program to the end; its peak RSS in bytes (ru_maxrss is in KiB on Linux)."""
    stderr = job_dir / "stderr.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, kind, str(job_dir), str(stderr)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=280,
    )  # fmt: skip
    code, kib = done.stdout.split()
    assert code == "0", f"{kind} job failed:\n{stderr.read_text(encoding='utf-8')[-3000:]}"
    return int(kib) * 1024


def prompt(i: int, question: str = "") -> list[dict]:
    question = question or f"What is the usual adult dose of drug {i}?"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


class Filler:
    """Texts of a given length in tokens under the model's chat template."""

    def __init__(self, model_dir: Path):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    def tokens(self, messages: list[dict], generation_prompt: bool = False) -> int:
        ids = self.tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
        )["input_ids"]
        return len(ids)

    def fill(self, make, budget: int, word: str, **kwargs) -> str:
        """The longest ``word * n`` with ``tokens(make(text)) <= budget``."""
        per_word = self.tokens(make(word * 11), **kwargs) - self.tokens(make(word * 10), **kwargs)
        n = max(1, (budget - self.tokens(make(word), **kwargs)) // max(per_word, 1) + 1)
        while n > 1 and self.tokens(make(word * n), **kwargs) > budget:
            n -= 1
        return word * n


def write_job(root: Path, kind: str, model_dir: Path, config: dict, n: int = 8) -> Path:
    job_dir = root / kind
    (job_dir / "data").mkdir(parents=True)
    config = {"kind": kind, "base_model": str(model_dir), "output_name": "adapter", "max_steps": 2, **config}
    (job_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    fill, length = Filler(model_dir), config["max_length"]
    if kind in ("sft", "hitl"):  # answers longer than max_length: cut to it
        rows = [
            {
                "id": f"e{i}",
                "prompt": prompt(i),
                "completion": [{"role": "assistant", "content": " dose" * length}],
            }
            for i in range(n)
        ]
    elif kind in ("dpo", "reward"):  # pairs just under max_length (the reward job leaves longer ones out)

        def conversation(i: int):
            return lambda text: prompt(i) + [{"role": "assistant", "content": text}]

        rows = [
            {
                "id": f"p{i}",
                "prompt": prompt(i),
                "chosen": [{"role": "assistant", "content": fill.fill(conversation(i), length - 4, " take")}],
                "rejected": [{"role": "assistant", "content": fill.fill(conversation(i), length - 4, " no")}],
            }
            for i in range(n)
        ]
    else:  # ppo: prompts just under max_length - max_new_tokens
        budget = config["max_length"] - config["max_new_tokens"] - 2
        question = fill.fill(lambda text: prompt(0, text), budget, " dose", generation_prompt=True)
        rows = [{"id": f"p{i}", "prompt": prompt(i, f"{i}{question}")} for i in range(n)]
    name = "prompts.jsonl" if kind == "ppo" else "train.jsonl"
    (job_dir / "data" / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return job_dir


def check(kind: str, model_dir: Path, root: Path, **config) -> None:
    job_dir = write_job(root, kind, model_dir, config)
    settings = json.loads((job_dir / "config.json").read_text(encoding="utf-8"))
    estimate = estimate_job_memory(kind, settings, model_dir, device="cpu")
    measured = peak_rss(kind, job_dir)
    ratio = estimate.total_bytes / measured
    # shown with -s: the figures of training/README.md's "Memory estimate" table
    print(f"\n{kind} {model_dir.name} {config}: measured {measured / MiB:,.0f} MiB, {estimate.describe()}, "
          f"estimate / measured {ratio:.2f}")  # fmt: skip
    assert abs(ratio - 1) <= TOLERANCE, (
        f"estimate {estimate.describe()} vs measured {measured / MiB:,.0f} MiB"
    )


# batch 2 (examples or pairs), evaluation (if any) at the same batch; gradient accumulation: the kind's
# default (hitl 1, dpo and reward 2). On a CPU the peak RSS grows over the first few forward / backward passes
# (glibc's heap, see CPU_HEAP_RETAINED) and then levels off: 2 steps of 2 passes reach that level.
BATCH = {"per_device_train_batch_size": 2, "per_device_eval_batch_size": 2}


def test_tiny_hitl_long_sequences(tiny_model_dir, tmp_path):
    # 2 x 1,024 tokens: the LM head's logit tiles dominate a model this small
    check("hitl", tiny_model_dir, tmp_path, max_length=1024, **BATCH)


def test_tiny_dpo(tiny_model_dir, tmp_path):
    check("dpo", tiny_model_dir, tmp_path, max_length=256, **BATCH)


def test_tiny_reward(tiny_model_dir, tmp_path):
    check("reward", tiny_model_dir, tmp_path, max_length=512, **BATCH)


def test_tiny_ppo(tiny_model_dir, tiny_reward_adapter, tmp_path):
    check(
        "ppo", tiny_model_dir, tmp_path, reward_adapter=str(tiny_reward_adapter), batch_size=2,
        forward_batch_size=2, ppo_epochs=1, max_new_tokens=16, max_length=256,
    )  # fmt: skip


def test_smollm2_hitl(smollm2_dir, tmp_path):
    check("hitl", smollm2_dir, tmp_path, max_length=512, **BATCH)


def test_smollm2_dpo(smollm2_dir, tmp_path):
    check("dpo", smollm2_dir, tmp_path, max_length=256, **BATCH)


def test_smollm2_reward(smollm2_dir, tmp_path):
    check("reward", smollm2_dir, tmp_path, max_length=512, **BATCH)


def test_smollm2_ppo(smollm2_dir, tmp_path):
    from tests.training.conftest import make_reward_adapter

    reward = make_reward_adapter(smollm2_dir, tmp_path / "reward-adapter", 3)
    check(
        "ppo", smollm2_dir, tmp_path, reward_adapter=str(reward), batch_size=2, forward_batch_size=2,
        ppo_epochs=1, max_new_tokens=16, max_length=256,
    )  # fmt: skip
