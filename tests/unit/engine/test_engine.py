"""Engine on the tiny random Llama: load, stream, stop, adapters (switch, disable, remove), errors."""

from __future__ import annotations

import threading

import pytest
import torch

from medalign_desktop.engine import AdapterError, Engine, EngineError, SamplingSettings

GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=12)


@pytest.fixture
def engine(tiny_model_dir):
    engine = Engine()
    engine.load(tiny_model_dir, dtype="float32")
    yield engine
    engine.unload()


def next_token_logits(engine: Engine, question: str = "What causes anaemia?") -> torch.Tensor:
    """Logits of the first answer token under the engine's current adapter state."""
    enc = engine.encode(question, GREEDY.system_prompt)
    import contextlib

    off = (
        engine.model.disable_adapter()
        if engine.active_adapter is None and engine.adapters
        else contextlib.nullcontext()
    )
    with torch.no_grad(), off:
        return engine.model(**enc).logits[0, -1]  # (vocab,)


def test_load_reports_device_dtype_and_memory(engine, tiny_model_dir):
    loaded = engine.loaded
    assert (
        loaded.plan.device == "cpu" and loaded.plan.dtype == "float32" and loaded.plan.quantization == "none"
    )
    assert loaded.memory_bytes > 0
    assert loaded.label == tiny_model_dir.name
    assert "CPU" in loaded.describe()
    assert next(engine.model.parameters()).dtype == torch.float32


def test_stream_delivers_pieces_that_make_the_answer(engine):
    pieces: list[str] = []
    result = engine.generate("What is the normal adult heart rate?", GREEDY, on_text=pieces.append)
    assert "".join(pieces) == result.text
    assert result.n_tokens == 12 and result.finish_reason == "length"
    assert (
        result.time_to_first_token_s is not None and 0 < result.time_to_first_token_s <= result.total_time_s
    )
    assert result.tokens_per_s > 0


def test_greedy_generation_is_deterministic_and_seeded_sampling_repeats(engine):
    assert engine.generate("Define sepsis.", GREEDY).text == engine.generate("Define sepsis.", GREEDY).text
    seeded = SamplingSettings(temperature=1.0, top_p=0.95, max_new_tokens=10, seed=7)
    assert engine.generate("Define sepsis.", seeded).text == engine.generate("Define sepsis.", seeded).text


def test_stop_mid_answer(engine):
    stop = threading.Event()
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            stop.set()

    result = engine.generate(
        "Explain hypertension.", GREEDY.with_changes(max_new_tokens=200), on_text=on_text, stop=stop
    )
    assert result.finish_reason == "cancelled"
    assert result.n_tokens < 10
    assert result.text == "".join(pieces)


def test_stop_from_another_thread(engine):
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    result = engine.generate("Explain asthma.", GREEDY.with_changes(max_new_tokens=5000), stop=stop)
    timer.join()
    assert result.finish_reason == "cancelled" and result.n_tokens < 5000


def test_switch_disable_and_remove_adapters(engine, tiny_adapters):
    adapter_a, adapter_b = tiny_adapters
    base = next_token_logits(engine)
    base_text = engine.generate("What causes anaemia?", GREEDY).text

    engine.load_adapter(adapter_a, "a")
    assert engine.active_adapter == "a"
    with_a = next_token_logits(engine)
    engine.load_adapter(adapter_b, "b")
    assert engine.adapters == ["a", "b"] and engine.active_adapter == "b"
    with_b = next_token_logits(engine)
    assert not torch.allclose(base, with_a) and not torch.allclose(with_a, with_b)

    engine.set_adapter("a")
    assert torch.allclose(next_token_logits(engine), with_a)
    result = engine.generate("What causes anaemia?", GREEDY)
    assert result.adapter == "a"

    engine.disable_adapter()
    assert torch.allclose(next_token_logits(engine), base, atol=1e-6)
    assert engine.generate("What causes anaemia?", GREEDY).text == base_text

    engine.remove_adapter("a")
    engine.remove_adapter("b")
    assert engine.adapters == []
    assert torch.allclose(next_token_logits(engine), base, atol=1e-6)


def test_adapter_errors_are_clear(engine, tiny_adapters, tmp_path):
    with pytest.raises(AdapterError, match="No adapter named 'nope'"):
        engine.set_adapter("nope")
    engine.load_adapter(tiny_adapters[0], "a")
    with pytest.raises(AdapterError, match="already loaded"):
        engine.load_adapter(tiny_adapters[0], "a")
    with pytest.raises(EngineError, match="Adapter folder .* does not exist"):
        engine.load_adapter(tmp_path / "missing")


def test_adapter_for_another_base_is_refused(engine, smollm2_dir, tmp_path):
    from tests.conftest import make_lora_adapter

    wrong = make_lora_adapter(smollm2_dir, tmp_path / "smol-adapter", 3)
    with pytest.raises(AdapterError, match="does not fit the loaded model"):
        engine.load_adapter(wrong, "wrong")


def test_generate_without_model_or_question(tiny_model_dir):
    engine = Engine()
    with pytest.raises(EngineError, match="No model is loaded"):
        engine.generate("Hello?")
    engine.load(tiny_model_dir, dtype="float32")
    with pytest.raises(EngineError, match="question is empty"):
        engine.generate("   ")
    with pytest.raises(ValueError, match="top-p"):
        engine.generate("Hi", SamplingSettings(top_p=0))


def test_unload_frees_the_model(engine):
    engine.unload()
    assert engine.model is None and engine.loaded is None
    with pytest.raises(EngineError):
        engine.generate("Still there?")
