"""The whole retrain loop on the tiny model, with the real training program:

feedback in SQLite -> job (python -m training hitl) -> adapter -> new version active in the engine ->
the next generation is recorded against it. And the fault case: the training process is killed mid-run.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from medalign_desktop.engine import Engine, SamplingSettings
from medalign_desktop.jobs.requests import training_request
from medalign_desktop.store import Store

FAST = {"max_length": 64, "per_device_train_batch_size": 2, "gradient_checkpointing": False, "max_steps": 3}
QUESTIONS = [
    ("What is the first-line treatment for anaphylaxis?", "Intramuscular adrenaline, 0.5 mg for adults."),
    ("Which vaccine prevents cervical cancer?", "The HPV vaccine."),
    ("What is a normal resting adult heart rate?", "60 to 100 beats per minute."),
    ("Name a red flag for headache.", "Sudden thunderclap onset."),
]


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    for i, (question, answer) in enumerate(QUESTIONS):
        prompt = store.add_prompt(question)
        generation = store.add_generation(prompt, "model answer", model_version="base", settings={})
        if i % 2:
            store.record_verdict(generation, "edit", annotator="dr-a", edited_text=answer)
        else:
            store.record_verdict(generation, "accept", annotator="dr-a")
    yield store
    store.close()


@pytest.fixture
def manager(store, job_manager_for):
    return job_manager_for(store)


def run_job(loop, manager, store, tiny_model_dir, *, on_progress=None, timeout=180):
    async def go():
        idle = asyncio.Event()
        manager.idle.connect(idle.set)
        if on_progress:
            manager.progress.connect(on_progress)
        request = training_request(
            store, kind="hitl", base_model=str(tiny_model_dir), system_prompt="Be careful.", overrides=FAST
        )
        job_id = await manager.submit(request)
        await asyncio.wait_for(idle.wait(), timeout)
        return job_id

    return loop.run_until_complete(go())


@pytest.mark.slow
def test_feedback_becomes_the_active_version_that_answers_next(loop, manager, store, tiny_model_dir):
    versions = []
    manager.version_ready.connect(versions.append)
    job_id = run_job(loop, manager, store, tiny_model_dir)
    job = store.get_job(job_id)
    assert job.state == "succeeded", job.error
    assert job.data_size == len(QUESTIONS)
    losses = store.job_metrics(job_id, "loss")
    assert len(losses) == 3 and all(m.value > 0 for m in losses)

    (version,) = versions
    weights = load_file(os.path.join(version.adapter_path, "adapter_model.safetensors"))
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)  # a fresh LoRA starts with B = 0

    # hot-swap into the loaded engine (no reload of the base), make it active, answer, record
    engine = Engine()
    engine.load(tiny_model_dir, dtype="float32")
    base_memory_id = id(engine.model.get_input_embeddings().weight)
    enc = engine.encode("What is sepsis?", "Be careful.")
    with torch.no_grad():
        before = engine.model(**enc).logits[0, -1]
    engine.load_adapter(version.adapter_path, version.name)
    assert id(engine.model.get_input_embeddings().weight) == base_memory_id
    with torch.no_grad():
        after = engine.model(**enc).logits[0, -1]
    assert not torch.allclose(before, after)
    store.set_active_model_version(version.id)
    result = engine.generate("What is sepsis?", SamplingSettings(temperature=0, max_new_tokens=5))
    prompt = store.add_prompt("What is sepsis?")
    generation = store.add_generation(
        prompt, result.text, model_version=store.active_model_version().id, settings=result.settings.to_dict()
    )
    recorded = store.get_generation(generation)
    assert (recorded.model_version, recorded.model_version_id) == ("B-iter-1", version.id)

    # the next retrain continues from B-iter-1 and becomes its child
    follow_up = training_request(store, kind="hitl", base_model=str(tiny_model_dir), system_prompt="")
    assert follow_up.parent_adapter == version.adapter_path and follow_up.parent_version_id == version.id


@pytest.mark.slow
def test_killed_training_fails_the_job_and_the_next_one_succeeds(loop, manager, store, tiny_model_dir):
    def kill_on_first_progress(job_id, step, total, eta):
        if manager._running is not None and not getattr(kill_on_first_progress, "done", False):
            kill_on_first_progress.done = True
            os.kill(manager._running.process.pid(), signal.SIGKILL)

    killed = run_job(loop, manager, store, tiny_model_dir, on_progress=kill_on_first_progress)
    job = store.get_job(killed)
    assert job.state == "failed" and "killed" in job.error
    assert store.list_model_versions() == []
    assert not (os.path.isdir(os.path.join(job.job_dir, "adapter")))
    manager.progress.disconnect(kill_on_first_progress)
    second = run_job(loop, manager, store, tiny_model_dir)
    assert store.get_job(second).state == "succeeded"
    assert [v.name for v in store.list_model_versions()] == ["B-iter-1"]
