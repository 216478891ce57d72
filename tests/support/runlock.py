"""A run lock held by another process, for the lock tests (no tests here)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

_HOLDER = """
import sys
from pathlib import Path
from kinetic_empire.live.runlock import RunLock
lock = RunLock.acquire(Path(sys.argv[1]), sys.argv[2], 1_700_000_000_000)
print("held", flush=True)
sys.stdin.read()  # hold until the test closes stdin or kills us
"""

HOLDER_STARTED = "2023-11-14 22:13:20 UTC"  # 1_700_000_000_000 ms, as the refusal prints it


@contextlib.contextmanager
def lock_held_elsewhere(run_dir: Path, run_id: str) -> Iterator[subprocess.Popen[str]]:
    """A child process holding ``run_dir``'s lock; yields once it says it holds it (no timed waits)."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run_dir), run_id], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
