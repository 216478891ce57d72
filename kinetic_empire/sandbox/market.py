"""Replayed market data: each symbol's KlineFrame, the kline being played, and what REST serves from them.

Only what the replay has reached is visible: REST klines and tickers stop at the current (partial)
kline, never the future. Higher intervals are aggregated from the base (1m) klines on request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.rules import SymbolRules
from ..core.timeframes import TIMEFRAME_MS
from .fmt import fixed, places

if TYPE_CHECKING:
    from ..data.frame import KlineFrame

DAY_MS = 86_400_000
_WEEK_ORIGIN = 4 * DAY_MS  # weekly klines open on Mondays; the epoch was a Thursday
INTERVALS: tuple[str, ...] = (*TIMEFRAME_MS, "1M")


def interval_ms(interval: str) -> int:
    return 31 * DAY_MS if interval == "1M" else TIMEFRAME_MS[interval]


def bucket_starts(t: np.ndarray, interval: str) -> np.ndarray:
    """Open time of the ``interval`` kline holding each open time in ``t``."""
    if interval == "1M":
        months = t.astype("datetime64[ms]").astype("datetime64[M]")
        return months.astype("datetime64[ms]").astype(np.int64)
    ms = TIMEFRAME_MS[interval]
    origin = _WEEK_ORIGIN if interval == "1w" else 0
    return t - (t - origin) % ms


def bucket_start(t: int, interval: str) -> int:
    return int(bucket_starts(np.array([t], dtype=np.int64), interval)[0])


def bucket_end(start: int, interval: str) -> int:
    """Close time (inclusive) of the kline opening at ``start``."""
    if interval == "1M":
        nxt = (np.array([start], dtype="datetime64[ms]").astype("datetime64[M]") + 1).astype("datetime64[ms]")
        return int(nxt.astype(np.int64)[0]) - 1
    return start + TIMEFRAME_MS[interval] - 1


@dataclass(slots=True)
class ReplayedKlines:
    """One symbol's base klines (a :class:`KlineFrame`) plus the replay cursor over them."""

    frame: KlineFrame
    rules: SymbolRules
    quote: np.ndarray = field(init=False)  # quote volume estimated from the typical price
    closed: int = 0  # klines fully played
    partial: list[float] | None = None  # [open_time, o, h, l, c, v] of the kline in play
    last: float = 0.0
    updates: int = 0  # price updates played so far (aggTrade ids)
    played: int = 0  # price updates played within the kline in play
    tick: float = field(init=False)
    price_places: int = field(init=False)
    qty_places: int = field(init=False)

    def __post_init__(self) -> None:
        f = self.frame
        self.quote = f.volume * (f.open + f.high + f.low + f.close) / 4.0
        self.tick = float(self.rules.tick_size) or 0.0
        self.price_places = places(self.rules.tick_size)
        self.qty_places = places(self.rules.step_size)

    @property
    def symbol(self) -> str:
        return self.frame.symbol

    @property
    def interval(self) -> str:
        return self.frame.timeframe

    @property
    def interval_ms(self) -> int:
        return self.frame.interval_ms

    def price(self, x: float) -> str:
        return f"{x:.{self.price_places}f}"

    def qty(self, x: float) -> str:
        return f"{x:.{self.qty_places}f}"

    def visible(self) -> int:
        """Number of klines a client may see: the closed ones plus the one in play."""
        return self.closed + (1 if self.partial is not None else 0)

    def arrays(self, i0: int, i1: int) -> tuple[np.ndarray, ...]:
        """(open_time, o, h, l, c, v, quote) of visible rows [i0, i1), the partial kline as played so far."""
        f = self.frame
        cols = (f.open_time, f.open, f.high, f.low, f.close, f.volume, self.quote)
        end = min(i1, self.closed)
        out = [c[i0:end] for c in cols]
        if self.partial is not None and i1 > self.closed and i0 <= self.closed:
            t, o, h, lo, c, v = self.partial
            extra = (t, o, h, lo, c, v, v * (o + h + lo + c) / 4.0)
            out = [np.append(a, x) for a, x in zip(out, extra)]
        return tuple(out)


def aggregate(cols: Sequence[np.ndarray], interval: str) -> tuple[np.ndarray, ...]:
    """Group base klines into ``interval`` klines: (open_time, o, h, l, c, v, quote, count)."""
    t, o, h, lo, c, v, q = cols
    if len(t) == 0:
        empty = np.array([], dtype=np.float64)
        return (np.array([], dtype=np.int64), empty, empty, empty, empty, empty, empty, empty)
    b = bucket_starts(t, interval)
    idx = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    last = np.r_[idx[1:] - 1, len(t) - 1]
    counts = np.diff(np.r_[idx, len(t)])
    return (
        b[idx],
        o[idx],
        np.maximum.reduceat(h, idx),
        np.minimum.reduceat(lo, idx),
        c[last],
        np.add.reduceat(v, idx),
        np.add.reduceat(q, idx),
        counts,
    )


