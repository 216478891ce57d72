"""Python's cyclic garbage collector, run between klines instead of inside one.

With automatic collection a live run paused inside the kline-to-order path whenever allocations crossed the
collector's threshold: measured on the sandbox benchmark, 0.2-5 ms for the youngest generation and 3.6-16 ms
for the middle one, about twenty times a second at the benchmark's pace. The pacer takes the decision away from
allocation counts: after start-up it freezes what start-up built (rules, brackets, strategy history: never
scanned again), turns automatic collection off, and collects on its own clock from a task of the engine, young
objects often (cheap, since few survive a tick), the middle generation less often and everything not frozen
rarely. A collection can still meet a kline, but only when the two happen to coincide, never because the
kline's own allocations tipped the count. With ``quiet_ms`` they do not coincide either: every kline closes on a
minute boundary (of the timer's clock, the venue's to within its offset), so no collection starts from a little
before a boundary until a little after it, when the closing klines have arrived and their orders have left. Without
it, a schedule started at the wrong phase would put its minutely full collection in front of every 1m kline.

Automatic collection is a process-wide switch: the pacer counts the running pacers (two engines in one test
process) and turns it back on when the last one stops, and unfreezes what it froze.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

from ..core.clock import Clock

_MINUTE_MS = 60_000
KLINE_CLOSE_QUIET_MS = (150, 750)
"""The live engine's quiet window around minute boundaries: closing klines arrive and their orders leave in it."""


def boundary_window_left_s(now_ms: int, window_ms: tuple[int, int]) -> float:
    """Seconds left of the window from ``before`` ms ahead of the nearest minute boundary to ``after`` ms past it
    (``window_ms`` = (before, after)); 0 outside it."""
    before, after = window_ms
    phase = now_ms % _MINUTE_MS
    if phase >= _MINUTE_MS - before:
        return (_MINUTE_MS - phase + after) / 1000
    return (after - phase) / 1000 if phase < after else 0.0


@dataclass
class GcPacer:
    """Collects on a schedule while a live run trades; :meth:`stop` gives collection back to Python."""

    timer: Clock
    young_every_s: float = 0.25
    """Generation 0 (objects allocated since the last collection)."""
    middle_every: int = 16
    """Every this many young collections, generation 1 instead."""
    full_every: int = 240
    """Every this many young collections (a minute by default), a full collection of what is not frozen."""
    quiet_ms: tuple[int, int] | None = None
    """(before, after): no collection from ``before`` ms ahead of each minute boundary to ``after`` ms past it (a
    collection falling due then waits for the window's end); None: collect whenever due."""
    collections: int = 0
    deferred: int = 0
    """Collections that fell due in a quiet window and waited for its end."""
    running: bool = False

    _active = 0  # pacers started and not stopped, process-wide (the collector's switch is process-wide)
    _was_enabled = True

    def start(self) -> None:
        """Collect once, freeze the survivors, and turn automatic collection off."""
        if self.running:
            return
        gc.collect()
        gc.freeze()
        if GcPacer._active == 0:
            GcPacer._was_enabled = gc.isenabled()
        GcPacer._active += 1
        gc.disable()
        self.running = True

    def collect(self) -> int:
        """One scheduled collection (the generation follows the count); returns the generation collected."""
        self.collections += 1
        n = self.collections
        generation = 2 if n % self.full_every == 0 else 1 if n % self.middle_every == 0 else 0
        gc.collect(generation)
        return generation

    async def run(self) -> None:
        """The engine's task: a collection every ``young_every_s`` until cancelled. Its end gives collection
        back even when the engine is never shut down (a loop closed under it, a test that stops early)."""
        try:
            while self.running:
                await self.timer.sleep(self.young_every_s)
                wait = self.quiet_left_s()
                if wait > 0:
                    self.deferred += 1
                    await self.timer.sleep(wait)
                if self.running:
                    self.collect()
        finally:
            self.stop()

    def quiet_left_s(self) -> float:
        """Seconds until the quiet window around the nearest minute boundary ends (0: not in one)."""
        return 0.0 if self.quiet_ms is None else boundary_window_left_s(self.timer.now_ms(), self.quiet_ms)

    def stop(self) -> None:
        """Give collection back to Python (once every pacer has stopped) and unfreeze."""
        if not self.running:
            return
        self.running = False
        GcPacer._active -= 1
        if GcPacer._active == 0:
            gc.unfreeze()
            if GcPacer._was_enabled:
                gc.enable()
