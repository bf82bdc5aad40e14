"""The Train page's memory line: the planner's estimate for a job beside the Start buttons, and the GPU
the jobs run on when there are two or more. It only shows what the planner (ui/train/memory_planner.py) computed;
``shown`` asks it to compute again when the page comes into view."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from medalign_desktop.engine.devices import DeviceMemory
from medalign_desktop.ui.core.page_parts import box_layout

WAITING_TEXT = "Estimating the memory a training job needs..."


class MemoryPanel(QWidget):
    shown = Signal()  # the panel came into view: refresh the estimate
    gpu_chosen = Signal(int)  # the GPU (torch's index in this process) the next jobs run on

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.estimate_label = QLabel(WAITING_TEXT)
        self.estimate_label.setObjectName("metaLabel")
        self.estimate_label.setWordWrap(True)
        self.gpu_label = QLabel("Train on:")
        self.gpu_box = QComboBox()
        self.gpu_box.setToolTip("The GPU training jobs run on; the estimate compares with its free memory")
        self.gpu_box.activated.connect(lambda _row: self.gpu_chosen.emit(self.gpu_box.currentData()))
        layout = box_layout(self, QHBoxLayout)
        layout.addWidget(self.estimate_label, 1)
        layout.addWidget(self.gpu_label)
        layout.addWidget(self.gpu_box)
        self._show_gpu_choice(False)

    @property
    def chosen_gpu(self) -> int | None:
        return self.gpu_box.currentData() if self.gpu_box.isVisibleTo(self) else None

    def show_text(self, text: str, *, problem: bool = False) -> None:
        self.estimate_label.setText(text)
        self.estimate_label.setProperty("problem", problem)
        self.estimate_label.style().unpolish(self.estimate_label)
        self.estimate_label.style().polish(self.estimate_label)

    def show_devices(self, devices: list[DeviceMemory], chosen: int | None) -> None:
        """List the GPUs with their free memory; the choice is offered only when there is one to make."""
        gpus = [d for d in devices if d.is_cuda]
        self.gpu_box.blockSignals(True)
        self.gpu_box.clear()
        for gpu in gpus:
            free, total = gpu.free_bytes / 2**30, gpu.total_bytes / 2**30
            self.gpu_box.addItem(f"{gpu.label()}: {free:.1f} of {total:.0f} GiB free", gpu.index)
        row = self.gpu_box.findData(chosen)
        self.gpu_box.setCurrentIndex(max(row, 0))
        self.gpu_box.blockSignals(False)
        self._show_gpu_choice(len(gpus) >= 2)

    def _show_gpu_choice(self, visible: bool) -> None:
        self.gpu_label.setVisible(visible)
        self.gpu_box.setVisible(visible)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self.shown.emit()
