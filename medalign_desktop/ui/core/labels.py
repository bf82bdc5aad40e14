"""Words shown for the store's codes (``factually_wrong`` -> "Factually wrong") and its timestamps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from medalign_desktop.jobs.kinds import APP_KINDS
from medalign_desktop.store import REJECT_REASONS, SAFETY_FLAGS, VERDICTS

# Training methods by job / version kind, with the research project's model letter first (jobs/kinds' table).
METHOD_LABELS = {name: spec.label for name, spec in APP_KINDS.items()}
VERDICT_LABELS = {"accept": "Accepted", "edit": "Edited", "reject": "Rejected"}
# The colours of the verdict buttons, reused in the History table so a verdict reads the same everywhere.
VERDICT_COLOURS = {"accept": "#2e7d32", "edit": "#1565c0", "reject": "#c62828"}


def code_label(code: str | None) -> str:
    """A vocabulary code as words: underscores to spaces, first letter capital."""
    if not code:
        return ""
    words = code.replace("_", " ")
    return words[0].upper() + words[1:]


def method_label(kind: str) -> str:
    return METHOD_LABELS.get(kind, kind)


def verdict_label(verdict: str | None) -> str:
    return VERDICT_LABELS.get(verdict or "", code_label(verdict))


def reject_reasons() -> list[tuple[str, str]]:
    return [(code, code_label(code)) for code in REJECT_REASONS]


def safety_flags() -> list[tuple[str, str]]:
    return [(code, code_label(code)) for code in SAFETY_FLAGS]


def verdicts() -> list[tuple[str, str]]:
    return [(code, verdict_label(code)) for code in VERDICTS]


def _local_format(timestamp: str | None, pattern: Callable[[datetime], str]) -> str:
    """The store's UTC ISO timestamp in local time, written as ``pattern(moment)`` says; "" for none, the
    text itself when it is not a timestamp."""
    if not timestamp:
        return ""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return timestamp
    return moment.strftime(pattern(moment))


def short_time(timestamp: str | None) -> str:
    """Compact local time for tables: '24 Nov 19:09' this year, '24 Nov 2025' before."""
    return _local_format(timestamp, lambda m: "%d %b %H:%M" if m.year == datetime.now().year else "%d %b %Y")


def local_time(timestamp: str | None, *, seconds: bool = False) -> str:
    """The store's UTC ISO timestamp in the workstation's local time, e.g. '2026-11-03 14:22'."""
    return _local_format(timestamp, lambda _m: "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
