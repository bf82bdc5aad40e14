"""Acceptance: the answering model unloaded for a training job really frees its memory, and comes back
the same: same load settings, same active adapter, same greedy answer (Engine.release / Engine.restore)."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import pytest
import torch

from medalign_desktop.engine import Engine, SamplingSettings

GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=10)
QUESTION = "What are the red flags of low back pain?"


@pytest.fixture
def engine(tiny_model_dir):
    engine = Engine()
    engine.load(tiny_model_dir, label="tiny", device="cpu", dtype="float32")
    yield engine
    engine.unload()


def parameter_refs(engine: Engine) -> list[weakref.ref]:
    return [weakref.ref(param) for param in engine.model.parameters()]


def release_on_a_worker_thread(engine: Engine):
    """As the app does (EngineService's thread), with the cycle collector off: reference counting alone
    must free the weights, so nothing waits for a collection that may never run on that thread."""
    released = []
    gc.disable()
    try:
        worker = threading.Thread(target=lambda: released.append(engine.release()))
        worker.start()
        worker.join()
    finally:
        gc.enable()
    return released[0]


def test_unload_frees_the_weights_and_reload_brings_back_the_same_adapter_and_answer(engine, tiny_adapters):
    adapter_a, adapter_b = tiny_adapters
    engine.load_adapter(adapter_b, "B-iter-1", activate=False)
    engine.load_adapter(adapter_a, "B-iter-2")
    before = engine.generate(QUESTION, GREEDY)
    base_label, settings = engine.loaded.label, engine.loaded.plan
    refs = parameter_refs(engine)
    assert len(refs) > 20  # base weights and both adapters' LoRA matrices

    released = release_on_a_worker_thread(engine)
    gc.disable()  # nothing below may depend on a collection having run
    try:
        assert engine.loaded is None and engine.model is None and engine.active_adapter is None
        assert sum(ref() is not None for ref in refs) == 0
    finally:
        gc.enable()
    assert released.label == "tiny" and released.memory_bytes > 0
    assert (released.active_adapter, released.active_adapter_dir) == ("B-iter-2", adapter_a)
    request = released.request
    assert (request.device, request.dtype, request.quantization) == ("cpu", "float32", "auto")

    loaded = engine.restore(released)
    assert loaded.label == base_label and loaded.plan == settings
    assert engine.active_adapter == "B-iter-2" and engine.adapters == ["B-iter-2"]  # only the active one
    after = engine.generate(QUESTION, GREEDY)
    assert after.adapter == "B-iter-2" and after.text == before.text and after.n_tokens == before.n_tokens


def test_the_base_model_alone_comes_back_without_an_adapter(engine, tiny_adapters):
    engine.load_adapter(tiny_adapters[0], "A-sft-1")
    engine.disable_adapter()  # loaded, but the base answers
    before = engine.generate(QUESTION, GREEDY).text
    released = engine.release()
    assert released.active_adapter is None and released.active_adapter_dir is None
    engine.restore(released)
    assert engine.active_adapter is None and engine.adapters == []
    assert engine.generate(QUESTION, GREEDY).text == before


def test_the_adapter_answers_differently_so_the_comparison_above_means_something(engine, tiny_adapters):
    base = engine.generate(QUESTION, GREEDY).text
    engine.load_adapter(tiny_adapters[0], "B-iter-2")
    assert engine.generate(QUESTION, GREEDY).text != base


def test_releasing_with_no_model_loaded_gives_nothing_to_restore():
    engine = Engine()
    assert engine.release() is None
    assert engine.loaded is None and engine.last_request is None


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (none on the CPU test machine)"
)
def test_on_cuda_release_gives_the_gpu_memory_back(tiny_model_dir, tiny_adapters):
    baseline = torch.cuda.memory_allocated()
    engine = Engine()
    engine.load(tiny_model_dir, device="cuda", dtype="float32", quantization="none")
    engine.load_adapter(tiny_adapters[0], "B-iter-1")
    before = engine.generate(QUESTION, GREEDY).text
    assert torch.cuda.memory_allocated() > baseline
    released = release_on_a_worker_thread(engine)
    assert torch.cuda.memory_allocated() == baseline  # freed for the job, with no collection needed
    engine.restore(released)
    assert engine.active_adapter == "B-iter-1" and engine.generate(QUESTION, GREEDY).text == before
    engine.unload()
    assert torch.cuda.memory_allocated() == baseline


def resident_bytes() -> int:
    """This process's resident set size (Linux: /proc/self/statm, in pages)."""
    import os

    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident size from /proc")
def test_on_the_cpu_release_gives_the_memory_back_to_the_system(tiny_model_dir, tmp_path):
    """What a training job (another process) can use: the resident size must drop by about the model's
    size, not just the model become garbage inside this process's heap (glibc keeps freed memory)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    # SmolLM2's layer shapes, 8 of its 30 layers, stored in bfloat16 as model folders usually are and loaded
    # in float32: the converted tensors are many heap blocks of a few MB, which glibc keeps when they are
    # freed (measured: without giving them back, half of the 216 MiB stayed resident)
    folder = tmp_path / "smollm2-shaped"
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=8,
                         num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)  # fmt: skip
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny_model_dir / name).read_bytes())
    engine = Engine()
    engine.load(folder, device="cpu", dtype="float32")
    engine.generate(QUESTION, GREEDY)
    footprint, loaded = engine.loaded.memory_bytes, resident_bytes()
    release_on_a_worker_thread(engine)
    assert loaded - resident_bytes() > 0.75 * footprint
