"""Several symbols in one strategy (issue 13 item 3): aligned series, per-symbol intents and positions, gaps
skipped in a backtest, a late leg skipped live after a bounded wait on the injected clock, config errors,
and the lookahead check on cross-symbol indicators."""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from kinetic_empire import Strategy
from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.backtest.lookahead import LookaheadError
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.errors import ConfigError, DataError, StrategyError
from kinetic_empire.core.events import Alert, KlineClosed, OrderIntent, new_kline
from kinetic_empire.data import KlineFrame
from kinetic_empire.strategy.group import GroupRunner, aligned_history
from kinetic_empire.strategy.registry import build_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import synthetic_klines

A, B = "FILUSDT", "NEARUSDT"


def _spread(a: np.ndarray, b: np.ndarray, period: int) -> np.ndarray:
    out = np.full(len(a), np.nan)
    s = np.log(a) - np.log(b)
    for i in range(period - 1, len(a)):
        out[i] = s[i] - s[i - period + 1 : i + 1].mean()
    return out


class Recorder(Strategy):
    """Records what it sees on each kline; buys A and sells B on the 10th, closes B on the 20th."""

    multi_symbol = True
    timeframe = "1m"
    seen: ClassVar[list[tuple[int, float, float, float, int]]] = []
    positions: ClassVar[list[tuple[float, float]]] = []

    def init(self) -> None:
        self.spread = self.I(_spread, self.data[A].close, self.data[B].close, 5)

    def on_kline(self, kline: KlineClosed) -> None:
        type(self).seen.append((kline.open_time, self.data[A].close[-1], self.data[B].close[-1], self.spread[-1],
                                len(self.data[B].close)))
        type(self).positions.append((self.position_of(A).size, self.position_of(B).size))
        n = len(type(self).seen)
        if n == 10:
            self.buy(symbol=A, tag="leg_a")
            self.sell(symbol=B, tag="leg_b")
        elif n == 20:
            self.close_position(symbol=B)


class WrongSymbol(Strategy):
    timeframe = "1m"

    def on_kline(self, kline: KlineClosed) -> None:
        self.buy(symbol=B)


def _registry(*classes: type[Strategy]) -> Any:
    reg = build_registry([], entry_points_too=False)
    for cls in classes:
        reg.add(cls, "test")
    return reg


def _config(name: str, symbols: list[str], **backtest: Any) -> BacktestConfig:
    return BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 100_000, "funding_rate": 0, **backtest},
        "strategies": [{"name": name, "symbols": symbols}],
        "risk": {"default_leverage": 1, "sizing": {"method": "fixed_quantity", "quantity": 10}},
    })


def _without(frame: KlineFrame, rows: list[int]) -> KlineFrame:
    keep = np.ones(len(frame), dtype=bool)
    keep[rows] = False
    return KlineFrame(frame.symbol, frame.timeframe, frame.open_time[keep], frame.open[keep], frame.high[keep],
                      frame.low[keep], frame.close[keep], frame.volume[keep])


def _frames(n: int = 300) -> dict[str, KlineFrame]:
    return {A: synthetic_klines(n, seed=1, symbol=A), B: synthetic_klines(n, seed=2, symbol=B, start_price=1.5)}


def test_one_instance_sees_every_symbol_aligned_and_trades_each_leg() -> None:
    Recorder.seen, Recorder.positions = [], []
    frames = _frames()
    frames[B] = _without(frames[B], [100, 101])  # NEARUSDT misses two klines: those times are skipped
    result = Backtest(_config("recorder", [A, B]), _registry(Recorder), frames=frames).run()
    (runner,) = result.runners
    assert isinstance(runner, GroupRunner) and runner.symbols == (A, B)
    assert runner.skipped == 2
    times = [t for t, *_ in Recorder.seen]
    a, b = frames[A], frames[B]
    missing = {int(a.open_time[100]), int(a.open_time[101])}
    assert not missing & set(times) and len(times) == len(set(times))
    assert times == sorted(times)
    common = np.intersect1d(a.open_time, b.open_time)
    expected = _spread(a.close[np.searchsorted(a.open_time, common)], b.close[np.searchsorted(b.open_time, common)], 5)
    for t, ca, cb, spread, n in Recorder.seen:  # each symbol's own close of that kline, never a later one
        ia, ib = int(np.searchsorted(a.open_time, t)), int(np.searchsorted(b.open_time, t))
        assert (ca, cb) == (a.close[ia], b.close[ib])
        row = int(np.searchsorted(common, t))
        assert n == row + 1  # one row per common time, up to this one
        assert spread == expected[row] or (np.isnan(spread) and np.isnan(expected[row]))
    # each leg is an ordinary trade of its symbol; positions are per symbol
    assert Recorder.positions[10] == (10.0, -10.0)
    assert Recorder.positions[20] == (10.0, 0.0)
    by_symbol = {t.symbol: t for t in result.portfolio.trades}
    assert by_symbol[B].side.value == "SHORT" and by_symbol[B].quantity == D(10)
    assert by_symbol[B].entry_tag == "leg_b"
    assert result.exchange.position(A)[0] == D(10)  # A still open at the end


