"""Python's cycle collector runs on the GUI thread only.

Automatic collection runs in whichever thread happens to allocate when a threshold is crossed. When that
is the engine or store worker thread, it may finalise Qt objects (a closed dialog, a window's lambdas)
away from the GUI thread - which Qt does not allow, and which deadlocked our tests (a worker thread stuck
inside a collection it triggered while parsing a tokenizer file). As Anki does, automatic collection is
switched off and a timer on the GUI thread collects instead, generation by generation, when the
allocation counts say it is due.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


class GuiThreadGarbageCollector(QObject):
    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.timer = QTimer(self, interval=interval_ms)
        self.timer.timeout.connect(self.check)
        gc.disable()
        self.timer.start()

    def check(self) -> None:
        """Collect the oldest generation whose allocation count passed its threshold."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        """Back to automatic collection (tests, shutdown)."""
        self.timer.stop()
        gc.collect()
        gc.enable()