class MarketData:
    """All replayed symbols, and the REST views of them (klines, 24h tickers)."""

    def __init__(self, series: dict[str, ReplayedKlines], updates_per_kline: int) -> None:
        self.series = series
        self.updates_per_kline = updates_per_kline

    def get(self, symbol: str) -> ReplayedKlines | None:
        return self.series.get(symbol)

    # ---------------------------------------------------------------------------------- klines
    def klines(
        self, s: ReplayedKlines, interval: str, start: int | None, end: int | None, limit: int
    ) -> list[list[object]]:
        ms = interval_ms(interval)
        n = s.visible()
        if n == 0:
            return []
        ot = s.frame.open_time
        if start is not None:
            i0 = int(np.searchsorted(ot, bucket_start(start, interval)))
        elif end is not None:
            i0 = int(np.searchsorted(ot, bucket_start(end, interval) - (limit - 1) * ms))
        else:
            last_open = int(s.partial[0]) if s.partial is not None else int(ot[n - 1])
            i0 = int(np.searchsorted(ot, bucket_start(last_open, interval) - (limit - 1) * ms))
        if end is not None:
            i1 = int(np.searchsorted(ot, bucket_end(bucket_start(end, interval), interval), side="right"))
        elif start is not None:  # `limit` klines from the first one at or after start (Binance: not from start)
            first = int(ot[i0]) if i0 < n else start
            i1 = int(np.searchsorted(ot, bucket_start(first, interval) + (limit + 1) * ms))
        else:
            i1 = n
        i1 = min(i1, n)
        if i0 >= i1:
            return []
        t, o, h, lo, c, v, q, cnt = aggregate(s.arrays(i0, i1), interval)
        keep = np.ones(len(t), dtype=bool)
        if start is not None:
            keep &= t >= start
        if end is not None:
            keep &= t <= end
        sel = np.flatnonzero(keep)
        sel = sel[:limit] if start is not None else sel[-limit:]
        k = self.updates_per_kline
        p, qp = s.price, s.qty
        rows: list[list[object]] = []
        for i in sel:
            ti = int(t[i])
            vi, qi = float(v[i]), float(q[i])
            rows.append([
                ti, p(o[i]), p(h[i]), p(lo[i]), p(c[i]), qp(vi), bucket_end(ti, interval),
                fixed(qi, 8 if s.price_places + s.qty_places > 8 else s.price_places + s.qty_places),
                int(cnt[i]) * k, qp(vi / 2), fixed(qi / 2, 8), "0",
            ])
        return rows

    # ---------------------------------------------------------------------------------- tickers
    def window_24h(self, s: ReplayedKlines, now: int) -> tuple[float, float, float, float, float, int, int]:
        """(open, high, low, volume, quote, first open time, count) over the last 24 h up to ``now``."""
        n = s.visible()
        i0 = int(np.searchsorted(s.frame.open_time, now - DAY_MS, side="right"))
        t, o, h, lo, _c, v, q = s.arrays(min(i0, n), n)
        if len(t) == 0:
            return (s.last, s.last, s.last, 0.0, 0.0, now - DAY_MS, 0)
        return (float(o[0]), float(h.max()), float(lo.min()), float(v.sum()), float(q.sum()), int(t[0]), len(t))

    def ticker_24h(self, s: ReplayedKlines, now: int) -> dict[str, object]:
        o, h, lo, v, q, first, count = self.window_24h(s, now)
        last = s.last
        change = last - o
        pct = (change / o * 100.0) if o else 0.0
        k = self.updates_per_kline
        return {
            "symbol": s.symbol,
            "priceChange": s.price(change),
            "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": s.price(q / v if v else last),
            "lastPrice": s.price(last),
            "lastQty": s.qty(self.last_qty(s)),
            "openPrice": s.price(o),
            "highPrice": s.price(h),
            "lowPrice": s.price(lo),
            "volume": s.qty(v),
            "quoteVolume": fixed(q, 2),
            "openTime": first,
            "closeTime": now,
            "firstId": max(0, s.updates - count * k),
            "lastId": max(0, s.updates - 1),
            "count": count * k,
        }

    def last_qty(self, s: ReplayedKlines) -> float:
        """Quantity of the latest synthetic trade: the kline's volume spread over its updates."""
        vol = s.partial[5] if s.partial is not None else (float(s.frame.volume[s.closed - 1]) if s.closed else 0.0)
        step = float(s.rules.step_size) or 1.0
        share = vol / max(1, self.updates_per_kline)
        return max(step, round(share / step) * step)


def load_series(
    paths: Sequence[Path],
    rules: dict[str, SymbolRules],
    symbols: Sequence[str] | None = None,
    start: int | None = None,
    end: int | None = None,
) -> dict[str, ReplayedKlines]:
    """Read kline files and folders into one :class:`ReplayedKlines` per symbol (the finest timeframe found)."""
    from ..data import find_kline_files, kline_file_name, load_klines

    found: dict[tuple[str, str], list[Path]] = {}
    for p in paths:
        p = Path(p)
        files = find_kline_files(p) if p.is_dir() else [p]
        for f in files:
            sym, tf = kline_file_name(f)
            if sym is None or tf is None:
                raise ValueError(f"{f}: cannot tell symbol and timeframe from the file name")
            if symbols and sym not in symbols:
                continue
            found.setdefault((sym, tf), []).append(f)
    chosen: dict[str, str] = {}
    for sym, tf in found:
        if tf not in TIMEFRAME_MS:
            continue
        if sym not in chosen or TIMEFRAME_MS[tf] < TIMEFRAME_MS[chosen[sym]]:
            chosen[sym] = tf
    out: dict[str, ReplayedKlines] = {}
    for sym, tf in sorted(chosen.items()):
        if sym not in rules:
            raise ValueError(f"{sym}: not in exchangeInfo, cannot replay it")
        frame = load_klines(found[(sym, tf)], symbol=sym, timeframe=tf, start=start, end=end, gap_policy="keep")
        out[sym] = ReplayedKlines(frame, rules[sym])
    return out


def shift_series(series: dict[str, ReplayedKlines], offset_ms: int) -> None:
    """Move every open time by ``offset_ms`` (``time_origin="now"``)."""
    for s in series.values():
        s.frame = s.frame.shifted(offset_ms)
