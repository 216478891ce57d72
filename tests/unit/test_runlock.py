"""The run lock: one holder at a time across processes, named in the refusal, freed by SIGKILL."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from kinetic_empire.live.runlock import LOCK_FILE, RunLock, RunLocked
from tests.support.runlock import HOLDER_STARTED, lock_held_elsewhere


def test_a_second_process_is_refused_naming_the_holder_until_the_holder_is_killed(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "R"
    with lock_held_elsewhere(run_dir, "R") as holder:
        with pytest.raises(RunLocked) as refused:
            RunLock.acquire(run_dir, "R", 1)
        text = str(refused.value)
        assert f"run R is in use by process {holder.pid} on " in text and HOLDER_STARTED in text
        assert str(run_dir / LOCK_FILE) in text and refused.value.holder["pid"] == holder.pid
        os.kill(holder.pid, signal.SIGKILL)
        assert holder.wait() == -signal.SIGKILL
        with RunLock.acquire(run_dir, "R", 2) as lock:  # the kernel dropped the dead holder's lock
            assert lock.held and f'"pid": {os.getpid()}' in (run_dir / LOCK_FILE).read_text()
        assert not lock.held


def test_the_lock_is_per_open_file_so_the_same_process_cannot_take_it_twice(tmp_path: Path) -> None:
    first = RunLock.acquire(tmp_path / "R", "R", 5)
    try:
        with pytest.raises(RunLocked, match=f"process {os.getpid()}"):
            RunLock.acquire(tmp_path / "R", "R", 6)
    finally:
        first.release()
    RunLock.acquire(tmp_path / "R", "R", 7).release()
    first.release()  # a second release is harmless


def test_a_lock_file_without_details_still_refuses(tmp_path: Path) -> None:
    import fcntl

    (tmp_path / "R").mkdir()
    with open(tmp_path / "R" / LOCK_FILE, "w") as f:  # locked, nothing written yet (a holder starting)
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(RunLocked, match="another process"):
            RunLock.acquire(tmp_path / "R", "R", 1)
