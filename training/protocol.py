"""The job event protocol: one JSON object per line on the training program's stdout.

Defined once, here, and used by both sides: the training programs write events with :func:`emit`, and the
app's job runner reads them back with :class:`EventStreamParser` (or :func:`parse_line` for one line).
This module imports only the standard library, so the app can import it without loading torch.

Every line is a JSON object with ``"event"`` (its type) and ``"time"`` (Unix time in seconds, a float),
plus the fields of its type:

=========  ==========================================================================================
event      fields
=========  ==========================================================================================
started    kind, total_steps, n_train, n_eval, device
metric     step, epoch, loss, learning_rate, grad_norm, tokens_per_s, eval_loss (all but step may be
           null), plus any further numeric values the trainer logged (kept in ``Metric.extra``)
progress   step, total, elapsed_s, eta_s (eta_s null until the first step is done)
log        level ("debug" | "info" | "warning" | "error"), message
artifact   name, path
finished   adapter_path, metrics (object), duration_s
failed     reason, advice (advice may be "")
=========  ==========================================================================================

Reading never raises: a line that is not JSON, not an object, of an unknown type or with a missing or
mistyped field comes back as :class:`LogText`, so a stray library print is shown as log text rather than
breaking the job view. Floats may be ``NaN`` / ``Infinity`` (Python's JSON spelling) when a loss diverges.

Exit codes of ``python -m training``: :data:`EXIT_OK`, :data:`EXIT_FAILED`, :data:`EXIT_USAGE`,
:data:`EXIT_CANCELLED`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar, TextIO

EXIT_OK = 0
EXIT_FAILED = 1  # a `failed` event says why
EXIT_USAGE = 2  # bad command line (argparse); a `failed` event is written too
# 128 + SIGTERM: the job was cancelled; the last event is `failed` with reason "cancelled"
EXIT_CANCELLED = 143

CANCELLED_REASON = "cancelled"
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all events. ``time`` defaults to now."""

    EVENT: ClassVar[str] = ""
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.EVENT, **asdict(self)}

    def to_line(self) -> str:
        """The event as one line of JSON, without the trailing newline."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, kw_only=True)
class Started(Event):
    EVENT: ClassVar[str] = "started"
    kind: str
    total_steps: int
    n_train: int
    n_eval: int
    device: str


@dataclass(frozen=True, kw_only=True)
class Metric(Event):
    """One log of the trainer: training values (loss, ...) or evaluation values (eval_loss), or both."""

    EVENT: ClassVar[str] = "metric"
    step: int
    epoch: float | None = None
    loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    eval_loss: float | None = None
    extra: dict[str, float] = field(default_factory=dict)  # written flat, next to the named fields

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        extra = data.pop("extra")
        return {**data, **{k: v for k, v in extra.items() if k not in data}}


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    EVENT: ClassVar[str] = "progress"
    step: int
    total: int
    elapsed_s: float
    eta_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class Log(Event):
    EVENT: ClassVar[str] = "log"
    level: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Artifact(Event):
    EVENT: ClassVar[str] = "artifact"
    name: str
    path: str


@dataclass(frozen=True, kw_only=True)
class Finished(Event):
    EVENT: ClassVar[str] = "finished"
    adapter_path: str
    metrics: dict[str, Any]
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class Failed(Event):
    EVENT: ClassVar[str] = "failed"
    reason: str
    advice: str = ""

    @property
    def cancelled(self) -> bool:
        return self.reason == CANCELLED_REASON


EVENT_TYPES: dict[str, type[Event]] = {
    cls.EVENT: cls for cls in (Started, Metric, Progress, Log, Artifact, Finished, Failed)
}


@dataclass(frozen=True)
class LogText:
    """A line that is not an event: shown as log text, never an error."""

    text: str


# ---------------------------------------------------------------------------------------------- parsing


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type hint (int is accepted for float; bool is not a number)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return isinstance(value, hint)


_HINTS: dict[type[Event], dict[str, Any]] = {cls: typing.get_type_hints(cls) for cls in EVENT_TYPES.values()}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Build an event from a decoded JSON object; raises ValueError when it is not a valid event."""
    cls = EVENT_TYPES.get(data.get("event"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown event type {data.get('event')!r}")
    hints = _HINTS[cls]
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "extra":
            continue
        if f.name not in data:
            if f.default is not MISSING or f.default_factory is not MISSING:  # optional field
                continue
            raise ValueError(f"{cls.EVENT} event without '{f.name}'")
        value = data[f.name]
        if not _matches(value, hints[f.name]):
            raise ValueError(f"{cls.EVENT} event: '{f.name}' has the wrong type ({type(value).__name__})")
        hint = hints[f.name]
        if isinstance(value, int) and (hint is float or float in typing.get_args(hint)):
            value = float(value)
        kwargs[f.name] = value
    if cls is Metric:
        known = {f.name for f in fields(cls)} | {"event"}
        kwargs["extra"] = {
            k: v
            for k, v in data.items()
            if k not in known and isinstance(v, int | float) and not isinstance(v, bool)
        }
    return cls(**kwargs)


def parse_line(line: str | bytes) -> Event | LogText:
    """One line of a job's stdout as an event, or as LogText when it is anything else. Never raises."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.rstrip("\r\n")
    stripped = text.strip()
    if not stripped.startswith("{"):
        return LogText(text)
    try:
        data = json.loads(stripped)
        if not isinstance(data, dict):
            return LogText(text)
        return event_from_dict(data)
    except (ValueError, TypeError, RecursionError):
        return LogText(text)


class EventStreamParser:
    """Turns chunks of a job's stdout (bytes or str, cut anywhere) into events.

    A partial line is kept until its newline arrives; :meth:`close` flushes what is left as LogText (a
    stream cut mid-line never yields half an event). Bytes are decoded per complete line, so a UTF-8
    character split across chunks survives and invalid bytes become U+FFFD. Blank lines are skipped. A
    line longer than ``max_line_bytes`` is cut there, returned as LogText, and the rest of it dropped.
    """

    def __init__(self, max_line_bytes: int = 16 * 2**20):
        self.max_line_bytes = max_line_bytes
        self._pending = bytearray()
        self._skipping = False  # inside the dropped tail of an over-long line

    def feed(self, chunk: bytes | str) -> list[Event | LogText]:
        data = chunk.encode("utf-8", errors="surrogatepass") if isinstance(chunk, str) else bytes(chunk)
        out: list[Event | LogText] = []
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                self._add(data[start:], out)
                return out
            self._add(data[start:newline], out)
            if self._skipping:
                self._skipping = False
            else:
                self._emit_line(out)
            start = newline + 1

    def close(self) -> list[Event | LogText]:
        """Flush an unterminated last line (as LogText: the writer died before finishing it)."""
        out: list[Event | LogText] = []
        if self._pending.strip() and not self._skipping:
            out.append(LogText(self._pending.decode("utf-8", errors="replace").rstrip("\r")))
        self._pending.clear()
        self._skipping = False
        return out

    def _add(self, piece: bytes, out: list[Event | LogText]) -> None:
        if self._skipping or not piece:
            return
        self._pending += piece
        if len(self._pending) > self.max_line_bytes:
            head = bytes(self._pending[: self.max_line_bytes])
            out.append(LogText(head.decode("utf-8", errors="replace") + " [line cut: too long]"))
            self._pending.clear()
            self._skipping = True

    def _emit_line(self, out: list[Event | LogText]) -> None:
        line = bytes(self._pending)
        self._pending.clear()
        if line.strip():
            out.append(parse_line(line))


# ---------------------------------------------------------------------------------------------- writing

_event_stream: TextIO | None = None


def set_event_stream(stream: TextIO | None) -> TextIO | None:
    """Send events to ``stream`` (None: the current ``sys.stdout``); returns the previous one."""
    global _event_stream
    previous, _event_stream = _event_stream, stream
    return previous


def is_main_process() -> bool:
    """Under ``accelerate launch`` / torchrun every process has RANK; only rank 0 writes events."""
    return os.environ.get("RANK", "0") in ("", "0")


def emit(event: Event, stream: TextIO | None = None) -> None:
    """Write one event as a line and flush, from the main process only."""
    if not is_main_process():
        return
    out = stream or _event_stream or sys.stdout
    out.write(event.to_line() + "\n")
    out.flush()
