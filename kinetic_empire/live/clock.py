"""The engine's clock in a live run: the venue's market time, as its events report it.

On Binance market time is server time, so this is the server's clock at the resolution of its events
(klines update every 250 ms). On the sandbox's accelerated replay it runs as fast as the replay, so
daily-loss days, cooldowns and event stamps agree with a backtest of the same klines. ``now_ms`` never
reads the wall clock: it moves only when the venue says so (and never backwards). Durations (timeouts,
polling) are not market time: ``monotonic`` and ``sleep`` belong to the injected ``timer``.
"""

from __future__ import annotations

from ..core.clock import Clock, LiveClock


class VenueClock:
    __slots__ = ("time_ms", "timer")

    def __init__(self, start_ms: int = 0, timer: Clock | None = None) -> None:
        self.time_ms = start_ms
        self.timer: Clock = timer or LiveClock()

    def now_ms(self) -> int:
        return self.time_ms

    def observe(self, ts_ms: int) -> None:
        if ts_ms > self.time_ms:
            self.time_ms = ts_ms

    def monotonic(self) -> float:
        return self.timer.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self.timer.sleep(seconds)
