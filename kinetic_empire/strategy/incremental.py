"""O(1)-per-kline forms of the built-in indicators, for live runs.

A backtest computes each indicator once over the whole history (``strategy/indicators.py``). Live, the
same values are kept up to date one closed kline at a time by these small state machines, so a kline
costs a few microseconds instead of a recompute over a window. Each one repeats its vectorised twin's
arithmetic operation for operation where that twin is a recursion (EMA, RSI and MACD are pandas'
``ewm(adjust=False)``; ATR is TA-Lib's Wilder smoothing), so a state stepped over the same klines gives
the same floats. Rolling windows (SMA, Bollinger, Donchian) keep running moments or a monotonic queue
and re-sum the window exactly every ``period`` klines, so rounding cannot drift over a long run.

A recursive indicator depends on where its history starts: seeded ``n`` klines back, the seed's weight
left is ``(1 - alpha) ** n``. :meth:`Incremental.settle` says how many klines make that weight smaller
than :data:`SEED_WEIGHT`, which is how long the live warm-up must be for the live values to equal a
backtest's full-history ones to 1e-9 relative.
"""

from __future__ import annotations

import inspect
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from . import indicators as ind

NAN = math.nan
SEED_WEIGHT = 1e-12
"""Weight a recursive indicator's seed may keep after the warm-up (1e-9 relative with a 1000x margin)."""


def _decay_klines(alpha: float) -> int:
    """Klines after which a weight of ``(1 - alpha) ** n`` falls below :data:`SEED_WEIGHT`."""
    if alpha >= 1.0:
        return 0
    return math.ceil(math.log(SEED_WEIGHT) / math.log1p(-alpha))


class Incremental:
    """One indicator's state: ``update`` takes the newest inputs and returns the newest output(s)."""

    __slots__ = ()
    outputs = 1

    def update(self, *values: float) -> Any:
        raise NotImplementedError

    def settle(self) -> int:
        """Klines of history after which the value no longer depends on where the history began."""
        raise NotImplementedError


class Ewm(Incremental):
    """pandas' ``ewm(com=com, adjust=False, min_periods=...).mean()``, one value at a time."""

    __slots__ = ("alpha", "min_periods", "nobs", "old_wt", "weighted")

    def __init__(self, com: float, min_periods: int) -> None:
        self.alpha = 1.0 / (1.0 + com)
        self.old_wt = 1.0 - self.alpha
        self.min_periods = min_periods
        self.weighted = NAN
        self.nobs = 0

    def update(self, cur: float) -> float:  # type: ignore[override]
        weighted = self.weighted
        observed = cur == cur
        self.nobs += observed
        if weighted == weighted:
            if observed and weighted != cur:
                alpha, old_wt = self.alpha, self.old_wt
                weighted = self.weighted = (old_wt * weighted + alpha * cur) / (old_wt + alpha)
        elif observed:
            weighted = self.weighted = cur
        return weighted if self.nobs >= self.min_periods else NAN

    def settle(self) -> int:
        return self.min_periods + _decay_klines(self.alpha)


class Ema(Ewm):
    """``indicators.ema``: span ``period``, first value at kline ``period - 1``."""

    __slots__ = ()

    def __init__(self, period: int) -> None:
        super().__init__((int(period) - 1) / 2, int(period))


class Rsi(Incremental):
    """``indicators.rsi``: Wilder's RSI as ``ta`` computes it."""

    __slots__ = ("down", "prev", "up")

    def __init__(self, period: int = 14) -> None:
        alpha = 1 / int(period)
        com = (1 - alpha) / alpha
        self.up, self.down = Ewm(com, int(period)), Ewm(com, int(period))
        self.prev = NAN

    def update(self, close: float) -> float:  # type: ignore[override]
        diff = close - self.prev  # NaN on the first kline, which counts as no move (as in ta)
        self.prev = close
        mean_up = self.up.update(diff if diff > 0 else 0.0)
        mean_down = self.down.update(-diff if diff < 0 else -0.0)
        if mean_down == 0:
            return 100.0
        if mean_down != mean_down or mean_up != mean_up:
            return NAN
        return 100 - (100 / (1 + mean_up / mean_down))

    def settle(self) -> int:
        return 1 + self.up.settle()


class Atr(Incremental):
    """``indicators.atr``: TA-Lib's ATR (true range, SMA seed over ``period``, then Wilder smoothing)."""

    __slots__ = ("n", "period", "prev_atr", "prev_close", "total")

    def __init__(self, period: int = 14) -> None:
        self.period = int(period)
        self.prev_close = NAN
        self.prev_atr = NAN
        self.total = 0.0
        self.n = 0  # true ranges seen

    def update(self, high: float, low: float, close: float) -> float:  # type: ignore[override]
        prev_close, self.prev_close = self.prev_close, close
        if prev_close != prev_close:
            return NAN
        greatest = high - low
        v = abs(prev_close - high)
        if v > greatest:
            greatest = v
        v = abs(prev_close - low)
        if v > greatest:
            greatest = v
        p = self.period
        self.n += 1
        if self.n < p:
            self.total += greatest
            return NAN
        if self.n == p:
            self.total += greatest
            self.prev_atr = self.total / p
            return self.prev_atr
        self.prev_atr = (self.prev_atr * (p - 1) + greatest) / p
        return self.prev_atr

    def settle(self) -> int:
        return 1 + self.period + _decay_klines(1 / self.period)


