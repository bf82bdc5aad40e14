"""The status bar: what is happening now (with a busy bar), the loaded model, and the database."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from medalign_desktop.engine import LoadedModel
from medalign_desktop.ui.core.plain import plain, tip
from medalign_desktop.ui.core.saving_queue import BUSY_TEXT


def describe_model(loaded: LoadedModel, adapter: str | None = None) -> str:
    """E.g. 'SmolLM2-135M-Instruct · CPU · float32 · 517 MiB'."""
    quant = "4-bit NF4" if loaded.plan.quantization == "nf4" else loaded.plan.dtype
    name = loaded.label + (f" + {adapter}" if adapter else "")
    return f"{name} · {loaded.plan.device.upper()} · {quant} · {loaded.memory_bytes / 2**20:,.0f} MiB"


def describe_database(path: Path, stats: dict[str, int]) -> str:
    prompts, verdicts = stats.get("prompts", 0), stats.get("verdicts", 0)
    return (f"{path.name} · {prompts:,} question{'s' if prompts != 1 else ''} · "
            f"{verdicts:,} verdict{'s' if verdicts != 1 else ''}")  # fmt: skip


def privacy_notice(tightened: tuple[Path, ...]) -> str:
    """The one-time sentence for files an open made private ('' when it changed nothing)."""
    if not tightened:
        return ""
    names = ", ".join(path.name for path in tightened[:3]) + (" ..." if len(tightened) > 3 else "")
    return f"Made the workspace private: others could read {names}; now only you can."


class StatusPanel(QObject):
    """A QObject so that signals emitted on worker threads (model-load progress) reach it queued, on the
    GUI thread, rather than running its slots on the worker."""

    def __init__(self, bar: QStatusBar) -> None:
        super().__init__(bar)
        self.bar = bar
        self.message = QLabel()
        self.message.setObjectName("statusMessage")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: loading has no reliable percentage
        self.busy.setMaximumWidth(120)
        self.busy.setMaximumHeight(12)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.model = QLabel("No model loaded")
        self.model.setObjectName("statusModel")
        self.database = QLabel()
        self.database.setObjectName("statusDatabase")
        plain(self.message, self.model, self.database)  # model and file names are content
        bar.addWidget(self.busy)
        bar.addWidget(self.message, 1)
        bar.addPermanentWidget(self.model)
        bar.addPermanentWidget(self.database)

    @Slot(str)
    def set_busy(self, text: str) -> None:
        self.busy.show()
        self.message.setText(text)

    def set_idle(self, text: str = "") -> None:
        self.busy.hide()
        self.message.setText(text)

    def add_notice(self, text: str) -> None:
        """Append a one-time notice to whatever the message says now."""
        if text:
            self.message.setText(f"{self.message.text()} {text}".strip())

    def show_saving(self, text: str) -> None:
        """The saving queue's state: busy while verdicts wait for the database, then 'Saved'."""
        (self.set_busy if text == BUSY_TEXT else self.set_idle)(text)

    def set_model(self, text: str, tooltip: str = "") -> None:
        self.model.setText(text)
        self.model.setToolTip(tip(tooltip) or "")

    def set_database(self, path: Path, stats: dict[str, int]) -> None:
        self.database.setText(describe_database(path, stats))
        self.database.setToolTip(
            tip(
                f"{path}\n{stats.get('accept', 0):,} accepted, {stats.get('edit', 0):,} edited, "
                f"{stats.get('reject', 0):,} rejected, {stats.get('withdrawn', 0):,} withdrawn; "
                f"{stats.get('prompts_held_out', 0):,} questions held out"
            )
        )
