"""Retrain benchmark: from the Nth verdict to the new adapter answering, on SmolLM2-135M (CPU).

The app's own pieces run as in the window: a qasync loop on the GUI thread, the store on its own thread,
the JobManager starting `python -m training hitl` through QProcess, and the engine (SmolLM2 loaded, as
in the app) hot-swapping the new adapter. A 10 ms heartbeat timer on the GUI thread records the longest
stall of the event loop while all this happens (target < 50 ms).

Phases (seconds): snapshot (SQLite -> job folder), process start (interpreter + imports, until the
program's first event), model load (base + LoRA in the training process), trainer set-up, training,
save (adapter written and renamed), exit and registration, hot-swap (adapter onto the loaded base),
first answer token. Baseline for context: the same training program run from a shell, start to exit.

    python benchmarks/retrain.py [--verdicts 20]

Last line: one JSON object (../shared/DESIGN.md, "benchmark").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, quiet_offline  # noqa: E402

quiet_offline(qt=True)


def seed_feedback(store, n: int) -> None:
    """n accepted answers: the sample questions with their reference answers as the model's text."""
    rows = [
        json.loads(line) for line in (REPO / "resources" / "sample_questions.jsonl").open(encoding="utf-8")
    ]
    for row in rows[:n]:
        question, reference = row["conversations"][0]["value"], row["conversations"][1]["value"]
        prompt = store.add_prompt(question, reference_answer=reference)
        generation = store.add_generation(prompt, reference, model_version="base", settings={})
        store.record_verdict(generation, "accept", annotator="benchmark")


class Heartbeat:
    """A 10 ms QTimer; the longest gap between two ticks is the worst event-loop stall."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.last = time.perf_counter()
        self.worst = 0.0
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last - 0.010)
        self.last = now


async def measure(store, engine, jobs_root: Path, model_dir: Path) -> dict:
    from medalign_desktop.engine import SamplingSettings
    from medalign_desktop.jobs.manager import JobManager
    from medalign_desktop.jobs.requests import training_request

    store_thread, engine_thread = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
    loop = asyncio.get_running_loop()

    async def store_call(fn):
        return await loop.run_in_executor(store_thread, fn, store)

    manager = JobManager(store_call, jobs_root)
    marks: dict[str, float] = {}
    done = asyncio.Event()
    versions = []

    def on_event(_job, event) -> None:
        now = time.perf_counter()
        message = getattr(event, "message", "")
        if event.EVENT == "log" and "first" not in marks:
            marks["first"] = now
        if event.EVENT == "log" and message.startswith("Loading "):
            marks["loading"] = now
        if event.EVENT == "log" and message.startswith("LoRA "):
            marks["lora"] = now
        if event.EVENT in ("started", "finished"):
            marks[event.EVENT] = now
        if event.EVENT == "progress":
            marks["last_progress"] = now

    manager.event.connect(on_event)
    manager.job_changed.connect(
        lambda _job: (
            marks.setdefault("launched", time.perf_counter()) if manager.running_job_id is not None else None
        )
    )
    manager.version_ready.connect(lambda version: (versions.append(version), done.set()))
    manager.idle.connect(done.set)
    heartbeat = Heartbeat()

    marks["verdict"] = time.perf_counter()  # the Nth verdict has just been saved
    request = await store_call(
        lambda s: training_request(
            s, kind="hitl", base_model=str(model_dir), system_prompt="You are a careful medical assistant."
        )
    )
    job_id = await manager.submit(request)
    await done.wait()
    marks["registered"] = time.perf_counter()
    if not versions:
        raise SystemExit(f"The job failed: {store.get_job(job_id).error}")
    version = versions[0]
    await loop.run_in_executor(engine_thread, engine.load_adapter, version.adapter_path, version.name)
    marks["swapped"] = time.perf_counter()
    answer = await loop.run_in_executor(
        engine_thread,
        lambda: engine.generate(
            "What is the first-line treatment for anaphylaxis?",
            SamplingSettings(temperature=0, max_new_tokens=8),
        ),
    )
    marks["answered"] = marks["swapped"] + answer.time_to_first_token_s
    heartbeat.timer.stop()
    phases = {
        "snapshot_s": marks["launched"] - marks["verdict"],
        "process_start_s": marks["first"] - marks["launched"],
        "model_load_s": marks["lora"] - marks["loading"],
        "trainer_setup_s": marks["started"] - marks["lora"],
        "training_s": marks["last_progress"] - marks["started"],
        "save_s": marks["finished"] - marks["last_progress"],
        "exit_and_register_s": marks["registered"] - marks["finished"],
        "hot_swap_s": marks["swapped"] - marks["registered"],
        "first_token_s": marks["answered"] - marks["swapped"],
    }
    job = store.get_job(job_id)
    return {
        **{k: round(v, 3) for k, v in phases.items()},
        "total_s": round(marks["answered"] - marks["verdict"], 2),
        "examples": job.data_size,
        "steps": len(store.job_metrics(job_id, "loss")),
        "gui_stall_ms": round(heartbeat.worst * 1000, 1),
        "job_dir": job.job_dir,
    }


def baseline_run(job_dir: str) -> float:
    """The same training program on the same job folder, started from a shell: start to exit."""
    fresh = Path(tempfile.mkdtemp(prefix="retrain-baseline-"))
    for name in ("config.json", "data"):
        subprocess.run(["cp", "-r", str(Path(job_dir) / name), str(fresh)], check=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "training", "hitl", "--job-dir", str(fresh)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--verdicts", type=int, default=20)
    args = parser.parse_args()

    import qasync
    from PySide6.QtWidgets import QApplication

    from medalign_desktop.engine import Engine
    from medalign_desktop.engine.gguf_import import install_demo_model
    from medalign_desktop.store import Store

    model_dir = install_demo_model(progress=print).path
    workdir = Path(tempfile.mkdtemp(prefix="retrain-bench-"))
    store = Store.open(workdir / "bench.sqlite")
    seed_feedback(store, args.verdicts)
    engine = Engine()
    print(f"model: {engine.load(model_dir).describe()}")
    app = QApplication.instance() or QApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        figures = loop.run_until_complete(measure(store, engine, workdir / "jobs", model_dir))
    finally:
        loop.close()  # its executor threads end before the QApplication does
    figures["baseline_shell_run_s"] = round(baseline_run(figures.pop("job_dir")), 2)
    in_app = (
        figures["process_start_s"]
        + figures["model_load_s"]
        + figures["trainer_setup_s"]
        + figures["training_s"]
        + figures["save_s"]
        + figures["exit_and_register_s"]
    )
    figures["in_app_vs_shell_ratio"] = round(in_app / figures["baseline_shell_run_s"], 3)
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(
        json.dumps(
            {
                "benchmark": "retrain",
                "model": "SmolLM2-135M-Instruct",
                "verdicts": args.verdicts,
                **figures,
                "targets": {"gui_stall_ms": "< 50"},
                "met": figures["gui_stall_ms"] < 50,
            }
        )
    )
    store.close()


if __name__ == "__main__":
    main()
