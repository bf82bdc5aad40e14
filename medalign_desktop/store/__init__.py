"""MedAlign Desktop's storage layer: one SQLite file per workspace, through sqlite-utils. No Qt here.

Import what you need from here; the submodules are internal.
"""

from __future__ import annotations

from medalign_desktop.store.errors import StoreError, StoreImportError, StoreValidationError
from medalign_desktop.store.import_batches import ImportBatch
from medalign_desktop.store.imports.base import ImportIssue, ImportReport
from medalign_desktop.store.imports.preferences import import_preferences
from medalign_desktop.store.imports.questions import import_questions
from medalign_desktop.store.rows import (
    COMPARISON_CHOICES,
    PAIR_SOURCES,
    AuditEntry,
    Comparison,
    FeedbackDetail,
    Generation,
    HistoryRow,
    Job,
    JobMetric,
    ModelVersion,
    PairFilter,
    PreferencePair,
    Prompt,
)
from medalign_desktop.store.schema.migrations import MIGRATIONS, Migration, latest_version
from medalign_desktop.store.store import Store
from medalign_desktop.store.vocab import (
    AUDIT_ACTIONS,
    JOB_STATES,
    REJECT_REASONS,
    SAFETY_FLAGS,
    SPLITS,
    VERDICTS,
)

__all__ = [
    "AUDIT_ACTIONS",
    "COMPARISON_CHOICES",
    "JOB_STATES",
    "MIGRATIONS",
    "PAIR_SOURCES",
    "REJECT_REASONS",
    "SAFETY_FLAGS",
    "SPLITS",
    "VERDICTS",
    "AuditEntry",
    "Comparison",
    "FeedbackDetail",
    "Generation",
    "HistoryRow",
    "ImportBatch",
    "ImportIssue",
    "ImportReport",
    "Job",
    "JobMetric",
    "Migration",
    "ModelVersion",
    "PairFilter",
    "PreferencePair",
    "Prompt",
    "Store",
    "StoreError",
    "StoreImportError",
    "StoreValidationError",
    "import_preferences",
    "import_questions",
    "latest_version",
]
