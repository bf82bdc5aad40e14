"""The memory planner in the window, with the scripted training stand-in (tests/data/fake_training.py) and
injected figures: a job that needs the answering model's room unloads it while it runs and reloads it with
the same active version after; a job that fits leaves it loaded; the Train page shows the estimate; two
GPUs bring the GPU choice, which reaches the jobs as CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt

from medalign_desktop.engine.devices import DeviceMemory
from medalign_desktop.jobs import memory_plan
from medalign_desktop.jobs.memory_plan import FITS, MAY_NOT_FIT, UNLOAD, describe_bytes
from medalign_desktop.jobs.requests import JobRequest
from medalign_desktop.store import Store
from medalign_desktop.ui.annotate.page import Phase
from medalign_desktop.ui.core.plain import tip
from medalign_desktop.ui.train.memory_planner import plan_on_devices
from tests.gui.conftest import run, seed_verdicts, wait_answer, wait_phase
from training.config import defaults
from training.memory import MemoryEstimate, estimate_job_memory

FAKE = Path(__file__).resolve().parents[1] / "data" / "fake_training.py"
MiB, GiB = 2**20, 2**30
NEEDED = 10 * MiB  # the tiny model itself takes about 13 MiB, so unloading it makes room for this


class FakeEstimate:
    """Stands in for training.memory.estimate_job_memory (its numbers are tested on their own)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, kind, config, model_dir, *, device):
        self.calls.append((kind, str(model_dir), device))
        return MemoryEstimate(NEEDED, device, {"weights": 6 * MiB, "activations": 4 * MiB})


def cpu_with(free: int) -> list[DeviceMemory]:
    return [DeviceMemory("cpu", "CPU RAM", 16 * GiB, free)]


def two_gpus() -> list[DeviceMemory]:
    return [
        DeviceMemory("cuda:0", "NVIDIA H100", 80 * GiB, 2 * GiB, 0),
        DeviceMemory("cuda:1", "NVIDIA H100", 80 * GiB, 60 * GiB, 0),
        *cpu_with(8 * GiB),
    ]


def start_window(qtbot, make_window, db_path, adapter: Path, devices: list[DeviceMemory], **fake):
    """A window whose active version B-iter-1 answers, jobs run the stand-in, the planner reads ``devices``."""
    seed_verdicts(db_path, 6)
    with Store.open(db_path) as store:
        version = store.add_model_version("B-iter-1", "hitl", adapter_path=str(adapter))
        store.set_active_model_version(version)
    window = make_window(db=db_path)
    assert run(qtbot, window.start_task) is True
    assert window.ctx.engine.adapter_name == "B-iter-1"
    training = window.training
    training.jobs.launcher = f"python {FAKE}"
    training.kind_overrides = {"hitl": {"fake_adapter_source": str(adapter), **fake}}
    training.planner.estimate = FakeEstimate()

    async def read_devices() -> list[DeviceMemory]:
        return devices

    training.planner.read_devices = read_devices
    messages: list[str] = []
    training.status_message.connect(messages.append)
    return window, messages


