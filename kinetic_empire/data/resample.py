"""Resample klines to a coarser timeframe the way Binance builds its own intervals.

open=first, high=max, low=min, close=last, volume=sum over periods aligned to UTC epoch multiples of the
target interval (weeks start on Monday, as on Binance). Vectorised with ``ufunc.reduceat``.
"""

from __future__ import annotations

import numpy as np

from kinetic_empire.data._util import interval_ms, period_origin_ms
from kinetic_empire.data.frame import Gap, KlineFrame
from kinetic_empire.data.validate import find_gaps, merge_gaps

_MAX_PLACES = 12


def resample(frame: KlineFrame, timeframe: str, *, keep_partial: bool = False) -> KlineFrame:
    """`frame` aggregated to `timeframe`, which must be a whole multiple of the frame's timeframe.

    When the data starts or ends mid-period, that first or last period is dropped unless
    `keep_partial` (it would be built from part of the period). A period with a hole inside the data
    is built from the klines present, as Binance does after an outage, and is listed in the result's
    ``gaps`` together with wholly missing periods, so reports can flag it.

    Volume sums are snapped to the decimal precision of the source volumes: float addition drifts
    in the last bit, and Binance's (exact decimal) sums would otherwise not compare equal.
    Raises ValueError for a finer or non-multiple target.
    """
    src, dst = interval_ms(frame.timeframe), interval_ms(timeframe)
    if dst < src or dst % src:
        raise ValueError(
            f"cannot resample {frame.timeframe} to {timeframe}: the target must be a whole multiple "
            f"of the source interval ({dst} ms is not a multiple of {src} ms, or is finer)"
        )
    if dst == src:
        return frame
    n = len(frame)
    if n == 0:
        return KlineFrame.empty(frame.symbol, timeframe, source=frame.source)

    origin = period_origin_ms(timeframe)
    bucket = (frame.open_time - origin) // dst
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    ends = np.append(starts[1:], n)  # exclusive
    keep = np.ones(starts.size, dtype=bool)
    if not keep_partial:  # the data starts or ends mid-period: that period cannot be complete
        keep[0] &= frame.open_time[0] == bucket[0] * dst + origin
        keep[-1] &= frame.open_time[-1] == bucket[-1] * dst + origin + dst - src
    sel = starts[keep]
    sel_end = ends[keep]
    open_time = bucket[sel] * dst + origin
    h = np.maximum.reduceat(frame.high, starts)[keep]
    lo = np.minimum.reduceat(frame.low, starts)[keep]
    v = np.add.reduceat(frame.volume, starts)[keep]
    v = _snap(v, _decimal_places(frame.volume))
    gaps = _target_gaps(frame, src, dst, origin, open_time)
    return _frame(frame, timeframe, open_time, frame.open[sel], h, lo, frame.close[sel_end - 1], v, gaps)


def _target_gaps(frame: KlineFrame, src: int, dst: int, origin: int, open_time: np.ndarray) -> tuple[Gap, ...]:
    """Target periods lacking at least one source kline (wholly missing, filled flat, or partly covered)."""
    if open_time.size == 0:
        return ()
    source_gaps = merge_gaps(frame.gaps, find_gaps(frame.open_time, src), src)
    lo, hi = int(open_time[0]), int(open_time[-1])
    spans = []
    for g in source_gaps:  # loops over gaps, not rows
        first = (g.start_ms - origin) // dst * dst + origin
        last = (g.end_ms - origin) // dst * dst + origin
        first, last = max(first, lo), min(last, hi)
        if first <= last:
            spans.append(Gap(first, last, (last - first) // dst + 1))
    return merge_gaps((), tuple(spans), dst)


def _decimal_places(values: np.ndarray) -> int | None:
    """Fewest decimal places that represent every value exactly (to float precision), or None."""
    mag = np.abs(values)
    for places in range(_MAX_PLACES + 1):
        scaled = mag * 10.0**places
        if np.all(np.abs(scaled - np.rint(scaled)) <= 4 * np.spacing(scaled)):
            return places
    return None


def _snap(sums: np.ndarray, places: int | None) -> np.ndarray:
    """Round float sums to `places` decimals: the double nearest the exact decimal sum.

    ``rint(x * 10**p) / 10**p`` divides two exactly representable numbers, so IEEE division yields the
    double nearest the decimal value, which is what parsing Binance's exact sum gives.
    """
    if places is None:
        return sums
    scale = 10.0**places
    scaled = sums * scale
    k = np.rint(scaled)
    ok = (np.abs(k) < 2.0**53) & (np.abs(scaled - k) < 1e-3)
    return np.where(ok, k / scale, sums)


def _frame(
    frame: KlineFrame, timeframe: str, open_time: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray,
    c: np.ndarray, v: np.ndarray, gaps: tuple[Gap, ...],
) -> KlineFrame:
    return KlineFrame(frame.symbol, timeframe, open_time, o, h, lo, c, v, gaps=gaps, source=frame.source)
