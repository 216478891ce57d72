"""KlineFrame: columnar klines (numpy arrays) for one symbol and timeframe, plus the gaps found in them.

Columns rather than per-kline objects because indicators and the backtester work on whole arrays, and a
symbol-year of 1m klines (525,600 rows) must load in well under a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kinetic_empire.data._util import format_ms, interval_ms

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
COLUMNS: tuple[str, ...] = ("open_time", *PRICE_COLUMNS)


@dataclass(frozen=True, slots=True, eq=False)
class Gap:
    """A hole in the data: klines missing between two present ones."""

    start_ms: int
    """open_time of the first missing kline."""
    end_ms: int
    """open_time of the last missing kline."""
    missing: int
    """Number of klines missing."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Gap):
            return NotImplemented
        return (self.start_ms, self.end_ms, self.missing) == (other.start_ms, other.end_ms, other.missing)

    def __hash__(self) -> int:
        return hash((self.start_ms, self.end_ms, self.missing))

    def __str__(self) -> str:
        return f"{format_ms(self.start_ms)}..{format_ms(self.end_ms)} ({self.missing} missing)"


@dataclass(frozen=True, slots=True, eq=False)
class KlineFrame:
    """Klines of one symbol and timeframe as parallel arrays, sorted by open_time.

    Treat the arrays as immutable: frames share them (``between`` returns views).
    ``gaps`` lists holes that a ``keep`` or ``ffill`` gap policy let through, so reports can say so.
    """

    symbol: str
    timeframe: str
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    gaps: tuple[Gap, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        # Coerce once here so every consumer can rely on int64/float64 1-D arrays of equal length.
        interval_ms(self.timeframe)  # fail fast on an unknown timeframe
        object.__setattr__(self, "open_time", np.ascontiguousarray(self.open_time, dtype=np.int64))
        n = self.open_time.shape[0]
        for name in PRICE_COLUMNS:
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if arr.ndim != 1 or arr.shape[0] != n:
                raise ValueError(f"column {name!r} has shape {arr.shape}, expected ({n},)")
            object.__setattr__(self, name, arr)
        if self.open_time.ndim != 1:
            raise ValueError(f"open_time must be 1-D, got shape {self.open_time.shape}")
        object.__setattr__(self, "gaps", tuple(self.gaps))

    def __len__(self) -> int:
        return int(self.open_time.shape[0])

    def __repr__(self) -> str:
        span = f"{format_ms(self.open_time[0])}..{format_ms(self.open_time[-1])}" if len(self) else "empty"
        return (
            f"KlineFrame({self.symbol} {self.timeframe}, {len(self)} rows, {span}, "
            f"{len(self.gaps)} gaps, source={self.source!r})"
        )

    @property
    def interval_ms(self) -> int:
        """Length of one kline in ms."""
        return interval_ms(self.timeframe)

    @property
    def close_time(self) -> np.ndarray:
        """Binance's close_time: the last millisecond of each kline."""
        return self.open_time + (interval_ms(self.timeframe) - 1)

    @property
    def missing(self) -> int:
        """Total klines missing across all recorded gaps."""
        return sum(g.missing for g in self.gaps)

    def between(self, start_ms: int | None, end_ms: int | None) -> KlineFrame:
        """Rows with open_time in ``[start_ms, end_ms)``; either bound may be None (open-ended).

        Returns views, not copies; gaps are clipped to the window.
        """
        n = len(self)
        i0 = 0 if start_ms is None else int(np.searchsorted(self.open_time, start_ms, side="left"))
        i1 = n if end_ms is None else int(np.searchsorted(self.open_time, end_ms, side="left"))
        i1 = max(i0, i1)
        if i0 == 0 and i1 == n:
            return self
        lo = -(2**62) if start_ms is None else start_ms
        hi = 2**62 if end_ms is None else end_ms - 1
        clipped = (_clip_gap(g, lo, hi, interval_ms(self.timeframe)) for g in self.gaps)
        gaps = tuple(g for g in clipped if g is not None)
        return KlineFrame(
            self.symbol,
            self.timeframe,
            self.open_time[i0:i1],
            self.open[i0:i1],
            self.high[i0:i1],
            self.low[i0:i1],
            self.close[i0:i1],
            self.volume[i0:i1],
            gaps=gaps,
            source=self.source,
        )

    def shifted(self, offset_ms: int) -> KlineFrame:
        """The same klines ``offset_ms`` later (or earlier): every open time and gap moves, prices do not."""
        gaps = tuple(Gap(g.start_ms + offset_ms, g.end_ms + offset_ms, g.missing) for g in self.gaps)
        return KlineFrame(self.symbol, self.timeframe, self.open_time + np.int64(offset_ms), self.open, self.high,
                          self.low, self.close, self.volume, gaps=gaps, source=self.source)

    @classmethod
    def from_columns(
        cls,
        symbol: str,
        timeframe: str,
        columns: Mapping[str, np.ndarray],
        *,
        gaps: tuple[Gap, ...] = (),
        source: str = "",
    ) -> KlineFrame:
        """Build from a mapping holding at least :data:`COLUMNS` (extra keys are ignored)."""
        c = columns
        return cls(symbol, timeframe, c["open_time"], c["open"], c["high"], c["low"], c["close"], c["volume"],
                   gaps=gaps, source=source)

    @classmethod
    def empty(cls, symbol: str, timeframe: str, *, source: str = "") -> KlineFrame:
        """A frame with no rows."""
        cols = {c: np.empty(0, dtype=np.int64 if c == "open_time" else np.float64) for c in COLUMNS}
        return cls.from_columns(symbol, timeframe, cols, source=source)

    def to_pandas(self) -> pd.DataFrame:
        """DataFrame with a UTC DatetimeIndex named ``time`` and columns open_time, open..volume."""
        index = pd.DatetimeIndex(pd.to_datetime(self.open_time, unit="ms", utc=True), name="time")
        data = {name: getattr(self, name) for name in COLUMNS}
        df = pd.DataFrame(data, index=index, copy=True)
        df.attrs.update(symbol=self.symbol, timeframe=self.timeframe, source=self.source)
        return df

    @classmethod
    def from_pandas(
        cls,
        df: pd.DataFrame,
        symbol: str | None = None,
        timeframe: str | None = None,
        *,
        gaps: tuple[Gap, ...] = (),
        source: str = "",
    ) -> KlineFrame:
        """Build from a DataFrame with an ``open_time`` column (epoch ms) or a DatetimeIndex.

        Column names are matched case-insensitively (``Open`` or ``open``). symbol/timeframe default
        to ``df.attrs`` (set by :meth:`to_pandas`). The data is not validated here: pass the result
        through :func:`kinetic_empire.data.validate` if it did not come from this package.
        """
        cols: Mapping[str, str] = {str(c).lower(): c for c in df.columns}
        missing = [c for c in PRICE_COLUMNS if c not in cols]
        if missing:
            raise ValueError(f"DataFrame lacks columns {missing}; has {list(df.columns)}")
        if "open_time" in cols:
            open_time = df[cols["open_time"]].to_numpy(dtype=np.int64)
        elif isinstance(df.index, pd.DatetimeIndex):
            idx = df.index.tz_localize("UTC") if df.index.tz is None else df.index.tz_convert("UTC")
            open_time = idx.as_unit("ms").asi8
        else:
            raise ValueError("DataFrame needs an open_time column (epoch ms) or a DatetimeIndex")
        symbol = symbol or df.attrs.get("symbol")
        timeframe = timeframe or df.attrs.get("timeframe")
        if not symbol or not timeframe:
            raise ValueError("symbol and timeframe are required (not found in df.attrs)")
        arrays = {c: df[cols[c]].to_numpy(dtype=np.float64) for c in PRICE_COLUMNS}
        return cls.from_columns(symbol, timeframe, {"open_time": open_time, **arrays}, gaps=gaps,
                                source=source or df.attrs.get("source", ""))


def _clip_gap(gap: Gap, lo: int, hi: int, interval: int) -> Gap | None:
    """The part of `gap` whose missing open_times lie in [lo, hi], or None if there is none."""
    start, end = gap.start_ms, gap.end_ms
    if start < lo:
        start += -(-(lo - start) // interval) * interval
    if end > hi:
        end -= -(-(end - hi) // interval) * interval
    if start > end:
        return None
    return Gap(start, end, (end - start) // interval + 1)