def test_aligned_history_keeps_the_common_times_only() -> None:
    ta, tb = np.array([1, 2, 3, 5]), np.array([2, 3, 4, 5])
    cols = {A: (ta, *(ta * 1.0,) * 5), B: (tb, *(tb * 10.0,) * 5)}
    times, arrays = aligned_history(cols)
    assert times.tolist() == [2, 3, 5]
    assert arrays[3].tolist() == [[2.0, 20.0], [3.0, 30.0], [5.0, 50.0]]


def test_a_single_symbol_strategy_cannot_trade_another_symbol() -> None:
    with pytest.raises(StrategyError, match=r"trades FILUSDT only, not NEARUSDT.*multi_symbol = True"):
        Backtest(_config("wrong_symbol", [A]), _registry(WrongSymbol), frames=_frames(50)).run()


def test_bad_multi_symbol_configs_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"strategies\[0\].symbols: FILUSDT is listed twice"):
        _config("recorder", [A, B, A])
    with pytest.raises(DataError, match="no klines given for NEARUSDT"):
        Backtest(_config("recorder", [A, B]), _registry(Recorder), frames={A: _frames(50)[A]}).run()
    apart = _frames(50)
    later = apart[B]
    apart[B] = KlineFrame(B, "1m", later.open_time + 10**9, later.open, later.high, later.low, later.close,
                          later.volume)
    with pytest.raises(DataError, match="no 1m kline time where every one of FILUSDT, NEARUSDT has a kline") as err:
        Backtest(_config("recorder", [A, B]), _registry(Recorder), frames=apart).run()
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"strategies\[0\].timeframe"):
        BacktestConfig.from_mapping({"strategies": [{"name": "recorder", "symbols": [A, B],
                                                     "timeframe": ["1m", "5m"]}]})


# ---------------------------------------------------------------------------------------- live


class Counter(Strategy):
    multi_symbol = True
    timeframe = "1m"
    group_wait_s = 5.0

    def init(self) -> None:
        self.spread = self.I(_spread, self.data[A].close, self.data[B].close, 3)
        self.calls: list[tuple[int, float, float]] = []

    def on_kline(self, kline: KlineClosed) -> None:
        self.calls.append((kline.open_time, self.data[A].close[-1], self.data[B].close[-1]))
        if len(self.calls) == 2:
            self.sell(symbol=B)


def _k(sym: str, i: int, close: float) -> KlineClosed:
    t = i * 60_000
    return new_kline(sym, "1m", t, close, close, close, close, 1.0, t + 59_999, t + 60_000)