def test_a_job_that_needs_the_room_unloads_the_model_and_it_comes_back_with_the_same_version(
    qtbot, make_window, seeded_db, tiny_adapters
):
    window, messages = start_window(
        qtbot, make_window, seeded_db, tiny_adapters[0], cpu_with(5 * MiB), fake_mode="hang"
    )
    training, annotate, engine = window.training, window.annotate, window.ctx.engine
    label = engine.loaded.label
    wait_answer(qtbot, annotate)

    training.request_training("hitl")
    qtbot.waitUntil(lambda: training.jobs.running_job_id == 1, timeout=10000)
    assert engine.loaded is None and engine.adapter_name is None
    unloaded = (
        "Unloaded the answering model to make room for job #1 (needs about 10 MiB, 5 MiB free on CPU RAM)."
    )
    qtbot.waitUntil(lambda: unloaded in messages)
    # the job's estimate (the Train page's line asks for the same one when it refreshes)
    assert set(training.planner.estimate.calls) == {("hitl", str(window.options.model_dir), "cpu")}
    log = list(training.train_page.live_logs[1])
    estimate = FakeEstimate()("hitl", {}, "", device="cpu").describe()
    assert log[0] == f"Memory: the estimate is {estimate}. {unloaded}"
    assert log[1] == "Memory: 5 MiB free on CPU RAM with the answering model unloaded."
    assert window.status.model.text() == "Model unloaded for training"

    # the Annotate page: the answer on screen can be reviewed; the next question says why none comes
    reason = "The answering model is unloaded while training job #1 runs; it comes back when the job ends."
    assert annotate.actions.feedback.text() == "Answering model unloaded"
    assert not annotate.ask_button.isEnabled() and not annotate.actions.regenerate.isEnabled()
    qtbot.mouseClick(annotate.actions.skip, Qt.MouseButton.LeftButton)
    wait_phase(qtbot, annotate, Phase.WAITING)
    assert annotate.answer.text.placeholderText() == reason

    # the job ends (cancelled here): the model and its version come back, and the waiting question is answered
    run(qtbot, window.ctx.tasks.start(training.jobs.cancel(1)))
    qtbot.waitUntil(lambda: engine.loaded is not None and engine.adapter_name == "B-iter-1", timeout=20000)
    qtbot.waitUntil(lambda: f"Reloaded {label} with B-iter-1 after job #1." in messages, timeout=10000)
    assert engine.loaded.plan.dtype == "float32" and engine.loaded.plan.device == "cpu"
    wait_answer(qtbot, annotate)
    assert window.ctx.model_version == "B-iter-1"
    with Store.open(seeded_db) as store:
        assert store.get_generation(annotate.generation_id).model_version == "B-iter-1"


def test_a_job_that_fits_leaves_the_model_loaded_and_its_new_version_answers(
    qtbot, make_window, seeded_db, tiny_adapters
):
    window, messages = start_window(qtbot, make_window, seeded_db, tiny_adapters[1], cpu_with(4 * GiB))
    training, engine = window.training, window.ctx.engine
    unloads: list[str] = []
    training.planner.model_released.connect(unloads.append)
    training.request_training("hitl")
    qtbot.waitUntil(lambda: window.ctx.engine.adapter_name == "B-iter-2", timeout=20000)
    assert unloads == [] and engine.loaded is not None
    assert not any("Unloaded" in m or "Reloaded" in m for m in messages)
    assert (
        "Job #1 fits in memory (needs about 10 MiB, 4.0 GiB free on CPU RAM)."
        in training.train_page.live_logs[1][0]
    )


def test_a_version_trained_while_the_model_was_unloaded_answers_once_it_is_back(
    qtbot, make_window, seeded_db, tiny_adapters
):
    window, messages = start_window(qtbot, make_window, seeded_db, tiny_adapters[0], cpu_with(5 * MiB))
    training, engine = window.training, window.ctx.engine
    label = engine.loaded.label
    training.request_training("hitl")  # the stand-in succeeds at once with a new adapter
    qtbot.waitUntil(lambda: "B-iter-2 is trained and now answers." in messages, timeout=20000)
    assert engine.loaded is not None and engine.adapter_name == "B-iter-2"
    assert window.ctx.model_version == "B-iter-2"
    assert any(m.startswith("Unloaded the answering model to make room for job #1 (") for m in messages)
    # the reload comes first (with the version active until then), the new version goes onto it
    reloaded = messages.index(f"Reloaded {label} with B-iter-1 after job #1.")
    assert reloaded < messages.index("B-iter-2 is trained and now answers.")
    with Store.open(seeded_db) as store:
        assert store.active_model_version().name == "B-iter-2"


