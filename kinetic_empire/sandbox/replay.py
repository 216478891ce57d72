"""The replay cursor: turns each base kline into a few deterministic intra-kline price updates.

Path through a kline: open, then low then high when the kline closed up (high then low when it closed
down), then close; with ``updates_per_kline`` K >= 2 these four anchors are sampled at K evenly spaced
points (K=4: exactly the anchors). Each update after the first covers the *segment* since the previous
one, so the exchange sees a small kline (segment open, high, low, close) and a limit or stop between
two sampled points still fills. The first update of a kline is a single price at the open, so market
orders placed after a close fill at the next kline's open, as in a backtest. With K=1 the whole kline is
one update at its close, which is exactly what the backtester feeds the exchange.

Times: update j of a kline opening at t happens at ``t + j * interval // K``; the close message
(``x=true``) at ``t + interval - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .market import ReplayedKlines


@dataclass(slots=True)
class Update:
    """One price update (or the close) of one symbol."""

    series: ReplayedKlines
    ts: int  # market time of this update
    bar_ts: int  # the ts handed to the exchange (segment start; the kline's open for the first)
    segment: tuple[float, float, float, float] | None  # (o, h, l, c) for exchange.on_bar; None at close
    closed: bool  # this is the kline's close (x=true)
    price: float  # last price after the update
    prev: float  # last price before


def path_points(o: float, h: float, lo: float, c: float, k: int, tick: float) -> list[tuple[float, float, float]]:
    """(price, segment high, segment low) for each of the K updates; the first is the open."""
    e1, e2 = (lo, h) if c >= o else (h, lo)
    anchors = (o, e1, e2, c)
    if k == 1:
        return [(c, h, lo)]
    out: list[tuple[float, float, float]] = []
    prev_s = 0.0
    prev_p = o
    for j in range(k):
        s = 3.0 * j / (k - 1)
        i = min(int(s), 2)
        frac = s - i
        if frac == 0.0:
            p = anchors[i]
        elif frac == 1.0:
            p = anchors[i + 1]
        else:
            p = anchors[i] + (anchors[i + 1] - anchors[i]) * frac
            if tick > 0:
                p = round(round(p / tick) * tick, 12)
        seg = [prev_p, p]
        seg.extend(anchors[m] for m in range(4) if prev_s < m < s)
        out.append((p, max(seg), min(seg)))
        prev_s, prev_p = s, p
    return out


class Replay:
    """Walks the union of all symbols' open times, one phase (update or close) at a time."""

    def __init__(self, series: dict[str, ReplayedKlines], updates_per_kline: int) -> None:
        if updates_per_kline < 1:
            raise ValueError("updates_per_kline must be at least 1")
        self.series = list(series.values())
        self.k = updates_per_kline
        times = [s.frame.open_time for s in self.series]
        self.times = np.unique(np.concatenate(times)) if times else np.array([], dtype=np.int64)
        self.i = 0  # index into times of the kline in play
        self.phase = 0  # next phase: 0..K-1 price updates, K the close (K=1: one phase doing both)
        self._paths: dict[str, list[tuple[float, float, float]]] = {}
        self._interval = min((s.interval_ms for s in self.series), default=60_000)

    @property
    def done(self) -> bool:
        return self.i >= len(self.times)

    @property
    def phases(self) -> int:
        return 1 if self.k == 1 else self.k + 1

    def next_ts(self) -> int | None:
        """Market time of the next phase, or None at the end of the data."""
        if self.done:
            return None
        t = int(self.times[self.i])
        if self.k == 1 or self.phase == self.k:
            return t + self._interval - 1
        return t + self.phase * self._interval // self.k

    def start_time(self) -> int:
        return int(self.times[0]) if len(self.times) else 0

    def play(self) -> list[Update]:
        """Play the next phase for every symbol that has a kline at the current open time."""
        if self.done:
            return []
        t = int(self.times[self.i])
        ts = self.next_ts()
        assert ts is not None
        out: list[Update] = []
        for s in self.series:
            row = s.closed
            if row >= len(s.frame) or int(s.frame.open_time[row]) != t:
                continue
            out.append(self._play_series(s, row, t, ts))
        self.phase += 1
        if self.phase >= self.phases:
            self.phase = 0
            self.i += 1
        return out

    def _play_series(self, s: ReplayedKlines, row: int, t: int, ts: int) -> Update:
        k = self.k
        f = s.frame
        o, h, lo, c = float(f.open[row]), float(f.high[row]), float(f.low[row]), float(f.close[row])
        v = float(f.volume[row])
        prev = s.last or o
        if k == 1:
            s.partial = None
            s.closed += 1
            s.last = c
            s.updates += 1
            s.played = 1
            return Update(s, ts, t, (o, h, lo, c), True, c, prev)
        if self.phase == k:  # the close: no new price, the kline becomes final
            s.partial = None
            s.closed += 1
            self._paths.pop(s.symbol, None)
            return Update(s, ts, ts, None, True, c, prev)
        if self.phase == 0:
            self._paths[s.symbol] = path_points(o, h, lo, c, k, s.tick)
            s.partial = [float(t), o, o, o, o, v / k]
            s.last = o
            s.updates += 1
            s.played = 1
            return Update(s, ts, t, (o, o, o, o), False, o, prev)
        price, seg_hi, seg_lo = self._paths[s.symbol][self.phase]
        part = s.partial
        assert part is not None
        seg_open = part[4]
        part[2] = max(part[2], seg_hi)
        part[3] = min(part[3], seg_lo)
        part[4] = price
        part[5] = v * (self.phase + 1) / k
        s.last = price
        s.updates += 1
        s.played = self.phase + 1
        return Update(s, ts, ts, (seg_open, seg_hi, seg_lo, price), False, price, seg_open)
