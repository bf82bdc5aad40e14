"""What a job shows on a terminal: a live progress line, or with ``--json`` one event per line.

    TerminalReporter(json_lines=False)   stderr, a tty: one line rewritten in place
                                         "job #3 hitl  [#######.....]  14/24  loss 1.234  eta 0:41"
                                         not a tty (a log file): the same line at most every 10 seconds
    TerminalReporter(json_lines=True)    stdout: every protocol event of the program as it came, with
                                         "job_id" added (training/protocol.py), then the command's result

Library log text goes to stderr only with ``--verbose``: a terminal shows the job, not transformers' chatter.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

BAR_WIDTH = 24
PLAIN_INTERVAL_S = 10.0


def clock(seconds: float) -> str:
    """0:41, 12:05, 1:02:03."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(label: str, step: int, total: int, loss: float | None, eta_s: float) -> str:
    filled = int(BAR_WIDTH * step / total) if total > 0 else 0
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    parts = [label, f"[{bar}]", f"{step}/{total}" if total > 0 else str(step)]
    if loss is not None:
        parts.append(f"loss {loss:.4g}")
    if eta_s >= 0:
        parts.append(f"eta {clock(eta_s)}")
    return "  ".join(parts)


class TerminalReporter:
    def __init__(
        self,
        *,
        json_lines: bool = False,
        verbose: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
        label: str = "",
    ) -> None:
        self.json_lines, self.verbose, self.label = json_lines, verbose, label
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.live = not json_lines and self.err.isatty()
        self.loss: float | None = None
        self._last_plain = 0.0
        self._line_open = False

    # -- JobReporter ---------------------------------------------------------------------------------
    def progress(self, job_id: int, step: int, total: int, eta_s: float) -> None:
        if self.json_lines:
            return  # the `progress` event itself is printed by event()
        text = progress_text(self.label or f"job #{job_id}", step, total, self.loss, eta_s)
        if self.live:
            print(f"\r{text}\x1b[K", end="", file=self.err, flush=True)
            self._line_open = True
        elif time.monotonic() - self._last_plain >= PLAIN_INTERVAL_S or (total and step >= total):
            self._last_plain = time.monotonic()
            print(text, file=self.err, flush=True)

    def metric(self, job_id: int, values: dict) -> None:
        if values.get("loss") is not None:
            self.loss = float(values["loss"])

    def log(self, job_id: int, text: str) -> None:
        if self.verbose and not self.json_lines:
            self.note(text)

    def event(self, job_id: int, event: Any) -> None:
        if self.json_lines:
            self.json({"job_id": job_id, **event.to_dict()})
        elif event.EVENT == "started":
            self.note(f"job #{job_id}: {event.n_train} examples, {event.total_steps} steps on {event.device}")
        elif event.EVENT == "failed":
            self.note(f"job #{job_id}: {event.reason}")

    def interrupted(self) -> None:
        self.note("Cancelling: the job stops at the next step ...")

    # -- output --------------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        """A line on stderr that does not break the progress line."""
        if self._line_open:
            print(file=self.err)
            self._line_open = False
        print(text, file=self.err, flush=True)

    def note_out(self, text: str) -> None:
        """A result line on stdout, after the progress line is closed."""
        if self._line_open:
            print(file=self.err)
            self._line_open = False
        print(text, file=self.out, flush=True)

    def json(self, record: dict) -> None:
        print(json.dumps(record, ensure_ascii=False, default=str), file=self.out, flush=True)

    def outcome(self, outcome: Any) -> None:
        """How a job ended (jobs/headless.JobOutcome): a sentence on stdout, or the `result` record."""
        if self._line_open:
            print(file=self.err, flush=True)
            self._line_open = False
        version = outcome.version.name if outcome.version is not None else None
        if self.json_lines:
            self.json(
                {
                    "result": outcome.state,
                    "job_id": outcome.job_id,
                    "version": version,
                    "error": outcome.error,
                }
            )
        elif outcome.succeeded:
            what = f": version {version} registered." if version else "."
            print(f"Job #{outcome.job_id} succeeded{what}", file=self.out, flush=True)
        else:
            reason = outcome.error or "no reason given"
            print(f"Job #{outcome.job_id} {outcome.state}: {reason}", file=self.out, flush=True)