def test_a_model_that_cannot_come_back_says_so_and_how_to_load_it(
    qtbot, make_window, seeded_db, tiny_adapters, tmp_path
):
    window, messages = start_window(
        qtbot, make_window, seeded_db, tiny_adapters[0], cpu_with(5 * MiB), fake_mode="hang"
    )
    training, planner = window.training, window.training.planner
    training.request_training("hitl")
    qtbot.waitUntil(lambda: planner.released is not None, timeout=10000)
    gone = tmp_path / "moved-away"  # as if the model folder were moved while the job ran
    planner.released = replace(planner.released, request=replace(planner.released.request, model_dir=gone))
    run(qtbot, window.ctx.tasks.start(training.jobs.cancel(1)))
    reason = "The answering model could not be loaded again after job #1 ("
    qtbot.waitUntil(lambda: any(m.startswith(reason) for m in messages), timeout=10000)
    assert messages[-1].endswith("). Open it with File > Open model folder.") and str(gone) in messages[-1]
    assert window.annotate.actions.feedback.text() == "Answering model unloaded"
    assert window.status.model.toolTip() == tip(messages[-1])  # escaped: it quotes a folder name
    # the dialog, readable: the failed task reaches the error reporter an event-loop turn after the message
    qtbot.waitUntil(lambda: bool(window.ctx.errors.shown), timeout=5000)
    assert str(gone) in window.ctx.errors.shown[-1]
    assert window.ctx.engine.loaded is None and planner.released is None  # no retry loop on every idle


def test_the_train_page_shows_the_estimate_beside_the_buttons(qtbot, make_window, seeded_db, tiny_adapters):
    window, _messages = start_window(qtbot, make_window, seeded_db, tiny_adapters[0], cpu_with(5 * MiB))
    window.show_page(2)
    panel = window.training.planner.panel
    qtbot.waitUntil(
        lambda: (
            panel.estimate_label.text()
            == "Estimated memory for a Retrain (B) job: about 10 MiB; 5 MiB free on CPU RAM "
            "(the answering model will be unloaded while it runs)"
        ),
        timeout=10000,
    )
    assert panel.isVisible() and not panel.gpu_box.isVisible()  # one device: no choice to make


def test_the_real_estimate_for_the_loaded_model_is_what_the_line_shows(qtbot, make_window, seeded_db):
    window = make_window(db=seeded_db)
    assert run(qtbot, window.start_task) is True
    planner = window.training.planner
    assert (
        planner.estimate is memory_plan.estimate_job_memory
    )  # training/memory.py via jobs, nothing injected but the RAM

    async def read_devices() -> list[DeviceMemory]:
        return cpu_with(64 * GiB)

    planner.read_devices = read_devices
    model_dir = window.options.model_dir
    expected = estimate_job_memory("hitl", {**defaults("hitl"), "base_model": str(model_dir)}, model_dir)
    window.show_page(2)
    qtbot.waitUntil(
        lambda: (
            planner.panel.estimate_label.text()
            == f"Estimated memory for a Retrain (B) job: about {describe_bytes(expected.total_bytes)}; "
            "64 GiB free on CPU RAM"
        ),
        timeout=10000,
    )


