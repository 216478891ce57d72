"""One writer per run: an OS file lock on ``<run folder>/run.lock``, held for the life of the process.

Two processes writing one journal (or trading one run on the venue) corrupt both: duplicate client ids,
positions the journal never saw. ``kinetic run`` therefore takes this lock before it reads or writes the
journal or talks to the venue, for a new ``--run-id`` and for ``--resume`` alike. The lock is
``flock(LOCK_EX | LOCK_NB)`` on an open file, so the kernel drops it when the holder exits in any way,
SIGKILL included: resuming after a crash needs no manual step. The holder writes its pid, host and start
time into the file so that the refusal can name it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ..core.errors import KineticError

LOCK_FILE = "run.lock"


class RunLocked(KineticError):
    """Another live process holds the run; ``holder`` is what it wrote into the lock file."""

    def __init__(self, run_id: str, path: Path, holder: dict[str, Any]) -> None:
        self.run_id = run_id
        self.path = path
        self.holder = holder
        super().__init__(f"run {run_id} is in use by {describe_holder(holder)} (lock {path}); "
                         "stop that process first (its lock goes with it, even if it is killed)")


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder.get("pid"):
        return "another process (it has not written its details yet)"
    started = holder.get("started_ms")
    when = (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(started) / 1000))
            if isinstance(started, int) else "at an unknown time")
    return f"process {holder['pid']} on {holder.get('host', '?')}, started {when}"


class RunLock:
    """The held lock of one run folder; release it with :meth:`release` or by leaving a ``with`` block."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, run_dir: Path, run_id: str, now_ms: int) -> RunLock:
        """Lock ``run_dir`` (created if missing) or raise :class:`RunLocked` at once, naming the holder."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLocked(run_id, path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_ms": now_ms,
                             "run_id": run_id}).encode() + b"\n"
        os.pwrite(fd, record, 0)  # one write, then trim what an earlier (dead) holder left after it
        os.ftruncate(fd, len(record))
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close; the file stays, holding the last holder's details."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, Any]:
    line = os.pread(fd, 4096, 0).split(b"\n", 1)[0]
    try:
        holder = json.loads(line)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}
