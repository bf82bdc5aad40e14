"""End to end: the real SmolLM2-135M-Instruct streams an answer to a medical question."""

from __future__ import annotations

import pytest

from medalign_desktop.engine import Engine, SamplingSettings

pytestmark = pytest.mark.e2e


def test_smollm2_streams_a_medical_answer(smollm2_dir):
    engine = Engine()
    loaded = engine.load(smollm2_dir)
    assert loaded.load_time_s < 10  # safetensors, not the ~25 s GGUF dequantisation
    pieces: list[str] = []
    result = engine.generate(
        "What are the common symptoms of iron deficiency anaemia?",
        SamplingSettings(temperature=0.0, max_new_tokens=48),
        on_text=pieces.append,
    )
    assert len(pieces) > 10 and "".join(pieces) == result.text
    assert result.n_tokens == 48
    text = result.text.lower()
    assert any(word in text for word in ("fatigue", "tired", "weakness", "pale", "iron")), result.text
