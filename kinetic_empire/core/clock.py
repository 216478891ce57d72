"""Injected time. This is the only module that reads the wall clock or sleeps on it.

A clock answers three questions: what time it is (``now_ms``, epoch milliseconds, for event stamps),
how much time has passed (``monotonic``, seconds from an arbitrary origin, for timeouts and pacing),
and "wake me after this long" (``sleep``). Live code gets a :class:`LiveClock`; backtests a
:class:`ReplayClock`; tests a :class:`ManualClock` whose time only moves when the test moves it, so a
30 s backoff or a 65 s reconnect takes no wall time and does not depend on how busy the machine is.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time in epoch milliseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, for measuring durations; never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` of this clock's time."""
        ...


class ReplayClock:
    """Time moved by the replay: a backtest is as fast as the CPU and perfectly repeatable."""

    __slots__ = ("time_ms",)

    def __init__(self, start_ms: int = 0) -> None:
        self.time_ms = start_ms

    def now_ms(self) -> int:
        return self.time_ms

    def monotonic(self) -> float:
        return self.time_ms / 1000

    async def sleep(self, seconds: float) -> None:
        """Replay time has no waiting: sleeping moves the clock and yields once."""
        self.time_ms += max(0, round(seconds * 1000))
        await asyncio.sleep(0)

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

    @staticmethod
    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock for tests: time stands still until :meth:`advance` moves it.

    Sleepers wake in deadline order when time passes their deadline, so code that backs off for
    60 s, polls every second or times out after 30 s runs instantly and deterministically, loaded
    machine or not. ``sleep(0)`` only yields.
    """

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms / 1000
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now_ms(self) -> int:
        return round(self._now * 1000)

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), waiter))
        await waiter

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock (lets a test wait until code has gone to sleep)."""
        return sum(1 for _, _, w in self._sleepers if not w.done())

    def next_deadline(self) -> float | None:
        live = [d for d, _, w in self._sleepers if not w.done()]
        return min(live) if live else None

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper whose deadline passes, in order, letting it run."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, waiter = heapq.heappop(self._sleepers)
            if waiter.done():
                continue
            self._now = max(self._now, deadline)
            waiter.set_result(None)
            for _ in range(5):  # let the woken task (and what it starts) run before time moves on
                await asyncio.sleep(0)
        self._now = target
        await asyncio.sleep(0)
