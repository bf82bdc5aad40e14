"""Devices a job can run on and their free memory (engine/devices.py): the real CPU figures, a mocked CUDA."""

from __future__ import annotations

import sys

import pytest

from medalign_desktop.engine import devices
from medalign_desktop.engine.devices import (
    DeviceMemory,
    cuda_devices,
    list_devices,
    read_meminfo,
    system_memory,
    visible_device_id,
)

GiB = 2**30


class FakeCuda:
    """torch.cuda's few calls the module makes, for two GPUs (the second one half taken)."""

    def __init__(self, *, available: bool = True, broken: set[int] = frozenset()) -> None:
        self.available, self.broken = available, broken
        self.memory = {0: (70 * GiB, 80 * GiB), 1: (40 * GiB, 80 * GiB)}

    def is_available(self) -> bool:
        return self.available

    def device_count(self) -> int:
        return len(self.memory)

    def mem_get_info(self, index: int) -> tuple[int, int]:
        if index in self.broken:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self.memory[index]

    def get_device_name(self, index: int) -> str:
        return f"NVIDIA H100 #{index}"

    def memory_allocated(self, index: int) -> int:
        return 6 * GiB if index == 0 else 0


def test_the_cpu_figures_are_sane():
    cpu = system_memory()
    assert cpu.key == "cpu" and cpu.name == "CPU RAM" and not cpu.is_cuda and cpu.index is None
    assert 512 * 2**20 < cpu.total_bytes < 2**50
    assert 0 < cpu.free_bytes <= cpu.total_bytes
    total, available = read_meminfo()  # the fallback without psutil agrees within what moved meanwhile
    assert total == pytest.approx(cpu.total_bytes, rel=0.01)
    assert available == pytest.approx(cpu.free_bytes, rel=0.25)


def test_without_psutil_meminfo_gives_the_figures(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(
        "MemTotal:       16384000 kB\nMemFree:         1000000 kB\nMemAvailable:    8192000 kB\n"
    )
    monkeypatch.setattr(devices, "MEMINFO", meminfo)
    monkeypatch.setitem(sys.modules, "psutil", None)  # `import psutil` raises ImportError
    cpu = system_memory()
    assert (cpu.total_bytes, cpu.free_bytes) == (16384000 * 1024, 8192000 * 1024)


def test_an_old_kernel_without_memavailable_falls_back_to_memfree(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  2048 kB\nMemFree:  1024 kB\nBuffers:  5 kB\n")
    assert read_meminfo(meminfo) == (2048 * 1024, 1024 * 1024)


def test_every_gpu_with_its_name_free_memory_and_this_processs_allocation():
    gpus = cuda_devices(FakeCuda())
    assert gpus == [
        DeviceMemory("cuda:0", "NVIDIA H100 #0", 80 * GiB, 70 * GiB, 6 * GiB),
        DeviceMemory("cuda:1", "NVIDIA H100 #1", 80 * GiB, 40 * GiB, 0),
    ]
    assert [g.index for g in gpus] == [0, 1] and all(g.is_cuda for g in gpus)
    assert gpus[1].label() == "GPU 1 (NVIDIA H100 #1)"


def test_the_gpus_come_first_and_the_cpu_is_always_listed():
    keys = [d.key for d in list_devices(FakeCuda())]
    assert keys == ["cuda:0", "cuda:1", "cpu"]
    assert [d.key for d in list_devices(FakeCuda(available=False))] == ["cpu"]


def test_a_gpu_that_cannot_be_asked_is_left_out():
    assert [g.key for g in cuda_devices(FakeCuda(broken={0}))] == ["cuda:1"]


def test_this_machine_without_cuda_lists_the_cpu():
    import torch

    found = list_devices()
    assert found[-1].key == "cpu"
    assert len(found) == 1 + (torch.cuda.device_count() if torch.cuda.is_available() else 0)


@pytest.mark.parametrize(
    "index, environ, expected",
    [
        (1, {}, "1"),
        (1, {"CUDA_VISIBLE_DEVICES": "2,3"}, "3"),  # the app's own cuda:1 is the physical GPU 3
        (0, {"CUDA_VISIBLE_DEVICES": "GPU-5f1c, GPU-77ab"}, "GPU-5f1c"),
    ],
)
def test_the_job_is_shown_the_same_gpu_the_app_measured(index, environ, expected):
    assert visible_device_id(index, environ) == expected
