"""Lookahead check by decisions: does the strategy decide the same when it cannot see the future?

The backtest computes indicators once over the whole history; a live run recomputes them on the history
up to each kline. Both must give the same decisions. This check replays a few windows of klines both
ways, each from a fresh instance on the same simulated position, and fails on the first difference:

1. an indicator whose value at kline k differs between the two (it reads klines after k: a shift by -1,
   a centred window, a normalisation by the series' maximum, a daily high over whole days, warm-up
   back-filled from later klines), named with both values;
2. an intent that differs while every declared indicator agrees: the strategy reads data outside
   ``self.I`` (an array computed in ``init`` from the whole history), named with both intents.

The truncated ("live") runs go first, before any whole-history computation in this process, so an
indicator function that caches its longest input has only seen the past when the live side is computed.
What it cannot prove: that windows not replayed are clean (it replays ``windows`` windows of
``length`` klines, the first at the start of the history, where warm-up tricks live), or that a strategy
reading the future through private attributes or the file system is caught outside those windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.enums import IntentAction
from ..core.events import new_kline
from ..core.timeframes import timeframe_ms
from ..strategy.base import Position, Strategy
from ..strategy.series import engine_array

Intent = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class DecisionFinding:
    """The first kline where the whole-history run and the live-way run part."""

    strategy: str
    symbol: str
    index: int
    open_time: int
    indicator: str  # "" when every declared indicator agrees
    full_value: Any
    live_value: Any

    def __str__(self) -> str:
        where = f"{self.strategy} on {self.symbol}, kline {self.index} (open time {self.open_time})"
        if self.indicator:
            return (f"{where}: indicator {self.indicator!r} is {self.full_value!r} with the whole history but "
                    f"{self.live_value!r} with history up to that kline: it uses future data")
        return (f"{where}: decides {self.full_value!r} with the whole history but {self.live_value!r} with "
                "history up to that kline, while every declared indicator agrees: it reads data outside "
                "self.I (e.g. an array computed in init from the whole history)")


@dataclass(frozen=True, slots=True)
class DecisionCheck:
    """What was checked, for the report when it passes."""

    windows: tuple[tuple[int, int], ...]
    klines: int
    indicators: int
    intents: int

    def __str__(self) -> str:
        spans = ", ".join(f"{s}..{e - 1}" for s, e in self.windows)
        return (f"decisions compared on {self.klines} klines in {len(self.windows)} windows ({spans}): "
                f"{self.indicators} indicator(s) and {self.intents} intent(s) identical with and without the future")


def windows_for(n: int, *, windows: int = 3, length: int = 120, seed: int = 7) -> list[tuple[int, int]]:
    """``windows`` spans of ``length`` klines: the first at the start, the rest spread at random."""
    length = max(2, min(length, n))
    starts = {0}
    rng = np.random.default_rng(seed)
    if n > length:
        starts |= {int(s) for s in rng.integers(1, n - length + 1, size=max(0, windows - 1))}
    return sorted((s, min(n, s + length)) for s in starts)


def check_decisions(
    strategy: Strategy,
    arrays: Sequence[np.ndarray],
    open_time: np.ndarray | None = None,
    *,
    windows: int = 3,
    length: int = 120,
    seed: int = 7,
    rtol: float = 1e-9,
) -> tuple[list[DecisionFinding], DecisionCheck]:
    """Replay windows both ways; the findings (first difference per window) and what was compared."""
    o, h, lo, c, v = (np.asarray(a, dtype=np.float64) for a in arrays)
    n = len(c)
    tf = strategy.timeframe
    times = open_time if open_time is not None else np.arange(n, dtype=np.int64) * timeframe_ms(tf)
    spans = windows_for(n, windows=windows, length=length, seed=seed)
    cls, symbol = type(strategy), strategy.symbol
    named = "+".join(strategy.symbols)  # a multi-symbol strategy: 2-D arrays, a column per symbol
    first = (lambda a, k: float(a[k, 0])) if c.ndim == 2 else (lambda a, k: float(a[k]))

    def fresh() -> tuple[Strategy, list[Intent]]:
        s = strategy._fresh()
        emitted: list[Intent] = []
        s._emit = lambda *intent: emitted.append(intent)
        return s, emitted

    def kline(k: int) -> Any:
        t = int(times[k])
        return new_kline(symbol, tf, t, first(o, k), first(h, k), first(lo, k), first(c, k), first(v, k),
                         t + timeframe_ms(tf) - 1, t + timeframe_ms(tf))

    # 1. the live way first (see the module docstring): history up to each kline only
    live: list[list[tuple[dict[str, float], list[Intent]]]] = []
    for start, end in spans:
        s, emitted = fresh()
        pos: dict[str, float] = {}
        steps = []
        for k in range(start, end):
            s._bind(o[: k + 1], h[: k + 1], lo[: k + 1], c[: k + 1], v[: k + 1], times[: k + 1])
            if k == start:
                s.on_start()
            steps.append(_step(s, k, pos, c, kline, emitted))
            pos = _apply(pos, steps[-1][1], symbol)
        live.append(steps)

    # 2. the backtest way: the whole history, computed once per window
    findings: list[DecisionFinding] = []
    warm = None
    compared = intents = 0
    names: set[str] = set()
    for (start, end), live_steps in zip(spans, live):
        s, emitted = fresh()
        s._bind(o, h, lo, c, v, times)
        warm = s._inferred_warmup() if warm is None else warm
        s.on_start()
        pos = {}
        for k, (live_values, live_intents) in zip(range(start, end), live_steps):
            full_values, full_intents = _step(s, k, pos, c, kline, emitted)
            pos = _apply(pos, full_intents, symbol)
            compared += 1
            intents += len(full_intents)
            names.update(full_values)
            found = _first_difference(full_values, live_values, rtol)
            if found is not None:
                findings.append(DecisionFinding(cls.strategy_name(), named, k, int(times[k]), found,
                                                full_values[found], live_values.get(found)))
                break
            if not _same_intents(full_intents, live_intents, rtol):
                findings.append(DecisionFinding(cls.strategy_name(), named, k, int(times[k]), "",
                                                _shown(full_intents), _shown(live_intents)))
                break
    return findings, DecisionCheck(tuple(spans), compared, len(names), intents)


def _step(s: Strategy, k: int, pos: dict[str, float], c: np.ndarray, kline: Any, emitted: list[Intent]
          ) -> tuple[dict[str, float], list[Intent]]:
    """One kline: the indicator values at k and the intents ``on_kline`` emits there."""
    s._cursor.i = k
    for j, sym in enumerate(s.symbols):
        size = pos.get(sym, 0.0)
        held = Position(size, float(c[k, j] if c.ndim == 2 else c[k])) if size else Position()
        if sym == s.symbol:
            s.position = held
        else:
            s._positions[sym] = held
    emitted.clear()
    values = {series.name: float(engine_array(series)[k]) for series in s._indicators}
    if all(not math.isnan(x) for x in values.values()):  # on_kline runs once every indicator is defined
        s.on_kline(kline(k))
    return values, list(emitted)


def _apply(pos: dict[str, float], intents: list[Intent], primary: str) -> dict[str, float]:
    """Simulated positions per symbol, the same rule for both runs: enough to keep their inputs equal."""
    pos = dict(pos)
    for intent in intents:
        action = intent[0]
        sym = (intent[7] if len(intent) > 7 else None) or primary  # buy(symbol=...) of a multi-symbol strategy
        if action is IntentAction.OPEN_LONG:
            pos[sym] = 1.0
        elif action is IntentAction.OPEN_SHORT:
            pos[sym] = -1.0
        elif action is IntentAction.CLOSE:
            pos[sym] = 0.0
        elif action is IntentAction.REDUCE:
            pos[sym] = pos.get(sym, 0.0) * (1.0 - float(intent[2] or 0.5))
    return pos


def _close(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        return math.isclose(fa, fb, rel_tol=rtol, abs_tol=1e-12)
    return bool(a == b)


def _first_difference(full: dict[str, float], live: dict[str, float], rtol: float) -> str | None:
    for name, value in full.items():
        if name not in live or not _close(value, live[name], rtol):
            return name
    return None


def _same_intents(a: list[Intent], b: list[Intent], rtol: float) -> bool:
    return len(a) == len(b) and all(len(x) == len(y) and all(_close(p, q, rtol) for p, q in zip(x, y))
                                    for x, y in zip(a, b))


def _shown(intents: list[Intent]) -> str:
    if not intents:
        return "nothing"
    return "; ".join(f"{i[0].value}" + (f" stop {i[3]}" if i[3] is not None else "") for i in intents)