def test_two_gpus_bring_the_gpu_choice_which_the_jobs_and_the_estimate_follow(
    qtbot, make_window, seeded_db, tiny_adapters, monkeypatch
):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    window, _messages = start_window(qtbot, make_window, seeded_db, tiny_adapters[0], two_gpus())
    planner, panel = window.training.planner, window.training.planner.panel
    window.show_page(2)
    qtbot.waitUntil(lambda: panel.gpu_box.count() == 2, timeout=10000)
    assert panel.gpu_box.isVisible()
    assert [panel.gpu_box.itemText(i) for i in range(2)] == [
        "GPU 0 (NVIDIA H100): 2.0 of 80 GiB free",
        "GPU 1 (NVIDIA H100): 60.0 of 80 GiB free",
    ]
    qtbot.waitUntil(
        lambda: "2.0 GiB free on GPU 0 (NVIDIA H100)" in panel.estimate_label.text(), timeout=10000
    )

    panel.gpu_box.setCurrentIndex(1)
    panel.gpu_box.activated.emit(1)
    assert planner.gpu_index == 1 and panel.chosen_gpu == 1
    assert window.training.jobs.env_extra["CUDA_VISIBLE_DEVICES"] == "1"
    qtbot.waitUntil(
        lambda: (
            panel.estimate_label.text()
            == "Estimated memory for a Retrain (B) job: about 10 MiB; 60 GiB free on GPU 1 (NVIDIA H100)"
        ),
        timeout=10000,
    )
    assert planner.estimate.calls[-1][2] == "cuda"  # the job would run on the GPU: a CUDA estimate


def answering_model(device: str, memory_bytes: int):
    """The two fields of a LoadedModel the plan reads."""
    return SimpleNamespace(plan=SimpleNamespace(device=device), memory_bytes=memory_bytes)


def test_on_cuda_the_answering_model_makes_room_only_on_the_gpu_the_job_uses():
    estimate = FakeEstimate()
    devices = [DeviceMemory("cuda:0", "A", 80 * GiB, 5 * MiB), DeviceMemory("cuda:1", "B", 80 * GiB, 5 * MiB)]
    devices.append(cpu_with(8 * GiB)[0])
    on_gpu0 = answering_model("cuda", 20 * MiB)  # "cuda": torch's current device, cuda:0 in the app
    settings = {"device": "auto"}
    _, plan = plan_on_devices("dpo", settings, "/m", devices, gpu_index=0, loaded=on_gpu0, estimate=estimate)
    assert plan.decision == UNLOAD and plan.device_label == "GPU 0 (A)"
    _, plan = plan_on_devices("dpo", settings, "/m", devices, gpu_index=1, loaded=on_gpu0, estimate=estimate)
    assert plan.decision == MAY_NOT_FIT and not plan.unload  # the model is on GPU 0: no help on GPU 1
    on_gpu1 = answering_model("cuda:1", 20 * MiB)
    _, plan = plan_on_devices("dpo", settings, "/m", devices, gpu_index=1, loaded=on_gpu1, estimate=estimate)
    assert plan.unload
    assert [call[2] for call in estimate.calls] == ["cuda", "cuda", "cuda"]


def test_a_cpu_job_is_planned_against_system_ram_even_with_gpus():
    estimate = FakeEstimate()
    devices = two_gpus()
    on_cpu = answering_model("cpu", 20 * MiB)
    _, plan = plan_on_devices(
        "sft", {"device": "cpu"}, "/m", devices, gpu_index=1, loaded=on_cpu, estimate=estimate
    )
    assert plan.device_label == "CPU RAM" and plan.free_bytes == 8 * GiB and plan.decision == FITS
    assert estimate.calls == [("sft", "/m", "cpu")]
    # a chosen GPU that has gone away: the first one is used
    _, plan = plan_on_devices("sft", {}, "/m", devices, gpu_index=5, loaded=None, estimate=estimate)
    assert plan.device_label == "GPU 0 (NVIDIA H100)" and not plan.unload


@pytest.mark.parametrize("kind", ["evaluate", "score"])
def test_a_job_without_a_memory_estimate_logs_nothing_about_memory(qtbot, make_window, tmp_path, kind):
    """No internal "No memory estimate for job kind 'evaluate' (known: ...)" line in the job log (papercut)."""
    window = make_window(model=None, start=False)
    planner, lines = window.training.planner, []
    window.training.jobs.log.connect(lambda _job, text: lines.append(text))
    request = JobRequest(kind=kind, base_model=str(tmp_path), system_prompt="")
    run(qtbot, window.ctx.tasks.start(planner.before_launch(7, request, tmp_path / "job-7")))
    assert lines == []
