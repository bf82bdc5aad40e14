"""One training process, run through QProcess with separate stdout / stderr channels.

stdout carries the line-delimited JSON event stream (training/protocol.py); it is parsed as it arrives,
partial lines buffered. stderr is library chatter and tracebacks: kept as log text, and its tail is used to
explain a crash. Cancel terminates the process, then kills it if it has not exited after a grace period.
QtCore only (no widgets), so it runs in tests without a window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from training.protocol import EventStreamParser, LogText

STDERR_TAIL_LINES = 40


class JobProcess(QObject):
    event = Signal(object)  # a parsed protocol event
    log = Signal(str)  # a line of log text (non-JSON stdout lines and all of stderr)
    ended = Signal(int, bool)  # exit code, whether the process crashed / was killed
    start_failed = Signal(str)  # a readable reason: program not found, not executable, ...
    started = Signal(int)  # the process id, once it runs

    def __init__(self, argv: list[str], env: Mapping[str, str], working_dir: str, parent=None) -> None:
        super().__init__(parent)
        self.argv = list(argv)
        self.cancel_requested = False
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._stdout = EventStreamParser()
        self._stderr = EventStreamParser()  # used only to split lines; everything on stderr is log text
        self._process = QProcess(self)
        self._process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        self._process.setWorkingDirectory(working_dir)
        environment = QProcessEnvironment()
        for key, value in env.items():
            environment.insert(key, value)
        self._process.setProcessEnvironment(environment)
        self._process.readyReadStandardOutput.connect(self._read_stdout)
        self._process.readyReadStandardError.connect(self._read_stderr)
        self._process.finished.connect(self._on_finished)
        self._process.errorOccurred.connect(self._on_error)
        self._process.started.connect(lambda: self.started.emit(self.pid()))
        self._kill_timer = QTimer(self, singleShot=True)
        self._kill_timer.timeout.connect(self._process.kill)

    def start(self) -> None:
        self._process.start(self.argv[0], self.argv[1:])

    def pid(self) -> int:
        return int(self._process.processId())

    def is_running(self) -> bool:
        return self._process.state() != QProcess.ProcessState.NotRunning

    def cancel(self, grace_ms: int = 5000) -> None:
        """Ask the process to stop (SIGTERM: it stops at a step boundary), kill it after ``grace_ms``."""
        if not self.is_running():
            return
        self.cancel_requested = True
        self._process.terminate()
        self._kill_timer.start(grace_ms)

    def wait(self, msecs: int = 30000) -> bool:
        return self._process.waitForFinished(msecs)

    # --------------------------------------------------------------------------------------- reading
    def _dispatch(self, items) -> None:
        for item in items:
            if isinstance(item, LogText):
                self.log.emit(item.text)
            else:
                self.event.emit(item)

    def _read_stdout(self) -> None:
        self._dispatch(self._stdout.feed(bytes(self._process.readAllStandardOutput().data())))

    def _read_stderr(self) -> None:
        for item in self._stderr.feed(bytes(self._process.readAllStandardError().data())):
            text = item.text if isinstance(item, LogText) else str(item)
            self.stderr_tail.append(text)
            self.log.emit(text)

    def _on_finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._read_stdout()
        self._read_stderr()
        self._dispatch(self._stdout.close())
        for item in self._stderr.close():
            self.stderr_tail.append(getattr(item, "text", str(item)))
        self.ended.emit(exit_code, status == QProcess.ExitStatus.CrashExit)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.start_failed.emit(
                f"The training program could not be started ({self.argv[0]}): {self._process.errorString()}"
            )
