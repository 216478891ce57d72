"""Is a process still running? One answer for every leftover check (temporary files, results, run journals)."""

from __future__ import annotations

import os
from typing import Any


def pid_alive(pid: Any) -> bool:
    """True if ``pid`` names a running process (ours or another user's); False for a dead or invalid pid."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True
