"""Vectorised indicators over float arrays, for ``Strategy.I(...)``.

Which library computes what, and why:

* ``ta`` (the project's indicator dependency) for EMA, SMA, RSI and MACD: its
  implementations are pandas-vectorised (well under 0.3 s per million values).
* TA-Lib (``TA-Lib`` wheel, no system library needed) for ATR, ADX and Parabolic SAR: ``ta``
  computes these in Python loops (measured ~7 s and ~10 s per million values for ATR/ADX, 13 s per
  100k for PSAR), TA-Lib gives the same values about a thousand times faster. A test checks that
  both libraries agree on real klines, so the choice is about speed only.
* Donchian channels are a rolling max/min, done directly with pandas; Bollinger bands are numpy
  sliding windows (see ``bollinger``).
* Live runs keep these current with O(1) incremental forms (``strategy/incremental.py``).
* Live runs recompute indicators over a short window on every kline, where pandas' fixed cost per call
  dominates (~0.5 ms for ``ta``'s RSI on 300 values). For short inputs EMA and RSI therefore run
  pandas' own ``ewm(adjust=False)`` recursion operation for operation in plain Python, which gives
  bit-identical values (a test compares them with ``ta`` over many lengths and periods), so live and
  backtest decisions cannot diverge by a rounding bit.

pandas, ``ta`` and TA-Lib are imported on first use, not with this module: strategy plugins import it,
and ``kinetic strategies`` (which only lists them) should not pay for pandas and pyarrow.

Every function takes and returns numpy float64 arrays of the input's length, with NaN where the
indicator is not yet defined (the warm-up).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

Array = np.ndarray


def _s(x: Array) -> pd.Series:
    import pandas as pd

    return pd.Series(np.asarray(x, dtype=np.float64), copy=False)


_SHORT_EMA = 256  # below these lengths the exact Python recursion beats pandas' per-call cost
_SHORT_RSI = 1500


def _ewm(values: Array, com: float, min_periods: int) -> Array:
    """pandas' ``ewm(com=com, adjust=False, min_periods=...).mean()``, operation for operation."""
    alpha = 1.0 / (1.0 + com)
    old_wt = 1.0 - alpha
    vals = values.tolist()
    out = [math.nan] * len(vals)
    if not vals:
        return np.asarray(out)
    weighted = vals[0]
    nobs = 1 if weighted == weighted else 0
    if nobs >= min_periods:
        out[0] = weighted
    for i in range(1, len(vals)):
        cur = vals[i]
        observed = cur == cur
        nobs += observed
        if weighted == weighted:
            if observed and weighted != cur:
                weighted = (old_wt * weighted + alpha * cur) / (old_wt + alpha)
        elif observed:
            weighted = cur
        if nobs >= min_periods:
            out[i] = weighted
    return np.asarray(out)


def ema(close: Array, period: int) -> Array:
    """Exponential moving average (span ``period``, seeded like pandas' ewm with adjust=False)."""
    if len(close) <= _SHORT_EMA:
        return _ema_exact(close, period)
    from ta.trend import EMAIndicator

    return EMAIndicator(_s(close), window=int(period), fillna=False).ema_indicator().to_numpy()


def _ema_exact(close: Array, period: int) -> Array:
    """``ema`` without pandas: the recursion used for short (live-window) inputs."""
    return _ewm(np.asarray(close, dtype=np.float64), (int(period) - 1) / 2, int(period))


def sma(close: Array, period: int) -> Array:
    from ta.trend import SMAIndicator

    return SMAIndicator(_s(close), window=int(period), fillna=False).sma_indicator().to_numpy()


def rsi(close: Array, period: int = 14) -> Array:
    """Wilder's RSI as ``ta`` computes it (ewm with alpha 1/period of up and down moves)."""
    if len(close) <= _SHORT_RSI:
        return _rsi_exact(close, period)
    from ta.momentum import RSIIndicator

    return RSIIndicator(_s(close), window=int(period), fillna=False).rsi().to_numpy()


def _rsi_exact(close: Array, period: int) -> Array:
    """``rsi`` without pandas: the recursion used for short (live-window) inputs."""
    c = np.asarray(close, dtype=np.float64)
    diff = np.empty_like(c)
    diff[:1] = np.nan
    diff[1:] = c[1:] - c[:-1]
    up = np.where(diff > 0, diff, 0.0)
    down = -np.where(diff < 0, diff, 0.0)
    alpha = 1 / int(period)
    com = (1 - alpha) / alpha  # how pandas turns alpha into a centre of mass
    mean_up, mean_down = _ewm(up, com, int(period)), _ewm(down, com, int(period))
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = mean_up / mean_down
        return np.where(mean_down == 0, 100, 100 - (100 / (1 + strength)))


def macd(close: Array, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[Array, Array, Array]:
    """(macd line, signal line, histogram)."""
    from ta.trend import MACD

    m = MACD(_s(close), window_slow=int(slow), window_fast=int(fast), window_sign=int(signal), fillna=False)
    return m.macd().to_numpy(), m.macd_signal().to_numpy(), m.macd_diff().to_numpy()


def bollinger(close: Array, period: int = 20, deviations: float = 2.0) -> tuple[Array, Array, Array]:
    """(lower, middle, upper) bands: mean of the last ``period`` values +- ``deviations`` population
    standard deviations (as ``ta``). The deviation is summed two-pass in each window, not from pandas'
    running sums: those leave a variance of ~1e-18 where it is 0, and the square root turns that into
    bands 3e-8 (relative) off, which no live computation could repeat."""
    from numpy.lib.stride_tricks import sliding_window_view

    c = np.asarray(close, dtype=np.float64)
    p, n = int(period), len(c)
    lower, middle, upper = (np.full(n, np.nan) for _ in range(3))
    chunk = 1 << 16
    for start in range(0, max(n - p + 1, 0), chunk):
        w = sliding_window_view(c[start : start + chunk + p - 1], p)
        mean = w.mean(axis=1)
        dev = w - mean[:, None]
        band = float(deviations) * np.sqrt((dev * dev).mean(axis=1))
        at = slice(start + p - 1, start + p - 1 + len(mean))
        lower[at], middle[at], upper[at] = mean - band, mean, mean + band
    return lower, middle, upper


def donchian(high: Array, low: Array, period: int = 20) -> tuple[Array, Array]:
    """(lower, upper) channel over the last ``period`` klines, the current one included."""
    upper = _s(high).rolling(int(period), min_periods=int(period)).max().to_numpy()
    lower = _s(low).rolling(int(period), min_periods=int(period)).min().to_numpy()
    return lower, upper


def atr(high: Array, low: Array, close: Array, period: int = 14) -> Array:
    """Average true range, Wilder smoothing (TA-Lib)."""
    import talib

    return talib.ATR(_f(high), _f(low), _f(close), timeperiod=int(period))


def adx(high: Array, low: Array, close: Array, period: int = 14) -> Array:
    import talib

    return talib.ADX(_f(high), _f(low), _f(close), timeperiod=int(period))


def psar(high: Array, low: Array, step: float = 0.02, maximum: float = 0.2) -> Array:
    import talib

    return talib.SAR(_f(high), _f(low), acceleration=float(step), maximum=float(maximum))


def _f(x: Array) -> Array:
    return np.ascontiguousarray(x, dtype=np.float64)


__all__ = ["adx", "atr", "bollinger", "donchian", "ema", "macd", "psar", "rsi", "sma"]
