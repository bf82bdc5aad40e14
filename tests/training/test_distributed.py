"""``torchrun --nproc_per_node 2 -m training <kind>`` on the CPU (gloo): data-parallel training really runs.

For sft, hitl, dpo and reward on the tiny Llama: two processes with 2 examples each per step against one
in-process run with 4 per step (the same global batch and data order: accelerate hands the per-process
batches of the shuffled order out in turn, rank 0 the first). Checked:

- exit 0; stdout (both processes share it) holds exactly one `started` and one `finished` event and one
  `artifact` "adapter": only rank 0 reports;
- one adapter folder, no temporary ones, one result.json: only rank 0 writes;
- both processes end with the same adapter: the program gathers every process's SHA-256 of its adapter
  weights before saving (training/distributed.py) and logs it; the saved file hashes to that value;
- the same checkpoints (only rank 0 writes them);
- the loss of every step, and the eval_loss of both evaluations (4 held-back examples, 2 per process), equal
  the single-process run's within LOSS_RTOL (relative), and the adapter's
  weights equal within WEIGHT_ATOL: the two runs add the same numbers in another order (a gloo all-reduce
  of two halves against one batch), nothing more. LoRA dropout is off here: its random masks are drawn per
  process and would differ between the two layouts.

And ppo, whose hand-written loop is single-process, refuses WORLD_SIZE=2: non-zero exit, one `failed` event
(from rank 0) saying why, no adapter.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from training import protocol
from training.__main__ import main
from training.distributed import state_digest

from .conftest import parse_events

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

REPO = Path(__file__).resolve().parents[2]
LOSS_RTOL = 1e-5  # measured: at most ~1e-7 relative on this machine
WEIGHT_ATOL = 1e-5
TIMEOUT_S = 180


def torchrun(kind: str, job_dir: Path, nproc: int = 2) -> tuple[subprocess.CompletedProcess, list]:
    """Run the program under torchrun (a free rendezvous port: --standalone), on the CPU with gloo."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",  # the CPU even on a GPU runner (config device "cpu" says so too)
        "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",
    }
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    argv += ["-m", "training", kind, "--job-dir", str(job_dir)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO)
    return done, parse_events(done.stdout)


def single(kind: str, job_dir: Path) -> list:
    out = io.StringIO()
    assert main([kind, "--job-dir", str(job_dir)], events=out) == protocol.EXIT_OK, out.getvalue()[-2000:]
    return parse_events(out.getvalue())


def of(events: list, cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def losses(events: list) -> list[float]:
    return [m.loss for m in of(events, protocol.Metric) if m.loss is not None]


def eval_losses(events: list) -> list[float]:
    return [m.eval_loss for m in of(events, protocol.Metric) if m.eval_loss is not None]


@pytest.mark.parametrize("kind", ["sft", "hitl", "dpo", "reward"])
def test_two_processes_train_like_one_with_the_same_global_batch(
    kind, make_job, make_pair_job, tiny_adapters
):
    make = make_job if kind in ("sft", "hitl") else make_pair_job
    held_back = {"eval_examples": 4} if kind in ("sft", "hitl") else {"eval_pairs": 4}  # 2 per process
    settings = {"kind": kind, "max_steps": 3, "lora_dropout": 0.0, "device": "cpu", "quantization": "none"}
    settings |= held_back | {"eval_steps": 2}  # evaluations (and checkpoints) at steps 2 and 3
    if kind == "hitl":  # continues a parent adapter (peft's default dropout there: 0)
        settings["parent_adapter"] = str(tiny_adapters[0])
    ddp_dir = make(name="ddp", per_device_train_batch_size=2, **settings)
    one_dir = make(name="one", per_device_train_batch_size=4, **settings)

    done, events = torchrun(kind, ddp_dir)
    assert done.returncode == 0, done.stderr[-4000:]
    assert not [e for e in events if isinstance(e, protocol.LogText)], done.stdout[-2000:]  # JSON only
    assert len(of(events, protocol.Started)) == 1 and len(of(events, protocol.Finished)) == 1
    assert not of(events, protocol.Failed)
    assert [a.path for a in of(events, protocol.Artifact) if a.name == "adapter"] == [
        str(ddp_dir / "adapter")
    ]
    written = sorted(p.name for p in ddp_dir.iterdir() if p.name.startswith("adapter"))
    assert written == ["adapter"]  # no second copy, no leftover temporary folder
    assert json.loads((ddp_dir / "result.json").read_text())["status"] == "finished"

    assert any(
        "Data-parallel over 2 processes" in e.message and "= 4." in e.message
        for e in of(events, protocol.Log)
    )
    # Every process's adapter hashed the same (the program checks and logs it); the saved one is that adapter.
    agreed = [e.message for e in of(events, protocol.Log) if "processes hold the same adapter" in e.message]
    assert len(agreed) == 1 and agreed[0].startswith("All 2 processes"), agreed
    saved = load_file(str(ddp_dir / "adapter" / "adapter_model.safetensors"))
    assert f"SHA-256 of its weights {state_digest(saved)})" in agreed[0]

    reference = single(kind, one_dir)
    assert not [e for e in of(reference, protocol.Log) if "processes hold" in e.message]  # one process
    ddp_losses, one_losses = losses(events), losses(reference)
    assert len(ddp_losses) == len(one_losses) == 3
    assert ddp_losses == pytest.approx(one_losses, rel=LOSS_RTOL)
    ddp_eval, one_eval = eval_losses(events), eval_losses(reference)
    assert len(ddp_eval) == len(one_eval) == 2 and ddp_eval == pytest.approx(one_eval, rel=LOSS_RTOL)
    checkpoints = [a.path.replace(str(ddp_dir), "") for a in of(events, protocol.Artifact)]
    assert checkpoints == [a.path.replace(str(one_dir), "") for a in of(reference, protocol.Artifact)]
    one = load_file(str(one_dir / "adapter" / "adapter_model.safetensors"))
    assert saved.keys() == one.keys()
    if kind != "hitl":  # a fresh LoRA's B starts at zero: the comparison is of trained weights
        assert any(t.abs().max() > 0 for k, t in saved.items() if "lora_B" in k)
    worst = max((saved[k] - one[k]).abs().max().item() for k in one)
    assert worst <= WEIGHT_ATOL, worst

    def gap(a, b):
        return max(abs(x - y) for x, y in zip(a, b, strict=True))

    print(
        f"{kind}: loss {gap(ddp_losses, one_losses):.3g}, eval_loss {gap(ddp_eval, one_eval):.3g}, weights {worst:.3g}"
    )


def test_ppo_refuses_more_than_one_process(make_ppo_job):
    job_dir = make_ppo_job()
    done, events = torchrun("ppo", job_dir)
    assert done.returncode != 0
    failed = of(events, protocol.Failed)
    assert len(failed) == 1, done.stdout  # rank 0 only
    assert "one process" in failed[0].reason and "WORLD_SIZE=2" in failed[0].reason
    assert "python -m training" in failed[0].advice
    assert not of(events, protocol.Started) and not (job_dir / "adapter").exists()
    assert json.loads((job_dir / "result.json").read_text())["status"] == "failed"
