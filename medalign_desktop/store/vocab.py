"""The fixed vocabularies of the store: verdicts, reject reasons, safety flags, splits, job states.

They live in Python rather than only in SQL ``CHECK`` constraints so that a later issue can extend a list
(e.g. a new safety flag) without rebuilding a table; the UI reads them from here to build its menus.
"""

from __future__ import annotations

VERDICTS: tuple[str, ...] = ("accept", "edit", "reject")

REJECT_REASONS: tuple[str, ...] = (
    "factually_wrong",
    "unsafe",
    "incomplete",
    "off_topic",
    "poorly_written",
    "other",
)

SAFETY_FLAGS: tuple[str, ...] = ("unsafe_advice", "hallucinated_fact", "missing_red_flag", "privacy")

SPLITS: tuple[str, ...] = ("train", "held_out")

JOB_STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_JOB_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

# Which state a job may move to from which; anything else is a programming error in the job runner.
JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "failed", "cancelled"}),
    "running": frozenset({"succeeded", "failed", "cancelled"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}

AUDIT_ACTIONS: tuple[str, ...] = ("create", "change", "withdraw", "undo")

QUEUE_MODES: tuple[str, ...] = ("unannotated", "all")
