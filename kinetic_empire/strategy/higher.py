"""Indicators on a higher timeframe, aligned to the strategy's own klines without lookahead.

``self.I(ema, self.close, 50, timeframe="4h")`` in a 15m strategy builds 4h klines from the strategy's
own history (open=first, high=max, low=min, close=last, volume=sum, periods aligned as Binance aligns
them), runs the indicator over those, and spreads the result back over the 15m klines so that a 4h value
becomes visible only at the 15m kline whose close is the 4h kline's close. Until then the previous 4h
value shows. A period the history starts in the middle of is incomplete and gives no value (NaN), and the
period still forming is never used: the same rules hold in a backtest (whole history) and live (the
rolling window), so both show the same numbers once the window covers the indicator's warm-up.

In a multi-symbol strategy each symbol's price series is regrouped the same way on the strategy's aligned
history (a row per time where every symbol has a kline), so ``self.I(ema, self.data["B"].close, 20,
timeframe="4h")`` is B's 4h EMA and a cross-symbol indicator pairs 4h values of the same period. A time
skipped because some symbol had no kline is missing from every symbol's 4h kline (so a 4h bar can differ
from the exchange's), the same way in a backtest and live.

The whole computation is vectorised and happens when the indicator is declared; the per-kline path is
the usual revealed array, so a higher-timeframe indicator costs nothing per kline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..core.timeframes import period_origin_ms, timeframe_ms

FIELDS = ("open", "high", "low", "close", "volume")


class HigherTimeframe:
    """The strategy's history regrouped into closed ``timeframe`` periods, and the way back."""

    def __init__(self, base: Mapping[str, np.ndarray], open_time: np.ndarray, base_tf: str, timeframe: str) -> None:
        src, dst = timeframe_ms(base_tf), timeframe_ms(timeframe)
        if dst <= src or dst % src:
            raise ValueError(f"timeframe={timeframe!r}: must be a whole multiple of the strategy's timeframe "
                             f"{base_tf!r} and longer than it")
        self.timeframe = timeframe
        self.ratio = dst // src
        n = len(open_time)
        origin = period_origin_ms(timeframe)
        bucket = (np.asarray(open_time, dtype=np.int64) - origin) // dst
        starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1]))) if n else np.empty(0, np.int64)
        ends = np.append(starts[1:], n).astype(np.int64)  # exclusive
        period_open = bucket[starts] * dst + origin
        # a period counts once it has closed: the last one only if its final kline is there (else it is still
        # forming), the first one only if the history starts at its beginning (else it is built from part of it)
        closed = np.ones(len(starts), dtype=bool)
        if n:
            closed[-1] = open_time[-1] + src == period_open[-1] + dst
            closed[0] &= open_time[0] == period_open[0]
        # a closed period becomes visible at the first kline whose close is at or after the period's close
        # (its own last kline, or the next one present when the data has a hole at the period's end)
        kline_close = np.asarray(open_time, dtype=np.int64) + src
        self._visible_at = np.searchsorted(kline_close, period_open[closed] + dst, side="left")
        self.n = n
        # one array per price series given: ``close`` (the strategy's), or ``NEARUSDT.close`` (each symbol's in a
        # multi-symbol strategy, all on the same aligned open times); the field after the dot says how to merge
        self.arrays = {key: _merge(key.rsplit(".", 1)[-1], np.asarray(a, dtype=np.float64), starts, ends) if n
                       else np.empty(0) for key, a in base.items()}
        # periods not closed (or incomplete) are left out of what the indicator sees
        self._kept = np.flatnonzero(closed)
        for k in self.arrays:
            self.arrays[k] = np.ascontiguousarray(self.arrays[k][self._kept], dtype=np.float64)

    def spread(self, values: np.ndarray) -> np.ndarray:
        """Per-period values (one per closed period) as a base-length array: each closed period's value from
        its last kline on, NaN before the first one."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(self._kept),):
            raise ValueError(f"returned shape {values.shape}, expected one value per {self.timeframe} kline "
                             f"({len(self._kept)})")
        out = np.full(self.n, np.nan)
        if not len(self._kept):
            return out
        owner = np.searchsorted(self._visible_at, np.arange(self.n), side="right") - 1
        seen = owner >= 0
        out[seen] = values[owner[seen]]
        return out


def _merge(field: str, a: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """One price field's klines merged per period: open=first, high=max, low=min, close=last, volume=sum."""
    if field == "open":
        return a[starts]
    if field == "high":
        return np.maximum.reduceat(a, starts)
    if field == "low":
        return np.minimum.reduceat(a, starts)
    if field == "close":
        return a[ends - 1]
    if field == "volume":
        return np.add.reduceat(a, starts)
    raise ValueError(f"{field!r} is not a price field ({', '.join(FIELDS)})")


def compute(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], higher: HigherTimeframe,
            field_of: Callable[[Any], str | None], label: str) -> tuple[np.ndarray, ...]:
    """``func`` over the higher-timeframe klines, each output spread back to the base klines."""
    def lift(value: Any) -> Any:
        field = field_of(value)
        if field is not None:
            return higher.arrays[field]
        if hasattr(value, "_cur"):  # a Series that is not a price series
            raise ValueError(f"indicator {label} with timeframe={higher.timeframe!r}: its inputs must be price "
                             f"series (self.open ... volume, or self.data[symbol].close etc.) or plain values; "
                             f"{value.name} is computed on the strategy's own timeframe")
        return value

    result = func(*[lift(a) for a in args], **{k: lift(v) for k, v in kwargs.items()})
    arrays = result if isinstance(result, tuple) else (result,)
    try:
        return tuple(higher.spread(a) for a in arrays)
    except ValueError as exc:
        raise ValueError(f"indicator {label} with timeframe={higher.timeframe!r}: {exc}") from None


__all__ = ["FIELDS", "HigherTimeframe", "compute"]
