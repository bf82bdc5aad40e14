"""The devices a training job can run on, and how much memory each has free right now. No Qt.

    list_devices() -> [DeviceMemory("cuda:0", "NVIDIA ...", ...), ..., DeviceMemory("cpu", "CPU RAM", ...)]

CPU: total and available system RAM (psutil when it is importable, else MemTotal / MemAvailable from
/proc/meminfo). CUDA: for each GPU torch sees, its name, total and free memory (``torch.cuda.mem_get_info``:
free for everyone, so other programs' use counts) and ``torch.cuda.memory_allocated`` of this process, which
is what unloading the answering model gives back. torch is imported inside the function, so importing this
module stays light; asking a GPU for its free memory creates this process's CUDA context if it had none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GiB = 2**30
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class DeviceMemory:
    key: str  # "cpu" or "cuda:N" (N: torch's index in this process)
    name: str  # "CPU RAM" or the GPU's name
    total_bytes: int
    free_bytes: int
    allocated_bytes: int = 0  # CUDA: allocated by this process's torch (the answering model, mostly)

    @property
    def is_cuda(self) -> bool:
        return self.key.startswith("cuda")

    @property
    def index(self) -> int | None:
        return int(self.key.split(":")[1]) if self.is_cuda else None

    def label(self) -> str:
        """For a sentence or a combo box: "CPU RAM", "GPU 1 (NVIDIA H100)"."""
        if not self.is_cuda:
            return self.name
        return f"GPU {self.index} ({self.name})"


def read_meminfo(path: Path | None = None) -> tuple[int, int]:
    """(total, available) bytes from /proc/meminfo (or a file like it; values in kB)."""
    values: dict[str, int] = {}
    for line in (path or MEMINFO).read_text(encoding="ascii", errors="replace").splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name in ("MemTotal", "MemAvailable", "MemFree") and fields and fields[0].isdigit():
            values[name] = int(fields[0]) * 1024
    total = values.get("MemTotal", 0)
    # MemAvailable exists since Linux 3.14; MemFree alone understates (it leaves out the page cache)
    return total, values.get("MemAvailable", values.get("MemFree", 0))


def system_memory() -> DeviceMemory:
    """System RAM: what a CPU training job can use."""
    try:
        import psutil

        memory = psutil.virtual_memory()
        total, available = int(memory.total), int(memory.available)
    except ImportError:
        total, available = read_meminfo()
    return DeviceMemory("cpu", "CPU RAM", total, available)


def cuda_devices(cuda=None) -> list[DeviceMemory]:
    """Every GPU torch sees, with its free memory; [] without torch, CUDA or a working driver.

    ``cuda``: the ``torch.cuda`` module (tests pass a stand-in)."""
    if cuda is None:
        try:
            import torch
        except ImportError:
            return []
        cuda = torch.cuda
    try:
        if not cuda.is_available():
            return []
        count = cuda.device_count()
    except RuntimeError:  # a driver that is present but broken
        return []
    found = []
    for index in range(count):
        try:
            free, total = cuda.mem_get_info(index)
            found.append(
                DeviceMemory(
                    f"cuda:{index}",
                    cuda.get_device_name(index),
                    int(total),
                    int(free),
                    int(cuda.memory_allocated(index)),
                )
            )
        except RuntimeError:  # one GPU in a bad state (or taken exclusively by another program): skip it
            continue
    return found


def list_devices(cuda=None) -> list[DeviceMemory]:
    """The GPUs (first: jobs use CUDA when there is one), then the CPU, which is always there."""
    return [*cuda_devices(cuda), system_memory()]


def visible_device_id(index: int, environ: Mapping[str, str] = os.environ) -> str:
    """The CUDA_VISIBLE_DEVICES value that shows a job this process's GPU ``index`` as its cuda:0.

    When the app itself runs with CUDA_VISIBLE_DEVICES set, its index N is the N-th entry of that list,
    not the physical GPU N."""
    visible = [part.strip() for part in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    if "CUDA_VISIBLE_DEVICES" in environ and index < len(visible):
        return visible[index]
    return str(index)
