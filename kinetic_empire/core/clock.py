"""Injected time. This is the only module that reads the wall clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time in epoch milliseconds."""
        ...


class ReplayClock:
    """Time moved by the replay: a backtest is as fast as the CPU and perfectly repeatable."""

    __slots__ = ("time_ms",)

    def __init__(self, start_ms: int = 0) -> None:
        self.time_ms = start_ms

    def now_ms(self) -> int:
        return self.time_ms

    def advance_to(self, ts_ms: int) -> None:
        if ts_ms < self.time_ms:
            raise ValueError(f"replay clock cannot go back from {self.time_ms} to {ts_ms}")
        self.time_ms = ts_ms


class LiveClock:
    """Wall-clock time, with an offset to the venue's server time once it is measured."""

    __slots__ = ("offset_ms",)

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    @staticmethod
    def monotonic() -> float:
        """Seconds from an arbitrary origin, for measuring durations."""
        return time.perf_counter()
