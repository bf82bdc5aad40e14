"""The one loader's plan (training/model_loading.py), exactly: device, precision, quantisation, device_map and the
from_pretrained arguments, for given hardware; and that the engine, the training programs and the evaluate
program each get that plan. Pure: no model is loaded."""

from __future__ import annotations

import pytest

from training import model_loading
from training.model_loading import Hardware, LoadPlan, ModelError, choose_load_plan, from_pretrained_kwargs

CPU = Hardware()
GPU = Hardware(cuda=True, bitsandbytes=True, n_gpus=1)
NF4 = {
    "load_in_4bit": True,
    "bnb_4bit_quant_type": "nf4",
    "bnb_4bit_use_double_quant": True,
    "bnb_4bit_compute_dtype": "bfloat16",
}


def plan(hardware: Hardware = CPU, **kw) -> LoadPlan:
    return choose_load_plan(hardware=hardware, **kw)


def test_cpu_inference_defaults_to_bf16_and_training_to_fp32():
    p = plan()
    assert (p.device, p.dtype, p.quantization, p.target) == ("cpu", "bfloat16", "none", "cpu")
    assert plan(for_training=True).dtype == "float32"


def test_cpu_fp32_on_request():
    assert plan(dtype="float32").dtype == "float32"


def test_cuda_with_bitsandbytes_loads_nf4_on_this_process_gpu():
    p = plan(GPU)
    assert (p.device, p.dtype, p.quantization) == ("cuda", "bfloat16", "nf4")
    assert "NF4" in p.reason
    assert p.device_map() == {"": "cuda:0"} and p.quantization_settings() == NF4
    assert plan(GPU, for_training=True) == p  # on CUDA training and inference load alike
    ranked = plan(Hardware(cuda=True, bitsandbytes=True, n_gpus=2, local_rank=1), for_training=True)
    assert ranked.device_map() == {"": "cuda:1"}  # one full copy per GPU in a multi-GPU launch
    assert ranked.describe() == "cuda x2 (4-bit NF4, bfloat16 compute)"


def test_a_gpu_without_bf16_computes_in_fp16():
    p = plan(Hardware(cuda=True, bitsandbytes=True, bf16=False))
    assert p.dtype == "float16" and p.quantization_settings()["bnb_4bit_compute_dtype"] == "float16"


def test_cuda_without_bitsandbytes_says_why():
    p = plan(Hardware(cuda=True))
    assert (p.device, p.quantization) == ("cuda", "none") and "bitsandbytes" in p.reason
    assert p.device_map() is None and p.target == "cuda:0"


def test_cuda_with_quantization_off():
    p = plan(GPU, quantization="none", dtype="float16")
    assert (p.device, p.dtype, p.quantization) == ("cuda", "float16", "none")


def test_forced_cpu_on_a_cuda_machine():
    assert plan(GPU, device="cpu").device == "cpu"


def test_cpu_auto_stays_unquantised_even_with_bitsandbytes():
    cpu_bnb = Hardware(bitsandbytes=True)
    for for_training in (False, True):
        p = plan(cpu_bnb, for_training=for_training)
        assert p.quantization == "none" and p.device_map() is None and p.quantization_settings() is None


def test_explicit_4bit_on_the_cpu_loads_nf4_there():
    """Asked for by name, 4-bit loads on the CPU through bitsandbytes' CPU backend, placed while loading."""
    cpu_bnb = Hardware(bitsandbytes=True)
    p = plan(cpu_bnb, quantization="4bit")
    assert (p.device, p.dtype, p.quantization, p.target) == ("cpu", "bfloat16", "nf4", "cpu")
    assert p.device_map() == {"": "cpu"} and p.quantization_settings() == NF4
    assert "4-bit NF4" in p.reason and p.describe() == "cpu (4-bit NF4, bfloat16 compute)"
    training = plan(cpu_bnb, quantization="4bit", for_training=True)
    assert (
        training.dtype == "float32"
        and training.quantization_settings()["bnb_4bit_compute_dtype"] == "float32"
    )
    on_gpu_machine = plan(GPU, device="cpu", quantization="4bit")
    assert on_gpu_machine.device_map() == {"": "cpu"} and on_gpu_machine.quantization == "nf4"


