"""What every page needs: the two services, the settings, the task runner and the error reporter."""

from __future__ import annotations

from dataclasses import dataclass

from medalign_desktop.ui.core.errors import ErrorReporter
from medalign_desktop.ui.core.services import EngineService, StoreService
from medalign_desktop.ui.core.settings import AppSettings
from medalign_desktop.ui.core.tasks import TaskRunner


@dataclass
class AppContext:
    store: StoreService
    engine: EngineService
    settings: AppSettings
    tasks: TaskRunner
    errors: ErrorReporter
    # the name recorded on each generation: the active registered version, else the loaded model's label
    model_version: str | None = None

    @property
    def annotator(self) -> str:
        return self.settings.annotator
