"""Before a training job starts: does it fit in the chosen device's free memory, or must the answering
model make room? No Qt, no torch: figures in, a decision and its sentences out.

    plan = plan_job_memory(needed_bytes, free_bytes, answering_model_bytes, device_label="CPU RAM")
    plan.decision   "fits" | "unload" | "may_not_fit"
    plan.unload     True when the answering model should be unloaded while the job runs

``answering_model_bytes`` is the answering model's memory on the job's device (0 when no model is loaded or
it lives on another device: unloading it then gives the job nothing). A job that may not fit even then still
starts: the estimate is not exact, and a real out-of-memory failure comes with advice (training/oom.py).

``job_settings(job_dir)`` reads what the estimate needs from the job folder the snapshot wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import memory as training_memory
from training.config import CONFIG_CLASSES, defaults
from training.job_folder import CONFIG_FILE

FITS, UNLOAD, MAY_NOT_FIT = "fits", "unload", "may_not_fit"
# Room asked for beyond the estimate: the estimate is checked to within 25 % of measured peaks, and the
# rest of the system (the app itself, the desktop) keeps moving while the job runs. 15 % is between
# unloading whenever the estimate is near the free figure and trusting it blindly.
HEADROOM = 0.15
MiB, GiB = 2**20, 2**30


def describe_bytes(n: int) -> str:
    """ "12 GiB", "2.3 GiB", "0.4 GiB", "85 MiB": a figure a person reads at a glance."""
    if n >= 10 * GiB:
        return f"{n / GiB:.0f} GiB"
    if n >= GiB // 10:
        return f"{n / GiB:.1f} GiB"
    return f"{n / MiB:.0f} MiB"


@dataclass(frozen=True)
class MemoryPlan:
    decision: str  # FITS, UNLOAD or MAY_NOT_FIT
    needed_bytes: int
    free_bytes: int
    answering_model_bytes: int  # on the job's device
    device_label: str  # "CPU RAM", "GPU 0: NVIDIA ... (80 GiB)"

    @property
    def unload(self) -> bool:
        """Unload the answering model first (when it must, and when it helps even if not enough)."""
        return self.decision != FITS and self.answering_model_bytes > 0

    def _figures(self) -> str:
        needed, free = describe_bytes(self.needed_bytes), describe_bytes(self.free_bytes)
        return f"needs about {needed}, {free} free on {self.device_label}"

    def status_message(self, job_id: int) -> str:
        """The status bar's sentence once the plan is carried out (the model already unloaded if so)."""
        if self.decision == FITS:
            return f"Job #{job_id} fits in memory ({self._figures()})."
        if self.decision == UNLOAD:
            return f"Unloaded the answering model to make room for job #{job_id} ({self._figures()})."
        done = "even with the answering model unloaded " if self.unload else ""
        return (
            f"Job #{job_id} may not fit in memory {done}({self._figures()}); it runs anyway, and if "
            "memory runs out it fails with advice on which settings to lower."
        )

    def panel_text(self, job_title: str) -> str:
        """The Train page's line beside the Start buttons, before any job runs."""
        head = (
            f"Estimated memory for a {job_title} job: about {describe_bytes(self.needed_bytes)}; "
            f"{describe_bytes(self.free_bytes)} free on {self.device_label}"
        )
        if self.decision == UNLOAD:
            return f"{head} (the answering model will be unloaded while it runs)"
        if self.decision == MAY_NOT_FIT:
            return f"{head} (may not fit{', even with the answering model unloaded' if self.unload else ''})"
        return head


def kind_defaults(kind: str) -> dict[str, Any]:
    """A job kind's default settings, as its training program's config declares them (the UI's fields)."""
    return defaults(kind)


def has_memory_estimate(kind: str) -> bool:
    """Whether training/memory.py estimates jobs of ``kind`` (evaluate and score load a model only to read)."""
    return kind in training_memory.KINDS


def estimate_job_memory(kind: str, config: dict[str, Any], model_dir: str | Path, *, device: str) -> Any:
    """The training side's memory estimate (training/memory.py) of a job of ``kind``: the UI asks here, so
    only jobs/ speaks to the training programs' modules."""
    return training_memory.estimate_job_memory(kind, config, model_dir, device=device)


def plan_job_memory(
    needed_bytes: int,
    free_bytes: int,
    answering_model_bytes: int,
    *,
    device_label: str = "CPU RAM",
    headroom: float = HEADROOM,
) -> MemoryPlan:
    """Decide: the job fits beside the answering model, fits once it is unloaded, or may not fit at all."""
    if needed_bytes < 0 or free_bytes < 0 or answering_model_bytes < 0:
        raise ValueError("memory figures cannot be negative")
    wanted = needed_bytes * (1 + headroom)
    if wanted <= free_bytes:
        decision = FITS
    elif answering_model_bytes > 0 and wanted <= free_bytes + answering_model_bytes:
        decision = UNLOAD
    else:
        decision = MAY_NOT_FIT
    return MemoryPlan(decision, needed_bytes, free_bytes, answering_model_bytes, device_label)


def job_settings(job_dir: str | Path) -> tuple[str, dict[str, Any], str]:
    """(kind, settings, base model folder) of a snapshot job folder: the kind's defaults updated with
    config.json, as the training program will read them. ValueError names the file when it cannot."""
    path = Path(job_dir) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: the job's config cannot be read ({exc}).") from None
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind not in CONFIG_CLASSES:
        raise ValueError(f"{path}: field 'kind' is missing or unknown ({kind!r}).")
    settings = {**defaults(kind), **config}
    return kind, settings, str(settings.get("base_model") or "")


def job_device(settings: dict[str, Any], have_cuda: bool) -> str:
    """ "cuda" or "cpu": where the training program will run, as it decides ("auto": CUDA when there is one)."""
    wanted = str(settings.get("device", "auto"))
    if wanted == "cpu" or not have_cuda:
        return "cpu"
    return "cuda"