def test_plan_load_asks_for_bitsandbytes_on_the_cpu_only_for_4bit(monkeypatch):
    asked = []
    monkeypatch.setattr(model_loading, "detect_hardware", lambda: CPU)
    monkeypatch.setattr(model_loading, "_bitsandbytes_importable", lambda: asked.append(1) or True)
    assert model_loading.plan_load(for_training=True).quantization == "none" and not asked
    assert model_loading.plan_load(quantization="4bit", for_training=True).quantization == "nf4" and asked
    monkeypatch.setattr(model_loading, "_bitsandbytes_importable", lambda: False)
    with pytest.raises(ModelError, match="bitsandbytes"):
        model_loading.plan_load(quantization="4bit", for_training=True)


def test_specific_gpu():
    p = plan(GPU, device="cuda:1")
    assert p.device == "cuda:1" and p.device_map() == {"": "cuda:1"}


@pytest.mark.parametrize(
    "hardware, kwargs, message",
    [
        (CPU, dict(device="cuda"), "no CUDA device"),
        (CPU, dict(quantization="4bit"), "needs the bitsandbytes package"),
        (Hardware(cuda=True), dict(quantization="4bit"), "bitsandbytes"),
        (CPU, dict(device="tpu"), "device must be one of"),
        (CPU, dict(dtype="int8"), "dtype must be one of"),
        (CPU, dict(quantization="8bit"), "quantization must be one of"),
    ],
)
def test_impossible_requests_are_explained(hardware, kwargs, message):
    with pytest.raises(ModelError, match=message):
        plan(hardware, **kwargs)


def test_from_pretrained_arguments():
    common = {"local_files_only": True, "trust_remote_code": False, "use_safetensors": True}
    assert from_pretrained_kwargs(plan()) == {"dtype": "bfloat16", **common}
    assert from_pretrained_kwargs(plan(GPU)) == {
        "dtype": "bfloat16", **common, "quantization_config": NF4, "device_map": {"": "cuda:0"},
    }  # fmt: skip
    assert from_pretrained_kwargs(plan(for_training=True), head="score") == {
        "dtype": "float32", **common, "num_labels": 1,
    }  # fmt: skip
    with pytest.raises(ValueError, match="head must be one of"):
        from_pretrained_kwargs(plan(), head="vision")


# ------------------------------------------------------------------ each caller gets the one plan


@pytest.fixture(params=[CPU, GPU, Hardware(cuda=True)], ids=["cpu", "cuda+bnb", "cuda"])
def hardware(request, monkeypatch):
    monkeypatch.setattr(model_loading, "detect_hardware", lambda: request.param)
    return request.param


def test_the_training_programs_and_evaluate_get_the_training_plan(hardware):
    from training.lora import choose_device  # sft, dpo, reward, ppo, score and evaluate all plan through it

    for quantization in ("auto", "none"):
        assert choose_device("auto", quantization) == plan(
            hardware, quantization=quantization, for_training=True
        )


def test_the_engine_gets_the_inference_plan(hardware, tiny_model_dir, monkeypatch):
    from medalign_desktop.engine import Engine

    seen = []

    def fake_load(folder, load_plan, head="causal"):
        seen.append((folder, load_plan, head))
        raise ModelError("stop here")  # the plan is what this test is about, not the weights

    monkeypatch.setattr(model_loading, "load_base_model", fake_load)
    with pytest.raises(Exception, match="stop here"):
        Engine().load(tiny_model_dir, quantization="auto")
    assert seen == [(tiny_model_dir, plan(hardware), "causal")]


def test_evaluate_loads_its_generator_through_the_loader(hardware, monkeypatch):
    from training.eval_generate import load_generator

    class FakeModel:
        def eval(self):
            return self

    seen = []
    monkeypatch.setattr(
        model_loading, "load_base_model", lambda folder, p: seen.append((folder, p)) or FakeModel()
    )
    training_plan = plan(hardware, for_training=True)
    model, adapters = load_generator("base", training_plan, [])
    assert seen == [("base", training_plan)] and adapters == {}
