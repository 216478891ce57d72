"""The engine's clock in a live run: the venue's market time, as its events report it.

On Binance market time is server time, so this is the server's clock at the resolution of its events
(klines update every 250 ms). On the sandbox's accelerated replay it runs as fast as the replay, so
daily-loss days, cooldowns and event stamps agree with a backtest of the same klines. It never reads
the wall clock: it moves only when the venue says so (and never backwards).
"""

from __future__ import annotations


class VenueClock:
    __slots__ = ("time_ms",)

    def __init__(self, start_ms: int = 0) -> None:
        self.time_ms = start_ms

    def now_ms(self) -> int:
        return self.time_ms

    def observe(self, ts_ms: int) -> None:
        if ts_ms > self.time_ms:
            self.time_ms = ts_ms