def test_live_waits_for_every_leg_and_skips_a_late_one_after_the_bounded_wait() -> None:
    async def body() -> None:
        clock = ManualClock(0)
        bus = EventBus()
        alerts: list[Alert] = []
        intents: list[OrderIntent] = []
        bus.subscribe(Alert, alerts.append)
        bus.subscribe(OrderIntent, intents.append)
        s = Counter(A, {}, symbols=(A, B))
        runner = GroupRunner(s, bus, clock, strategy_id="counter", id_prefix="t0FILUSDT", window=50)
        runner.warm_up_from({(A, "1m"): [_k(A, i, 10 + i) for i in range(10)],
                             (B, "1m"): [_k(B, i, 2 + i) for i in range(10)]})
        assert runner.live_ready
        bus.publish(_k(A, 10, 20.0), (A, "1m"))
        await asyncio.sleep(0)  # the wait starts
        assert s.calls == [] and clock.sleepers == 1  # A alone: the strategy waits for B
        bus.publish(_k(B, 10, 12.0), (B, "1m"))
        assert s.calls == [(600_000, 20.0, 12.0)]
        await asyncio.sleep(0)
        assert clock.sleepers == 0  # complete in time: the wait was cancelled
        bus.publish(_k(A, 11, 21.0), (A, "1m"))  # B's kline of 11 never comes in time
        await asyncio.sleep(0)
        await clock.advance(4.9)
        assert runner.skipped == 0 and len(s.calls) == 1
        await clock.advance(0.2)
        assert runner.skipped == 1 and len(s.calls) == 1
        assert alerts and alerts[-1].kind == "group_kline_missing" and "NEARUSDT" in alerts[-1].message
        bus.publish(_k(B, 11, 13.0), (B, "1m"))  # too late: dropped, never acted on
        assert runner.late == 1 and len(s.calls) == 1
        bus.publish(_k(B, 12, 14.0), (B, "1m"))
        bus.publish(_k(A, 12, 22.0), (A, "1m"))
        assert s.calls[-1] == (720_000, 22.0, 14.0)
        # the history has no row for the skipped time 11: the spread is over times 9, 10 and 12
        assert s.spread[-1] == pytest.approx(_spread(np.array([19.0, 20.0, 22.0]), np.array([11.0, 12.0, 14.0]), 3)[-1])
        (intent,) = intents
        assert intent.symbol == B and intent.reference_price == 14.0 and intent.intent_id.startswith("t0FILUSDT-")
        bus.publish(_k(A, 13, 23.0), (A, "1m"))
        await asyncio.sleep(0)
        assert clock.sleepers == 1
        runner.stop()  # a live run's shutdown: no wait outlives it
        await asyncio.sleep(0)
        assert clock.sleepers == 0

    asyncio.run(body())


# ------------------------------------------------------------------------------------ lookahead


def _next_of_b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Planted cross-symbol leak: B's NEXT close against A's current one."""
    return np.r_[b[1:], np.nan] / a


class LeakyPair(Strategy):
    multi_symbol = True
    timeframe = "1m"

    def init(self) -> None:
        self.ratio = self.I(_next_of_b, self.data[A].close, self.data[B].close)

    def on_kline(self, kline: KlineClosed) -> None:
        if self.ratio[-1] > self.data[B].close[-1] / self.data[A].close[-1]:
            self.buy(symbol=B)
        else:
            self.close_position(symbol=B)


class CleanPair(LeakyPair):
    def init(self) -> None:
        self.ratio = self.I(lambda a, b: b / a, self.data[A].close, self.data[B].close, name="ratio")


def test_lookahead_check_catches_a_cross_symbol_leak_and_passes_a_clean_pair() -> None:
    with pytest.raises(LookaheadError, match=r"leaky_pair on FILUSDT\+NEARUSDT.*_next_of_b"):
        Backtest(_config("leaky_pair", [A, B]), _registry(LeakyPair), frames=_frames(400),
                 check_lookahead=True).run()
    bt = Backtest(_config("clean_pair", [A, B]), _registry(CleanPair), frames=_frames(400), check_lookahead=True)
    bt.run()
    assert any("clean_pair on FILUSDT+NEARUSDT" in line for line in bt.lookahead_checked)


def test_pairs_example_on_the_bundled_real_klines_trades_both_legs_and_passes_the_lookahead_check() -> None:
    from kinetic_empire.data import sample_data_dir

    config = BacktestConfig.from_mapping({
        "backtest": {"data": str(sample_data_dir()), "start": "2023-08-05", "end": "2023-10-01"},
        "strategies": [{"name": "pairs_spread", "symbols": [A, B], "timeframe": "1h"}],
        "risk": {"default_leverage": 2, "sizing": {"method": "percent_equity", "percent": 20}},
    })
    bt = Backtest(config, build_registry(), check_lookahead=True)
    result = bt.run()
    trades = result.portfolio.trades
    assert len(trades) >= 20 and {t.symbol for t in trades} == {A, B}
    # the legs open together, in opposite directions, and close together on reversion
    opened: dict[int, set[tuple[str, str]]] = {}
    for t in trades:
        opened.setdefault(t.entry_time, set()).add((t.symbol, t.side.value))
    assert all(legs in ({(A, "LONG"), (B, "SHORT")}, {(A, "SHORT"), (B, "LONG")}) for legs in opened.values())
    assert any("pairs_spread on FILUSDT+NEARUSDT: decisions compared" in line for line in bt.lookahead_checked)
