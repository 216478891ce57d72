"""Higher-timeframe indicators in a multi-symbol strategy: computed on each symbol's own longer klines (from
the strategy's aligned history), equal to the same indicator of a one-symbol strategy on that symbol's
klines, shown only once their period has closed (the lookahead check catches a planted forming period),
and the same live as in a backtest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kinetic_empire import Strategy
from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.backtest.lookahead import LookaheadError
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.events import KlineClosed, new_kline
from kinetic_empire.data import KlineFrame
from kinetic_empire.indicators import ema
from kinetic_empire.strategy import higher
from kinetic_empire.strategy.group import GroupRunner, aligned_history
from kinetic_empire.strategy.registry import build_registry
from kinetic_empire.strategy.series import engine_array

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import synthetic_klines

A, B = "FILUSDT", "NEARUSDT"


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a / b


def _same(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


class HtfPair(Strategy):
    """Holds B long while B's 1m close is above B's 5m EMA and A/B on 5m closes is above its 1m mean."""

    multi_symbol = True
    timeframe = "1m"

    def init(self) -> None:
        self.b5 = self.I(ema, self.data[B].close, 5, timeframe="5m")
        self.a_high5 = self.I(_same, self.data[A].high, timeframe="5m")
        self.r5 = self.I(_ratio, self.data[A].close, self.data[B].close, timeframe="5m")
        self.r1 = self.I(ema, self.I(_ratio, self.data[A].close, self.data[B].close), 20)

    def on_kline(self, kline: KlineClosed) -> None:
        if np.isnan(self.b5[-1]) or np.isnan(self.r5[-1]):
            return
        up = self.data[B].close[-1] > self.b5[-1] and self.r5[-1] > self.r1[-1]
        if up and not self.position_of(B):
            self.buy(symbol=B)
        elif not up and self.position_of(B):
            self.close_position(symbol=B)


class One(Strategy):
    """The reference: the same higher-timeframe values of one symbol, from a one-symbol strategy."""

    timeframe = "1m"

    def init(self) -> None:
        self.e5 = self.I(ema, self.close, 5, timeframe="5m")
        self.c5 = self.I(_same, self.close, timeframe="5m")
        self.h5 = self.I(_same, self.high, timeframe="5m")


def _frames(n: int) -> dict[str, KlineFrame]:
    a = synthetic_klines(n, seed=1, symbol=A)
    b = synthetic_klines(n, seed=2, symbol=B, start_price=1.5)
    start = 7 * 60_000  # mid-period on purpose: the first 5m period is incomplete
    return {s: KlineFrame(s, "1m", f.open_time + start, f.open, f.high, f.low, f.close, f.volume)
            for s, f in {A: a, B: b}.items()}


def _without(frame: KlineFrame, rows: list[int]) -> KlineFrame:
    keep = np.ones(len(frame), dtype=bool)
    keep[rows] = False
    return KlineFrame(frame.symbol, frame.timeframe, frame.open_time[keep], frame.open[keep], frame.high[keep],
                      frame.low[keep], frame.close[keep], frame.volume[keep])


def _columns(f: KlineFrame) -> tuple[np.ndarray, ...]:
    return (f.open_time, f.open, f.high, f.low, f.close, f.volume)


def _bound_pair(frames: dict[str, KlineFrame]) -> tuple[HtfPair, np.ndarray]:
    times, arrays = aligned_history({s: _columns(f) for s, f in frames.items()})
    s = HtfPair(A, {}, symbols=(A, B))
    s._bind(*arrays, times)
    return s, times


def _one(frame: KlineFrame, times: np.ndarray) -> One:
    """One symbol's reference strategy on that symbol's klines at the common times only."""
    idx = np.searchsorted(frame.open_time, times)
    s = One(frame.symbol)
    s._bind(*(getattr(frame, f)[idx] for f in ("open", "high", "low", "close", "volume")), times)
    return s


def _arr(x: Any) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else engine_array(x)


def _eq(x: Any, y: Any) -> bool:
    return bool(np.array_equal(_arr(x), _arr(y), equal_nan=True))


@pytest.mark.parametrize("holes", [[], [40, 41, 133]])
def test_each_symbols_higher_timeframe_values_are_that_symbols_own(holes: list[int]) -> None:
    frames = _frames(400)
    frames[B] = _without(frames[B], holes)  # B misses klines: those times leave both symbols' 5m klines
    pair, times = _bound_pair(frames)
    ref_a, ref_b = _one(frames[A], times), _one(frames[B], times)
    assert _eq(pair.b5, ref_b.e5)  # B's 5m EMA, never A's
    assert _eq(pair.a_high5, ref_a.h5)  # high merges as a max of A's highs
    assert _eq(pair.r5, engine_array(ref_a.c5) / engine_array(ref_b.c5))  # both legs of the same 5m period
    b5 = engine_array(pair.b5)
    assert np.isnan(b5[:8]).all() and not np.isnan(b5[-1])  # the first (incomplete) period gives no value
    # a 5m value shows from the 1m kline that closes its period on: the close of 5m period [t, t+5m) is the
    # 1m close at t+4m, shown at that row and not before
    c5 = engine_array(pair.r5)
    row = int(np.flatnonzero((times % 300_000) == 240_000)[5])
    assert c5[row] != c5[row - 1] and c5[row] == pytest.approx(
        frames[A].close[frames[A].open_time == times[row]][0] / frames[B].close[frames[B].open_time == times[row]][0])


def _config(name: str) -> BacktestConfig:
    return BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 100_000, "funding_rate": 0},
        "strategies": [{"name": name, "symbols": [A, B]}],
        "risk": {"default_leverage": 1, "sizing": {"method": "fixed_quantity", "quantity": 10}},
    })


def _registry() -> Any:
    reg = build_registry([], entry_points_too=False)
    reg.add(HtfPair, "test")
    return reg


def test_the_lookahead_check_passes_it_and_catches_a_planted_forming_period(monkeypatch) -> None:
    bt = Backtest(_config("htf_pair"), _registry(), frames=_frames(600), check_lookahead=True)
    result = bt.run()
    assert {t.symbol for t in result.portfolio.trades} == {B}
    assert any("htf_pair on FILUSDT+NEARUSDT: decisions compared" in line for line in bt.lookahead_checked)
    real = higher.HigherTimeframe.__init__

    def leaky(self, base, open_time, base_tf, timeframe):  # type: ignore[no-untyped-def]
        """Planted: the period still forming counts as closed, visible from its first kline."""
        real(self, base, open_time, base_tf, timeframe)
        n = len(open_time)
        starts = np.flatnonzero(np.concatenate(([True], np.diff(open_time // 300_000) != 0)))
        ends = np.append(starts[1:], n)
        self.arrays = {k: np.asarray([base[k][e - 1] if k.endswith("close") else base[k][s]
                                      for s, e in zip(starts, ends)]) for k in base}
        self._kept = np.arange(len(starts))
        self._visible_at = starts

    monkeypatch.setattr(higher.HigherTimeframe, "__init__", leaky)
    with pytest.raises(LookaheadError, match=r"htf_pair on FILUSDT\+NEARUSDT"):
        Backtest(_config("htf_pair"), _registry(), frames=_frames(600), check_lookahead=True).run()


def _k(frame: KlineFrame, i: int) -> KlineClosed:
    t = int(frame.open_time[i])
    return new_kline(frame.symbol, "1m", t, float(frame.open[i]), float(frame.high[i]), float(frame.low[i]),
                     float(frame.close[i]), float(frame.volume[i]), t + 59_999, t + 60_000)


def test_live_values_equal_the_backtests() -> None:
    frames = _frames(3400)  # more live klines than the buffers' headroom: the live window is cut back on the way
    frames[B] = _without(frames[B], [300, 1500, 2900])  # a hole live too: that time is skipped in both
    full, times = _bound_pair(frames)
    s = HtfPair(A, {}, symbols=(A, B))
    runner = GroupRunner(s, EventBus(), ManualClock(0), strategy_id="p", id_prefix="p0", window=60)
    warm = 600  # covers every indicator's need (the runner warns otherwise)
    runner.warm_up_from({(sym, "1m"): [_k(f, i) for i in range(len(f)) if f.open_time[i] < times[warm]]
                         for sym, f in frames.items()})
    got: dict[str, list[float]] = {"b5": [], "a_high5": [], "r5": []}
    every = np.union1d(frames[A].open_time, frames[B].open_time)
    for t in every[every >= times[warm]]:  # A's klines at B's holes too: live skips those times
        for f in frames.values():
            at = np.flatnonzero(f.open_time == t)
            if len(at):
                runner.on_kline(_k(f, int(at[0])))
        if t in times:
            for name in got:
                got[name].append(getattr(s, name)[-1])
    assert runner.skipped == 2  # the holes after the warm-up
    for name, values in got.items():
        expected = engine_array(getattr(full, name))[warm:]
        assert np.allclose(values, expected, rtol=1e-9, atol=0, equal_nan=True), name
    assert not np.isnan(got["b5"]).any() and runner._live is not None and runner._live.n < len(times)  # it was cut
