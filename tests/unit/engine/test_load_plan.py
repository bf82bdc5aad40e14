"""The device / precision / quantisation choice, exactly."""

from __future__ import annotations

import pytest

from medalign_desktop.engine.load_plan import choose_load_plan


def plan(**kw):
    kw.setdefault("cuda_available", False)
    kw.setdefault("bitsandbytes_available", False)
    return choose_load_plan(**kw)


def test_cpu_defaults_to_bf16():
    p = plan()
    assert (p.device, p.dtype, p.quantization) == ("cpu", "bfloat16", "none")


def test_cpu_fp32_on_request():
    assert plan(dtype="float32").dtype == "float32"


def test_cuda_with_bitsandbytes_loads_nf4():
    p = plan(cuda_available=True, bitsandbytes_available=True)
    assert (p.device, p.dtype, p.quantization) == ("cuda", "bfloat16", "nf4")
    assert "NF4" in p.reason


def test_cuda_without_bitsandbytes_says_why():
    p = plan(cuda_available=True)
    assert (p.device, p.quantization) == ("cuda", "none") and "bitsandbytes" in p.reason


def test_cuda_with_quantization_off():
    p = plan(cuda_available=True, bitsandbytes_available=True, quantization="none", dtype="float16")
    assert (p.device, p.dtype, p.quantization) == ("cuda", "float16", "none")


def test_forced_cpu_on_a_cuda_machine():
    assert plan(device="cpu", cuda_available=True, bitsandbytes_available=True).device == "cpu"


def test_specific_gpu():
    assert plan(device="cuda:1", cuda_available=True, bitsandbytes_available=True).device == "cuda:1"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(device="cuda"), "no CUDA device"),
        (dict(quantization="4bit"), "needs a CUDA device"),
        (dict(quantization="4bit", cuda_available=True), "bitsandbytes"),
        (dict(device="tpu"), "device must be one of"),
        (dict(dtype="int8"), "dtype must be one of"),
    ],
)
def test_impossible_requests_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan(**kwargs)
