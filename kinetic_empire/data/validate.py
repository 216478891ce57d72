"""Validation rules for klines, and the gap policy.

Every failure is a DataError naming the file, the 1-based data row in that file and the rule, because a
backtest on silently broken data is worse than no backtest. All checks are vectorised numpy over whole
columns; only the first offending row is turned into a message.

Rules: ``nan`` (NaN, empty or infinite values), ``high_low`` (high < low, open/close outside
[low, high]), ``interval`` (close_time != open_time + interval - 1, or open_time not aligned to the
interval; aligned open_times imply steps that are multiples of the interval), ``order`` (out-of-order
rows), ``duplicate`` (an open_time twice) and ``gap`` (missing klines, handled by the gap policy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from kinetic_empire.core.errors import DataError
from kinetic_empire.core.timeframes import TIMEFRAME_MS
from kinetic_empire.data._util import first_true, format_ms, interval_ms, period_origin_ms
from kinetic_empire.data.frame import PRICE_COLUMNS, Gap, KlineFrame

GapPolicy = Literal["error", "keep", "ffill"]
GAP_POLICIES: tuple[str, ...] = get_args(GapPolicy)
MAX_LISTED_GAPS = 5
"""How many gaps an error message lists before summarising the rest."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RowLocator:
    """Maps an index into concatenated arrays back to (file, 1-based data row in that file).

    ``offsets[k]`` is the index at which file ``files[k]`` starts; rows keep their file order.
    """

    files: tuple[str, ...]
    offsets: tuple[int, ...] = (0,)

    @classmethod
    def single(cls, file: str, first_row: int = 1) -> RowLocator:
        """Locator for one file whose first array element is data row `first_row`."""
        return cls((file,), (1 - first_row,))

    def locate(self, index: int) -> tuple[str, int]:
        """File and 1-based data row of array element `index`."""
        k = int(np.searchsorted(np.asarray(self.offsets), index, side="right")) - 1
        k = max(k, 0)
        return self.files[k], int(index) - self.offsets[k] + 1

    def shifted(self, start: int) -> RowLocator:
        """Locator for the sub-array that begins at element `start`."""
        return RowLocator(self.files, tuple(o - start for o in self.offsets))

    def error(self, index: int, rule: str, message: str) -> DataError:
        file, row = self.locate(index)
        return DataError(file, rule, message, row=row)


def check_rows(
    open_time: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    timeframe: str,
    rows: RowLocator,
    close_time: np.ndarray | None = None,
) -> None:
    """Raise DataError for the earliest row breaking any rule except ``gap``.

    When several rules fail on the same row the order is nan, high_low, interval, order, duplicate.
    """
    interval = interval_ms(timeframe)
    prices = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    found: list[tuple[int, int, DataError]] = []  # (index, rule rank, error)

    bad = np.zeros(open_time.shape[0], dtype=bool)
    for arr in prices.values():
        bad |= ~np.isfinite(arr)
    if (i := first_true(bad)) is not None:
        col = next(name for name in PRICE_COLUMNS if not np.isfinite(prices[name][i]))
        found.append((i, 0, rows.error(i, "nan", f"{col} is {float(prices[col][i])} (empty, NaN or infinite)")))

    with np.errstate(invalid="ignore"):
        bad = (high < low) | (open_ < low) | (open_ > high) | (close < low) | (close > high)
    if (i := first_true(bad)) is not None:
        o, h, lo, c = open_[i], high[i], low[i], close[i]
        what = "high < low" if h < lo else ("open" if not lo <= o <= h else "close") + " outside [low, high]"
        msg = f"{what}: open={o} high={h} low={lo} close={c}"
        found.append((i, 1, rows.error(i, "high_low", msg)))

    if close_time is not None and (i := first_true(close_time != open_time + (interval - 1))) is not None:
        span = int(close_time[i] - open_time[i] + 1)
        guess = next((tf for tf, ms in TIMEFRAME_MS.items() if ms == span), None)
        hint = f"; the file looks like {guess} klines, not {timeframe}" if guess and guess != timeframe else ""
        msg = f"close_time {close_time[i]} != open_time {open_time[i]} + {interval} - 1 ({timeframe}){hint}"
        found.append((i, 2, rows.error(i, "interval", msg)))

    origin = period_origin_ms(timeframe)
    if (i := first_true((open_time - origin) % interval != 0)) is not None:
        msg = f"open_time {open_time[i]} ({format_ms(open_time[i])}) is not aligned to {timeframe} periods"
        found.append((i, 2, rows.error(i, "interval", msg)))

    if (j := first_true(np.diff(open_time) <= 0)) is not None:
        i = j + 1
        earlier = np.flatnonzero(open_time[:i] == open_time[i])
        t = f"open_time {open_time[i]} ({format_ms(open_time[i])})"
        if earlier.size:
            other_file, other_row = rows.locate(int(earlier[0]))
            msg = f"{t} already seen at {other_file}, row {other_row}"
            found.append((i, 4, rows.error(i, "duplicate", msg)))
        else:
            msg = f"{t} comes after {open_time[i - 1]} ({format_ms(open_time[i - 1])}): rows out of order"
            found.append((i, 3, rows.error(i, "order", msg)))

    if found:
        raise min(found, key=lambda f: (f[0], f[1]))[2]


def find_gaps(open_time: np.ndarray, interval: int) -> tuple[Gap, ...]:
    """Holes in a strictly increasing, aligned open_time array."""
    steps = np.diff(open_time)
    idx = np.flatnonzero(steps > interval)
    if idx.size == 0:
        return ()
    starts = open_time[idx] + interval
    ends = open_time[idx + 1] - interval
    missing = steps[idx] // interval - 1
    return tuple(Gap(int(s), int(e), int(m)) for s, e, m in zip(starts, ends, missing, strict=True))


