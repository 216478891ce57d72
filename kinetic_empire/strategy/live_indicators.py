"""Keeps a strategy's series and indicators current one closed kline at a time (live runs).

``init`` runs once, on the warm-up history; the indicator declarations it made (``IndicatorSpec``) are
then re-evaluated on every new kline: by their O(1) incremental form when they have one
(``strategy/incremental.py``), else by calling the function again on the last ``window`` values of its
inputs and keeping the newest value. The series objects the strategy holds stay the same objects; their
buffers grow by one value per kline and are cut back to the last ``keep`` values once in a while
(amortised O(1)), so ``s[-k]`` reaches at least ``keep`` klines back. Nothing here can reveal a value
after the current kline: each new value is computed from inputs up to that kline only.

Every output is also checked against the time the history starts: :func:`history_needed` says how many
klines of warm-up make the live values equal a full-history backtest's to 1e-9 relative.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.timeframes import timeframe_ms
from .base import IndicatorSpec, Strategy
from .higher import HigherTimeframe, compute
from .incremental import Incremental, incremental_for
from .series import Series, engine_array
from .symbol_data import price_series

log = logging.getLogger(__name__)

BASE_FIELDS = ("open", "high", "low", "close", "volume")
_HEADROOM = 2048  # klines appended between two cut-backs of the buffers


class _Column:
    """One series' growing storage: a numpy buffer (slices, ``.values``) and a list (fast indexing).

    It writes the :class:`Series` internals the series module reads (``_values``, ``_list`` and the
    lazily revealed copy): a test (tests/unit/test_live_indicators.py) fails if those change shape.
    """

    __slots__ = ("buf", "series", "vals")

    def __init__(self, series: Series, capacity: int) -> None:
        values = engine_array(series)
        self.series = series
        self.buf = np.full(max(capacity, len(values)), np.nan)
        self.buf[: len(values)] = values
        self.vals: list[float] = values.tolist()
        self._attach()

    def _attach(self) -> None:
        s = self.series
        s._values = self.buf
        s._list = self.vals
        s._shown = None
        s._revealed = 0

    def cut(self, keep: int, n: int) -> None:
        """Keep the last ``keep`` of the ``n`` values, at the start of the buffer."""
        buf = self.buf
        buf[:keep] = buf[n - keep : n]
        buf[keep:] = np.nan
        del self.vals[:-keep]
        self._attach()


Step = Callable[[int], None]


class LiveIndicators:
    """The live state of one strategy instance, built from its warm-up history (after ``init`` ran)."""

    def __init__(self, strategy: Strategy, *, window: int, keep: int) -> None:
        self.strategy = strategy
        self.window = max(2, window)
        self.n = len(engine_array(strategy.close))
        self.keep = max(keep, self.window, 2, *(higher_need(strategy, s) for s in strategy._specs if s.timeframe))
        known = strategy._open_time
        self.times: list[int] = known.tolist() if known is not None else []
        self.capacity = max(self.n, self.keep) + _HEADROOM
        self._columns: dict[int, _Column] = {}
        self.base = [self._column(series) for series in price_series(strategy.data)]  # 5 per symbol
        self.incremental: list[str] = []
        self.recomputed: list[str] = []
        self._steps: list[Step] = [self._step_for(spec) for spec in strategy._specs]
        self._waiting = [c for c in self._indicator_columns() if not np.isfinite(c.vals).any()]

    def _column(self, series: Series) -> _Column:
        col = self._columns[id(series)] = _Column(series, self.capacity)
        return col

    def _indicator_columns(self) -> list[_Column]:
        return [self._columns[id(s)] for s in self.strategy._indicators]

    def _outputs(self, spec: IndicatorSpec) -> list[Series]:
        by_name = {s.name: s for s in self.strategy._indicators}
        return [by_name[name] for name in spec.outputs]

    # ------------------------------------------------------------------------------ building
    def _step_for(self, spec: IndicatorSpec) -> Step:
        outputs = [self._column(s) for s in self._outputs(spec)]
        if spec.timeframe is not None:
            self.recomputed.append(spec.name)
            return self._higher_step(spec, outputs)
        found = incremental_for(spec.func, spec.args, spec.kwargs, lambda v: isinstance(v, Series))
        if found is not None:
            state, inputs = found
            if state.outputs == len(outputs) and all(id(s) in self._columns for s in inputs):
                sources = [self._columns[id(s)].vals for s in inputs]
                for t in range(self.n):  # seed: the state has seen the same history as the series
                    state.update(*[src[t] for src in sources])
                self.incremental.append(spec.name)
                return _incremental_step(state, sources, outputs)
        self.recomputed.append(spec.name)
        return self._recompute_step(spec, outputs)

    def _recompute_step(self, spec: IndicatorSpec, outputs: list[_Column]) -> Step:
        columns = self._columns
        window = self.window

        def arg(value: Any, end: int) -> Any:
            if isinstance(value, Series):
                return columns[id(value)].buf[max(0, end - window) : end]
            return value

        def step(i: int) -> None:
            end = i + 1
            result = spec.func(*[arg(a, end) for a in spec.args], **{k: arg(v, end) for k, v in spec.kwargs.items()})
            arrays = result if isinstance(result, tuple) else (result,)
            if len(arrays) != len(outputs):
                raise ValueError(f"indicator {spec.name} returned {len(arrays)} arrays, expected {len(outputs)}")
            for col, arr in zip(outputs, arrays):
                v = float(np.asarray(arr, dtype=np.float64)[-1])
                col.buf[i] = v
                col.vals.append(v)

        return step

    def _higher_step(self, spec: IndicatorSpec, outputs: list[_Column]) -> Step:
        """A higher-timeframe indicator: recomputed from the last klines that cover its warm-up when a kline
        closes one of its periods (the value only changes then), carried forward otherwise."""
        higher_tf = spec.timeframe
        assert higher_tf is not None
        strategy, columns, times = self.strategy, self._columns, self.times
        span = higher_need(strategy, spec)
        period, base_ms = timeframe_ms(higher_tf), timeframe_ms(strategy.timeframe)
        prices = strategy._price_keys()  # every symbol's, for a multi-symbol strategy
        fields = {id(series): key for key, series in prices.items()}
        base = {key: columns[id(series)] for key, series in prices.items()}

        def step(i: int) -> None:
            end = i + 1
            if (times[-1] + base_ms) % period or i == 0:  # no period closed here: the value stands
                for col in outputs:
                    v = col.vals[-1] if col.vals else float("nan")
                    col.buf[i] = v
                    col.vals.append(v)
                return
            start = max(0, end - span)
            higher = HigherTimeframe({k: c.buf[start:end] for k, c in base.items()},
                                     np.asarray(times[len(times) - (end - start):], dtype=np.int64),
                                     strategy.timeframe, higher_tf)
            arrays = compute(spec.func, spec.args, spec.kwargs, higher, lambda v: fields.get(id(v)), spec.name)
            for col, arr in zip(outputs, arrays):
                v = float(arr[-1])
                col.buf[i] = v
                col.vals.append(v)

        return step

    # ------------------------------------------------------------------------------ per kline
    def append(self, open_: float, high: float, low: float, close: float, volume: float,
               open_time: int | None = None) -> int:
        """Add one closed kline and every indicator's value at it; returns the kline's index."""
        return self.append_rows((open_, high, low, close, volume), open_time)

    def append_rows(self, values: Sequence[float], open_time: int | None) -> int:
        """:meth:`append` of one kline time: ``values`` holds open, high, low, close, volume of each symbol in
        turn (a multi-symbol strategy: every symbol's kline of that time)."""
        i = self.n
        if i == self.capacity:
            self._cut()
            i = self.n
        if open_time is not None:
            self.times.append(open_time)
        for col, v in zip(self.base, values, strict=True):
            col.buf[i] = v
            col.vals.append(v)
        for step in self._steps:
            step(i)
        self.n = i + 1
        self.strategy._cursor.i = i
        if self._waiting:
            self._waiting = [c for c in self._waiting if c.vals[-1] != c.vals[-1]]
        return i

    @property
    def ready(self) -> bool:
        """Every indicator has had a value (the live form of the inferred warm-up)."""
        return not self._waiting

    def _cut(self) -> None:
        keep, n = self.keep, self.n
        for col in self._columns.values():
            col.cut(keep, n)
        del self.times[:-keep]
        self.n = keep
        self.strategy._cursor.i = keep - 1


def _incremental_step(state: Incremental, sources: list[list[float]], outputs: list[_Column]) -> Step:
    update = state.update
    if len(sources) == 1 and len(outputs) == 1:
        src, (out,) = sources[0], outputs
        buf, vals = out.buf, out.vals

        def step1(i: int) -> None:
            v = update(src[-1])
            buf[i] = v
            vals.append(v)

        return step1
    if len(outputs) == 1:
        out = outputs[0]

        def step_n(i: int) -> None:
            v = update(*[s[-1] for s in sources])
            out.buf[i] = v
            out.vals.append(v)

        return step_n

    def step_tuple(i: int) -> None:
        for col, v in zip(outputs, update(*[s[-1] for s in sources])):
            col.buf[i] = v
            col.vals.append(v)

    return step_tuple


# ------------------------------------------------------------------------------------- sizing
def history_needed(strategy: Strategy, window: int) -> tuple[int, dict[str, int]]:
    """Klines of warm-up for live values equal to a full-history backtest's (1e-9 relative), and each
    indicator's own need. ``strategy`` has run ``init`` on some history (any: only the declarations
    matter). An indicator without an incremental form needs the ``window`` it is recomputed on; one
    computed from other indicators needs theirs on top of its own."""
    needs: dict[int, int] = {id(s): 0 for s in strategy._base.values()}
    per_indicator: dict[str, int] = {}
    by_name = {s.name: s for s in strategy._indicators}
    for spec in strategy._specs:
        found = incremental_for(spec.func, spec.args, spec.kwargs, lambda v: isinstance(v, Series))
        upstream = max((needs.get(id(a), 0) for a in (*spec.args, *spec.kwargs.values()) if isinstance(a, Series)),
                       default=0)
        own = higher_need(strategy, spec) if spec.timeframe else found[0].settle() if found is not None else window
        need = per_indicator[spec.name] = upstream + own
        for name in spec.outputs:
            needs[id(by_name[name])] = need
    total = max([window, int(strategy.warmup), *per_indicator.values()]) + 1
    return total, per_indicator


def higher_need(strategy: Strategy, spec: IndicatorSpec) -> int:
    """Klines of the strategy's own timeframe a higher-timeframe indicator is recomputed on live: its own
    warm-up in longer klines (an incremental form's settle, else 100 of them), plus the period the history
    may start in the middle of, all in the strategy's klines."""
    assert spec.timeframe is not None
    ratio = timeframe_ms(spec.timeframe) // timeframe_ms(strategy.timeframe)
    found = incremental_for(spec.func, spec.args, spec.kwargs, lambda v: isinstance(v, Series))
    return (found[0].settle() if found is not None else 100) * ratio + 2 * ratio


def probe_history_needed(strategy: Strategy, window: int) -> tuple[int, dict[str, int]]:
    """:func:`history_needed` before any real history exists: a fresh instance of the same strategy and
    parameters runs ``init`` on a synthetic random walk, only to read its declarations."""
    probe = strategy._fresh()
    rng = np.random.default_rng(0)
    shape = (max(window, 2), len(strategy.symbols)) if strategy.multi_symbol else (max(window, 2),)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, shape), axis=0))  # a column per symbol if several
    times = np.arange(len(close), dtype=np.int64) * timeframe_ms(strategy.timeframe)
    probe._bind(np.concatenate([close[:1], close[:-1]]), close * 1.001, close * 0.999, close, np.ones_like(close),
                times)
    return history_needed(probe, window)


__all__ = ["BASE_FIELDS", "LiveIndicators", "history_needed", "probe_history_needed"]
