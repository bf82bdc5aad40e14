"""The job folder lock: one process runs a job; another sees it held and its recorded training process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from medalign_desktop.jobs.folder_lock import JobFolderLock, JobLockedError, lock_path
from medalign_desktop.store import Store

HOLD = textwrap.dedent(
    """
    import sys, time
    from medalign_desktop.jobs.folder_lock import JobFolderLock
    lock = JobFolderLock(sys.argv[1]); lock.acquire(); lock.record_process(4242)
    print("held", flush=True); sys.stdin.read()
    """
)


@pytest.fixture
def holder(tmp_path):
    """Another process holding job-00001's lock until its stdin closes."""
    job_dir = tmp_path / "jobs" / "job-00001"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(job_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    yield job_dir
    process.stdin.close()
    process.wait(timeout=30)


def test_a_job_held_by_another_process_cannot_be_taken(holder):
    assert JobFolderLock.held_elsewhere(holder)
    assert JobFolderLock.process_of(holder) == 4242
    with pytest.raises(JobLockedError, match="another MedAlign window or terminal"):
        JobFolderLock(holder).acquire()
    assert lock_path(holder).name == "job-00001.lock"  # beside the folder: the snapshot finds it empty


def test_a_lock_is_free_once_released(tmp_path):
    job_dir = tmp_path / "job-00002"
    assert not JobFolderLock.held_elsewhere(job_dir)  # never run: no lock file
    lock = JobFolderLock(job_dir)
    lock.acquire()
    assert lock.held and JobFolderLock.held_elsewhere(job_dir)
    lock.release()
    assert not lock.held and not JobFolderLock.held_elsewhere(job_dir)
    again = JobFolderLock(job_dir)
    again.acquire()
    again.release()


def test_recovery_leaves_a_job_another_process_runs_alone(holder, loop, job_manager_for, tmp_path):
    store = Store.open(tmp_path / "ws.sqlite")
    try:
        running_elsewhere = store.create_job("hitl", {}, job_dir=str(holder))
        crashed = store.create_job("hitl", {}, job_dir=str(tmp_path / "jobs" / "job-00009"))
        waiting = store.create_job("sft", {})
        for job_id in (running_elsewhere, crashed):
            store.set_job_state(job_id, "running")
        manager = job_manager_for(store)
        assert loop.run_until_complete(manager.recover(include_queued=False)) == [crashed]
        assert store.get_job(running_elsewhere).state == "running"
        assert store.get_job(waiting).state == "queued"  # a terminal leaves the app's queue alone
        assert loop.run_until_complete(manager.recover()) == [waiting]
    finally:
        store.close()
