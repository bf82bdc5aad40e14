"""The engine on the tiny random Llama forced to ``quantization="4bit"`` on the CPU (bitsandbytes' CPU backend):
the load (NF4 with double quantisation, placed on the CPU while loading, smaller than bf16), an answer streamed
from it, and an adapter switched on and off without reloading the base. One 4-bit engine for the module."""

from __future__ import annotations

import pytest
import torch

from medalign_desktop.engine import Engine, SamplingSettings

bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed (the dev extra brings it)")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=8)
QUESTION = "What causes anaemia?"
BF16 = {"atol": 2e-3, "rtol": 1e-2}  # a few bf16 steps: the compute dtype of answering on the CPU


def double_quantised(weight) -> bool:
    """NF4 scales quantised again (nested). On a CPU with AVX512-BF16, bitsandbytes repacks a Linear4bit for its
    CPU inference kernel at the first forward, after which ``original_nested`` says what it was."""
    state = weight.quant_state
    if getattr(state, "packing_format_for_cpu", False):
        return bool(getattr(state, "original_nested", False))
    return bool(state.nested)


def quantised_layers(model) -> dict[str, object]:
    return {n: m for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}


@pytest.fixture(scope="module")
def four_bit(tiny_model_dir):
    """(engine loaded in 4-bit, the from_pretrained arguments the loader used, the layers right after loading)."""
    import training.model_check

    calls = []
    real = training.model_check.from_pretrained_checked

    def spy(auto_class, folder, **kwargs):
        calls.append(kwargs)
        return real(auto_class, folder, **kwargs)

    engine = Engine()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(training.model_check, "from_pretrained_checked", spy)
        engine.load(tiny_model_dir, quantization="4bit")
    layers = {
        n: (m.weight.quant_type, m.weight.quant_state.nested)
        for n, m in quantised_layers(engine.model).items()
    }
    yield engine, calls, layers
    engine.unload()


def test_load_puts_nf4_double_quantised_weights_on_the_cpu(four_bit, tiny_model_dir):
    engine, calls, layers_at_load = four_bit
    plan = engine.loaded.plan
    assert (plan.device, plan.quantization, plan.dtype) == (
        "cpu",
        "nf4",
        "bfloat16",
    )  # bf16 compute: answering
    assert "4-bit NF4" in engine.loaded.describe()
    ((kwargs,),) = [calls]
    assert kwargs["device_map"] == {"": "cpu"}
    quant = kwargs["quantization_config"]
    assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4" and quant.bnb_4bit_use_double_quant
    assert quant.bnb_4bit_compute_dtype == torch.bfloat16
    # every projection of both layers, NF4 with nested (double-quantised) scales, as loaded
    assert len(layers_at_load) == 14 and set(layers_at_load.values()) == {("nf4", True)}
    for layer in quantised_layers(engine.model).values():
        assert isinstance(layer.weight, bnb.nn.Params4bit) and double_quantised(layer.weight)
    assert not isinstance(engine.model.lm_head, bnb.nn.Linear4bit)  # the head and embeddings stay unquantised
    assert {p.device.type for p in engine.model.parameters()} == {"cpu"}
    plain = Engine()
    plain.load(tiny_model_dir, dtype="bfloat16", quantization="none")
    try:
        assert engine.loaded.memory_bytes < plain.loaded.memory_bytes
    finally:
        plain.unload()


def test_answers_stream_from_the_4bit_model(four_bit):
    engine = four_bit[0]
    pieces: list[str] = []
    result = engine.generate(QUESTION, GREEDY, on_text=pieces.append)
    assert "".join(pieces) == result.text and result.text  # a random tiny model: any 8 tokens
    assert result.n_tokens == 8 and result.finish_reason == "length" and result.tokens_per_s > 0
    assert engine.generate(QUESTION, GREEDY).text == result.text  # greedy repeats


def test_an_adapter_switches_on_and_off_on_the_4bit_base(four_bit, tiny_adapters):
    engine = four_bit[0]
    enc = engine.encode(QUESTION, GREEDY.system_prompt)

    def first_logits() -> torch.Tensor:
        with torch.no_grad():
            if engine.active_adapter is None and engine.adapters:
                with engine.model.disable_adapter():
                    return engine.model(**enc).logits[0, -1].float()
            return engine.model(**enc).logits[0, -1].float()

    base = first_logits()
    engine.load_adapter(tiny_adapters[0], "a")
    try:
        assert engine.active_adapter == "a" and not torch.allclose(first_logits(), base, **BF16)
        assert engine.generate(QUESTION, GREEDY).adapter == "a"
        engine.disable_adapter()
        assert torch.allclose(first_logits(), base, **BF16)
    finally:
        engine.remove_adapter("a")
    assert quantised_layers(engine.model), "the 4-bit base stays loaded under the adapter"
