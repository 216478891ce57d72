"""Incremental Wilder ATR, kept by the risk manager only for symbols whose config needs it.

This code runs once per closed kline, so it is a handful of float operations on slotted objects:
no lists, no arrays, no Decimal.
"""

from __future__ import annotations

from ..core.events import KlineClosed


class WilderAtr:
    """Average true range with Wilder's smoothing; ``value`` is 0.0 until ``period`` klines are seen."""

    __slots__ = ("_count", "_prev_close", "_sum", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self.value = 0.0
        self._prev_close = -1.0
        self._count = 0
        self._sum = 0.0

    @property
    def ready(self) -> bool:
        return self._count >= self.period

    def update(self, high: float, low: float, close: float) -> None:
        prev = self._prev_close
        tr = high - low
        if prev >= 0.0:
            if high - prev > tr:
                tr = high - prev
            if prev - low > tr:
                tr = prev - low
        self._prev_close = close
        n = self.period
        if self._count < n:
            self._count += 1
            self._sum += tr
            if self._count == n:
                self.value = self._sum / n
        else:
            self.value = (self.value * (n - 1) + tr) / n


class AtrBook:
    """ATRs by timeframe, period and symbol; fed from KlineClosed, read when an intent needs one."""

    __slots__ = ("_by_tf", "_periods")

    def __init__(self, needs: set[tuple[str, int]]) -> None:
        self._periods: dict[str, tuple[int, ...]] = {}
        for tf, period in sorted(needs):
            self._periods[tf] = (*self._periods.get(tf, ()), period)
        # timeframe -> symbol -> trackers (one per period), created on the symbol's first kline
        self._by_tf: dict[str, dict[str, tuple[WilderAtr, ...]]] = {tf: {} for tf in self._periods}

    @property
    def timeframes(self) -> tuple[str, ...]:
        return tuple(self._periods)

    def on_kline(self, k: KlineClosed) -> None:
        """Bus handler, subscribed directly (no wrapper call on the per-kline path)."""
        table = self._by_tf.get(k.timeframe)
        if table is None:
            return
        trackers = table.get(k.symbol)
        if trackers is None:
            trackers = table[k.symbol] = tuple(WilderAtr(p) for p in self._periods[k.timeframe])
        for t in trackers:
            t.update(k.high, k.low, k.close)

    def get(self, symbol: str, timeframe: str, period: int) -> float | None:
        """The ATR, or None while it is warming up (or no kline of that symbol was seen)."""
        for t in self._by_tf.get(timeframe, {}).get(symbol, ()):
            if t.period == period:
                return t.value if t.ready else None
        return None