def since_last_hole(frame: KlineFrame, before_ms: int | None) -> KlineFrame:
    """`frame` from just after its last hole that ends before `before_ms` (all of it if none does).

    A backtest's window starts at ``before_ms``; history before it only warms indicators up. A hole
    long before the window (a store holding 2019-2021 and 2023) must not refuse a 2023 backtest, and
    warm-up across a hole would mix unrelated prices, so the warm-up starts after the last hole."""
    if before_ms is None or len(frame) == 0:
        return frame
    head = frame.between(None, before_ms)
    holes = find_gaps(head.open_time, interval_ms(frame.timeframe))
    if not holes:
        return frame
    return frame.between(holes[-1].end_ms + 1, None)


def merge_gaps(a: tuple[Gap, ...], b: tuple[Gap, ...], interval: int) -> tuple[Gap, ...]:
    """Sorted union of two gap lists, overlapping or touching gaps merged into one.

    Re-validating a frame that already records its gaps must not list them twice.
    """
    merged: list[Gap] = []
    for g in sorted((*a, *b), key=lambda g: (g.start_ms, g.end_ms)):  # loops over gaps, not rows
        if merged and g.start_ms <= merged[-1].end_ms + interval:
            last = merged[-1]
            end = max(last.end_ms, g.end_ms)
            merged[-1] = Gap(last.start_ms, end, (end - last.start_ms) // interval + 1)
        else:
            merged.append(g)
    return tuple(merged)


def apply_gap_policy(frame: KlineFrame, policy: str, rows: RowLocator | None = None) -> KlineFrame:
    """Apply `policy` to the holes in `frame` (which must already pass :func:`check_rows`).

    ``error`` raises DataError listing the first gaps; ``keep`` records them in ``frame.gaps``;
    ``ffill`` also inserts flat klines at the previous close with volume 0, so every period exists.
    """
    if policy not in GAP_POLICIES:
        raise ValueError(f"gap_policy must be one of {GAP_POLICIES}, got {policy!r}")
    interval = interval_ms(frame.timeframe)
    gaps = find_gaps(frame.open_time, interval)
    if not gaps:
        return frame
    total = sum(g.missing for g in gaps)
    summary = f"{len(gaps)} gap(s), {total} {frame.timeframe} kline(s) missing"
    if policy == "error":
        rows = rows or RowLocator.single(frame.source or f"{frame.symbol} {frame.timeframe}")
        listed = "; ".join(str(g) for g in gaps[:MAX_LISTED_GAPS])
        more = f"; and {len(gaps) - MAX_LISTED_GAPS} more" if len(gaps) > MAX_LISTED_GAPS else ""
        after = int(np.searchsorted(frame.open_time, gaps[0].end_ms, side="right"))
        msg = f"{summary}: {listed}{more} (pass gap_policy='keep' or 'ffill' to accept gaps)"
        raise rows.error(after, "gap", msg)
    _log.warning("%s %s (%s): %s, %s", frame.symbol, frame.timeframe, frame.source, summary,
                 "filled flat" if policy == "ffill" else "kept")
    recorded = merge_gaps(frame.gaps, gaps, interval)
    if policy == "keep":
        return _replace(frame, frame.open_time, frame.open, frame.high, frame.low, frame.close, frame.volume,
                        recorded)
    return _forward_fill(frame, interval, recorded)


def validate(
    frame: KlineFrame,
    *,
    gap_policy: str = "error",
    close_time: np.ndarray | None = None,
    rows: RowLocator | None = None,
) -> KlineFrame:
    """Check every rule on `frame` and apply the gap policy; returns the (possibly filled) frame."""
    rows = rows or RowLocator.single(frame.source or f"{frame.symbol} {frame.timeframe}")
    check_rows(frame.open_time, frame.open, frame.high, frame.low, frame.close, frame.volume,
               timeframe=frame.timeframe, rows=rows, close_time=close_time)
    return apply_gap_policy(frame, gap_policy, rows)


def _forward_fill(frame: KlineFrame, interval: int, gaps: tuple[Gap, ...]) -> KlineFrame:
    """Every period from first to last, missing ones flat at the previous close with volume 0."""
    first = int(frame.open_time[0])
    n = int((frame.open_time[-1] - first) // interval) + 1
    pos = (frame.open_time - first) // interval
    src = np.zeros(n, dtype=np.int64)
    src[pos] = np.arange(pos.size)
    present = np.zeros(n, dtype=bool)
    present[pos] = True
    prev = np.maximum.accumulate(np.where(present, np.arange(n), 0))
    src = src[prev]  # index of the kline itself, or of the last one before the hole
    close = frame.close[src]  # for a missing period: the previous close, so the kline is flat
    open_time = first + np.arange(n, dtype=np.int64) * interval
    return _replace(
        frame,
        open_time,
        np.where(present, frame.open[src], close),
        np.where(present, frame.high[src], close),
        np.where(present, frame.low[src], close),
        close,
        np.where(present, frame.volume[src], 0.0),
        gaps,
    )


def _replace(frame: KlineFrame, open_time: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray,
             c: np.ndarray, v: np.ndarray, gaps: tuple[Gap, ...]) -> KlineFrame:
    return KlineFrame(frame.symbol, frame.timeframe, open_time, o, h, lo, c, v, gaps=gaps, source=frame.source)
