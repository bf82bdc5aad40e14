"""A job never runs twice: the process that starts a job holds an exclusive lock on its folder until it ends.

The app and the terminal (``medalign train``) may open one workspace at once. Each runs its own queue, so
without a lock both could start (or resume) the same job, or one could mark the other's running job as
interrupted. The lock is ``job-00007.lock`` beside the folder ``job-00007/`` (so it can be taken before the
snapshot fills the folder), held with ``flock`` by the queue's process; the operating system drops it when
that process exits or crashes, so a stale lock cannot outlive its holder.

    lock = JobFolderLock(job_dir)
    lock.acquire()          # JobLockedError: another process runs this job
    ...                     # the training process runs
    lock.record_process(pid)                # the training program's pid, for `medalign jobs cancel`
    lock.release()
    JobFolderLock.held_elsewhere(job_dir)   # recovery: is this "running" job really running somewhere?
    JobFolderLock.process_of(job_dir)       # the pid to send SIGTERM to
"""

from __future__ import annotations

import os
from pathlib import Path

try:  # POSIX; on Windows the lock degrades to "never held" (the app ships for Linux workstations)
    import fcntl
except ImportError:  # pragma: no cover - not reached on Linux
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"


def lock_path(job_dir: str | Path) -> Path:
    job_dir = Path(job_dir)
    return job_dir.parent / (job_dir.name + LOCK_SUFFIX)


class JobLockedError(RuntimeError):
    """Another process (the app or a terminal) is running this job."""


class JobFolderLock:
    def __init__(self, job_dir: str | Path) -> None:
        self.job_dir = Path(job_dir)
        self.path = lock_path(job_dir)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting; JobLockedError names the job folder when another process holds it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, as the job folders
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise JobLockedError(
                    f"This job is running in another MedAlign window or terminal ({self.job_dir})."
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # which process runs it (and its program, once started)
        self._fd = fd

    def record_process(self, pid: int) -> None:
        """Note the training process's id in the lock file, so that `medalign jobs cancel` can reach it."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()} {pid}\n".encode(), 0)

    @staticmethod
    def process_of(job_dir: str | Path) -> int | None:
        """The training process id a running job's lock file records, or None."""
        try:
            words = lock_path(job_dir).read_text(encoding="ascii").split()
        except (OSError, UnicodeDecodeError):
            return None
        return int(words[1]) if len(words) == 2 and words[1].isdigit() else None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @staticmethod
    def held_elsewhere(job_dir: str | Path | None) -> bool:
        """Whether another process holds ``job_dir``'s lock now (a lock of this process's own counts too:
        flock locks belong to open files, so a second open file of the same folder sees it as taken)."""
        if job_dir is None or fcntl is None:
            return False
        path = lock_path(job_dir)
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return False  # no lock file: nobody ever ran it, or its folder is gone
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)
