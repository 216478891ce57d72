"""A child process of the soak (sandbox, engine) whose output is kept line by line with arrival times."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # tests/support/soak_proc.py -> the repository


class Proc:
    """A child process whose stdout lines are kept (with arrival times) and copied to a log file."""

    def __init__(self, cmd: list[str], log: Path, env: dict[str, str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._log = log.open("a", encoding="utf-8")
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                                  env=env, start_new_session=True)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))
            self._log.write(line)
            self._log.flush()

    @property
    def alive(self) -> bool:
        return self.p.poll() is None

    def wait_line(self, needle: str, timeout: float, since: int = 0) -> float | None:
        """Arrival time of the first line from index ``since`` containing ``needle``; None on timeout/exit."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, line in self.lines[since:]:
                if needle in line:
                    return t
            if self.p.poll() is not None and not self._t.is_alive():
                return None
            time.sleep(0.02)
        return None

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def stop(self, sig: int, timeout: float) -> int | None:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait(timeout=10)
        self._t.join(timeout=5)
        self._log.close()
        return rc


__all__ = ["REPO", "Proc"]