class _Window:
    """The last ``period`` values with their running mean and squared deviations (Welford add/remove),
    re-summed exactly every ``period`` klines so rounding stays bounded however long the run."""

    __slots__ = ("mean", "period", "since_exact", "ssqdm", "values")

    def __init__(self, period: int) -> None:
        self.period = int(period)
        self.values: deque[float] = deque()
        self.mean = 0.0
        self.ssqdm = 0.0
        self.since_exact = 0

    def push(self, x: float) -> bool:
        """Add ``x`` (dropping the oldest); True once the window is full."""
        values = self.values
        values.append(x)
        n = len(values)
        self.since_exact += 1
        if n > self.period:
            old = values.popleft()
            n -= 1
            if self.since_exact >= self.period:
                self._exact()
                return True
            old_mean = self.mean
            mean = self.mean = old_mean + (x - old) / n
            self.ssqdm += (x - old) * (x - mean + old - old_mean)
            return True
        delta = x - self.mean
        self.mean += delta / n
        self.ssqdm += delta * (x - self.mean)
        return n == self.period

    def _exact(self) -> None:
        values = self.values
        n = len(values)
        self.mean = math.fsum(values) / n
        m = self.mean
        self.ssqdm = math.fsum((v - m) * (v - m) for v in values)
        self.since_exact = 0


class Sma(Incremental):
    """``indicators.sma``: the mean of the last ``period`` values."""

    __slots__ = ("window",)

    def __init__(self, period: int) -> None:
        self.window = _Window(period)

    def update(self, close: float) -> float:  # type: ignore[override]
        return self.window.mean if self.window.push(close) else NAN

    def settle(self) -> int:
        return self.window.period


_ILL_CONDITIONED = 1e-8  # variance / mean^2 below which the running variance is recomputed exactly


class Bollinger(Incremental):
    """``indicators.bollinger``: (lower, middle, upper), the population deviation as ``ta`` uses."""

    __slots__ = ("deviations", "window")
    outputs = 3

    def __init__(self, period: int = 20, deviations: float = 2.0) -> None:
        self.window = _Window(period)
        self.deviations = float(deviations)

    def update(self, close: float) -> tuple[float, float, float]:  # type: ignore[override]
        w = self.window
        if not w.push(close):
            return NAN, NAN, NAN
        mean, ssqdm = w.mean, w.ssqdm
        if ssqdm < _ILL_CONDITIONED * mean * mean * w.period:
            # nearly flat window: running sums' rounding would dominate the root, so sum it exactly
            values = w.values
            mean = math.fsum(values) / w.period
            ssqdm = math.fsum((v - mean) * (v - mean) for v in values)
        band = self.deviations * math.sqrt(max(ssqdm, 0.0) / w.period)
        return mean - band, mean, mean + band

    def settle(self) -> int:
        return self.window.period


class Donchian(Incremental):
    """``indicators.donchian``: (lower, upper), the extremes of the last ``period`` klines."""

    __slots__ = ("highs", "lows", "n", "period")
    outputs = 2

    def __init__(self, period: int = 20) -> None:
        self.period = int(period)
        self.highs: deque[tuple[int, float]] = deque()  # decreasing highs: the front is the max
        self.lows: deque[tuple[int, float]] = deque()  # increasing lows: the front is the min
        self.n = 0

    def update(self, high: float, low: float) -> tuple[float, float]:  # type: ignore[override]
        n = self.n = self.n + 1
        highs, lows = self.highs, self.lows
        while highs and highs[-1][1] <= high:
            highs.pop()
        highs.append((n, high))
        while lows and lows[-1][1] >= low:
            lows.pop()
        lows.append((n, low))
        oldest = n - self.period
        if highs[0][0] <= oldest:
            highs.popleft()
        if lows[0][0] <= oldest:
            lows.popleft()
        if n < self.period:
            return NAN, NAN
        return lows[0][1], highs[0][1]

    def settle(self) -> int:
        return self.period


class Macd(Incremental):
    """``indicators.macd``: (macd line, signal line, histogram) from three pandas EWMs."""

    __slots__ = ("fast", "signal", "slow")
    outputs = 3

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast, self.slow, self.signal = Ema(fast), Ema(slow), Ema(signal)

    def update(self, close: float) -> tuple[float, float, float]:  # type: ignore[override]
        line = self.fast.update(close) - self.slow.update(close)
        signal = self.signal.update(line)
        return line, signal, line - signal

    def settle(self) -> int:
        return max(self.fast.settle(), self.slow.settle()) + self.signal.settle()


Factory = Callable[..., Incremental]
INCREMENTAL: dict[Callable[..., Any], Factory] = {
    ind.ema: Ema,
    ind.sma: Sma,
    ind.rsi: Rsi,
    ind.atr: Atr,
    ind.bollinger: Bollinger,
    ind.donchian: Donchian,
    ind.macd: Macd,
}
"""Indicator function -> its incremental form; its arguments that are series are the inputs (in the
function's parameter order), the others the constructor's keyword arguments."""


def incremental_for(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], is_series: Callable[[Any], bool]
) -> tuple[Incremental, list[Any]] | None:
    """The incremental state for an ``I(func, *args, **kwargs)`` declaration and its series inputs in
    order, or None when ``func`` has no incremental form (it is recomputed over the window instead)."""
    factory = INCREMENTAL.get(func)
    if factory is None:
        return None
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
        inputs = [v for v in bound.arguments.values() if is_series(v)]
        params = {k: v for k, v in bound.arguments.items() if not is_series(v)}
        state = factory(**params)
    except (TypeError, ValueError):
        return None  # e.g. an input given as a plain array: only the window recompute can take it
    return state, inputs


__all__ = ["INCREMENTAL", "SEED_WEIGHT", "Atr", "Bollinger", "Donchian", "Ema", "Ewm", "Incremental", "Macd",
           "Rsi", "Sma", "incremental_for"]
