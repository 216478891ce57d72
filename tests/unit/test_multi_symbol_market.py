"""A multi-symbol strategy's mark-price and ticker hooks get every listed symbol's events (live and in a
backtest), and each symbol's mark price and funding are readable through ``self.data[symbol]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from kinetic_empire import Strategy
from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.events import KlineClosed, MarkPriceUpdated, OrderIntent, TickerUpdated, new_kline
from kinetic_empire.strategy.group import GroupRunner
from kinetic_empire.strategy.market_hooks import attach_market_hooks
from kinetic_empire.strategy.registry import build_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import synthetic_klines

A, B, C = "FILUSDT", "NEARUSDT", "BTCUSDT"


class Watcher(Strategy):
    """Records each mark / ticker event with what it then reads of both symbols; shorts B when B's funding
    is high."""

    multi_symbol = True
    timeframe = "1m"
    marks: ClassVar[list[tuple[str, float, float, float, int]]] = []
    tickers: ClassVar[list[tuple[str, float]]] = []

    def on_mark_price(self, update: MarkPriceUpdated) -> None:
        d = self.data[update.symbol]
        type(self).marks.append((update.symbol, update.mark_price, d.mark_price, d.funding_rate, d.next_funding_time))
        if self.data[B].funding_rate > 0.001 and not self.position_of(B):
            self.sell(symbol=B, quantity=1)

    def on_ticker(self, ticker: TickerUpdated) -> None:
        type(self).tickers.append((ticker.symbol, ticker.last_price))


def _k(sym: str, i: int, close: float) -> KlineClosed:
    t = i * 60_000
    return new_kline(sym, "1m", t, close, close, close, close, 1.0, t + 59_999, t + 60_000)


def _mark(sym: str, price: float, rate: float, nft: int = 28_800_000) -> MarkPriceUpdated:
    return MarkPriceUpdated(symbol=sym, mark_price=price, index_price=price - 0.01, funding_rate=rate,
                            next_funding_time=nft, ts_event=1, ts_init=1)


def test_live_hooks_get_every_symbols_events_and_funding_per_symbol() -> None:
    Watcher.marks, Watcher.tickers = [], []
    bus = EventBus()
    intents: list[OrderIntent] = []
    bus.subscribe(OrderIntent, intents.append)
    s = Watcher(A, {}, symbols=(A, B))
    runner = GroupRunner(s, bus, ManualClock(0), strategy_id="w", id_prefix="w0", window=50)
    runner.warm_up_from({(A, "1m"): [_k(A, i, 10 + i) for i in range(5)],
                         (B, "1m"): [_k(B, i, 2 + i) for i in range(5)]})
    hooks, wanted = attach_market_hooks([runner], bus, live=True)
    assert wanted.mark_price == {A, B} and wanted.ticker == {A, B}  # the live app streams both
    runner.start()
    bus.publish(_mark(A, 14.5, 0.0001), A)
    bus.publish(_mark(B, 6.5, 0.0002, 57_600_000), B)
    bus.publish(_mark(C, 1.0, 0.01), C)  # not one of its symbols: never delivered
    assert Watcher.marks == [(A, 14.5, 14.5, 0.0001, 28_800_000), (B, 6.5, 6.5, 0.0002, 57_600_000)]
    assert (s.data[A].mark_price, s.data[A].funding_rate, s.data[B].index_price) == (14.5, 0.0001, 6.49)
    assert (s.mark_price, s.funding_rate, s.next_funding_time) == (14.5, 0.0001, 28_800_000)  # the first symbol's
    assert not intents
    bus.publish(_mark(B, 6.6, 0.002), B)
    (intent,) = intents
    assert intent.symbol == B and s.funding_rate == 0.0001  # B's funding moved, not A's
    bus.publish(TickerUpdated(symbol=B, last_price=6.7, open_price=6.0, high_price=7.0, low_price=5.9, volume=1.0,
                              quote_volume=6.0, price_change_percent=11.0, ts_event=2, ts_init=2), B)
    assert Watcher.tickers == [(B, 6.7)] and hooks[0].delivered == 4


def test_mark_state_survives_a_rebind_and_is_kept_before_the_warm_up() -> None:
    bus = EventBus()
    s = Watcher(A, {}, symbols=(A, B))
    runner = GroupRunner(s, bus, ManualClock(0), strategy_id="w", id_prefix="w0", window=50)
    attach_market_hooks([runner], bus, live=True)
    Watcher.marks = []
    bus.publish(_mark(B, 6.5, 0.0003), B)  # before any kline: kept, no hook call
    assert Watcher.marks == []
    runner.warm_up_from({(A, "1m"): [_k(A, i, 10 + i) for i in range(5)],
                         (B, "1m"): [_k(B, i, 2 + i) for i in range(5)]})
    assert s.data[B].funding_rate == 0.0003 and np.isnan(s.data[A].funding_rate)


def _config(name: str = "watcher", **strategy: Any) -> BacktestConfig:
    return BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 100_000, "funding_rate": 0.0001},
        "strategies": [{"name": name, "symbols": [A, B], **strategy}],
        "risk": {"default_leverage": 1, "sizing": {"method": "fixed_quantity", "quantity": 10}},
    })


def test_backtest_replays_each_symbols_marks_and_tickers_to_a_multi_symbol_strategy() -> None:
    Watcher.marks, Watcher.tickers = [], []
    n = 120
    frames = {A: synthetic_klines(n, seed=1, symbol=A), B: synthetic_klines(n, seed=2, symbol=B, start_price=1.5)}
    reg = build_registry([], entry_points_too=False)
    reg.add(Watcher, "test")
    result = Backtest(_config(), reg, frames=frames).run()
    by_symbol: dict[str, list[float]] = {A: [], B: []}
    for sym, event_mark, read_mark, rate, nft in Watcher.marks:
        assert event_mark == read_mark and rate == pytest.approx(0.0001) and nft % 28_800_000 == 0
        by_symbol[sym].append(event_mark)
    # one per execution kline of each once the strategy has seen its first kline: A's kline of the first time
    # (and so its mark) comes before that time's group is complete, B's after
    assert (len(by_symbol[A]), len(by_symbol[B])) == (n - 1, n)
    for sym in (A, B):  # no mark klines in the store: each symbol's mark is its own last price, kline by kline
        closes = frames[sym].close.tolist()
        assert by_symbol[sym] == closes[len(closes) - len(by_symbol[sym]):]
    assert {sym for sym, _ in Watcher.tickers} == {A, B}
    assert result.runners[0].strategy.data[B].mark_price == frames[B].close[-1]


# ------------------------------------------------------------------------------ skipped times in the summary


class Quiet(Strategy):
    multi_symbol = True
    timeframe = "1m"


def test_skipped_group_times_are_in_the_summary_metrics_and_report_warnings() -> None:
    from kinetic_empire.backtest.results import metrics_of, report_warnings, summary_text
    from kinetic_empire.data import KlineFrame

    frames = {A: synthetic_klines(80, seed=1, symbol=A), B: synthetic_klines(80, seed=2, symbol=B, start_price=1.5)}
    reg = build_registry([], entry_points_too=False)
    reg.add(Quiet, "test")
    whole = Backtest(_config(name="quiet"), reg, frames=frames).run()
    assert "skipped" not in summary_text(whole) and "group_times_skipped" not in metrics_of(whole)
    b = frames[B]
    keep = np.ones(len(b), dtype=bool)
    keep[[30, 31, 50]] = False
    frames[B] = KlineFrame(B, "1m", b.open_time[keep], b.open[keep], b.high[keep], b.low[keep], b.close[keep],
                           b.volume[keep])
    holed = Backtest(_config(name="quiet"), reg, frames=frames).run()
    line = ("Kline times skipped by multi-symbol strategies, some symbol had no kline: 3 "
            "(quiet on FILUSDT+NEARUSDT 3)")
    assert line in summary_text(holed).splitlines() and line in report_warnings(holed)
    assert metrics_of(holed)["group_times_skipped"] == 3


# ------------------------------------------------------------------------------ group_wait_s from the config


def test_group_wait_s_from_the_config_entry_overrides_the_class_attribute() -> None:
    reg = build_registry([], entry_points_too=False)
    reg.add(Quiet, "test")
    frames = {A: synthetic_klines(40, seed=1, symbol=A), B: synthetic_klines(40, seed=2, symbol=B, start_price=1.5)}
    default = Backtest(_config(name="quiet"), reg, frames=frames)
    default.run()
    config = _config(name="quiet", group_wait_s=2.5)
    assert config.to_dict()["strategies"][0]["group_wait_s"] == 2.5  # kept in the results' config.json
    from kinetic_empire.config import strategy_list

    assert strategy_list(config.to_dict()["strategies"], "strategies")[0].group_wait_s == 2.5  # and read back
    (runner,) = Backtest(config, reg, frames=frames).run().runners
    assert isinstance(runner, GroupRunner) and runner.wait_s == 2.5
    (runner,) = default.run().runners
    assert isinstance(runner, GroupRunner) and runner.wait_s == Quiet.group_wait_s == 10.0


@pytest.mark.parametrize(("value", "message"), [
    (-1, r"strategies\[0\]\.group_wait_s: must be >= 0, got -1"),
    ("5s", r"strategies\[0\]\.group_wait_s: expected a number, got"),
    (float("inf"), r"strategies\[0\]\.group_wait_s: expected a finite number"),
    (True, r"strategies\[0\]\.group_wait_s: expected a number"),
])
def test_a_bad_group_wait_s_is_a_one_line_error_naming_the_key(value: Any, message: str) -> None:
    from kinetic_empire.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as err:
        _config(name="quiet", group_wait_s=value)
    assert "\n" not in str(err.value)


def test_group_wait_s_on_a_single_symbol_strategy_is_an_error() -> None:
    from kinetic_empire.core.errors import ConfigError

    class Single(Strategy):
        timeframe = "1m"

    reg = build_registry([], entry_points_too=False)
    reg.add(Single, "test")
    frames = {A: synthetic_klines(40, seed=1, symbol=A), B: synthetic_klines(40, seed=2, symbol=B, start_price=1.5)}
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.group_wait_s: strategy 'single' is not multi_symbol"):
        Backtest(_config(name="single", group_wait_s=3), reg, frames=frames).run()


# ------------------------------------------------------------------------------ live: skipped and late, in the report


def test_live_skips_and_late_legs_are_journaled_alerts_the_live_report_counts(tmp_path: Path) -> None:
    from kinetic_empire.core.events import Alert
    from kinetic_empire.live.journal import Journal
    from kinetic_empire.live.report import Replayed, summary

    bus = EventBus()
    alerts: list[Alert] = []
    bus.subscribe(Alert, alerts.append)
    journal = Journal(tmp_path / "journal.sqlite")
    journal.attach(bus)
    s = Quiet(A, {}, symbols=(A, B))
    runner = GroupRunner(s, bus, ManualClock(0), strategy_id="quiet", id_prefix="q0", window=50)
    runner.warm_up_from({(A, "1m"): [_k(A, i, 10 + i) for i in range(5)],
                         (B, "1m"): [_k(B, i, 2 + i) for i in range(5)]})
    bus.publish(_k(A, 5, 15.0), (A, "1m"))
    bus.publish(_k(A, 6, 16.0), (A, "1m"))
    bus.publish(_k(B, 6, 8.0), (B, "1m"))  # time 6 complete first: time 5 can no longer complete, skipped
    bus.publish(_k(B, 5, 7.0), (B, "1m"))  # B's kline of 5 after that: late, dropped
    bus.publish(_k(B, 4, 6.0), (B, "1m"))  # an old one again: late too
    assert (runner.skipped, runner.late) == (1, 2)
    assert [a.kind for a in alerts] == ["group_kline_missing", "group_kline_late", "group_kline_late"]
    assert alerts[-1].symbol == B and "dropped (2 so far)" in alerts[-1].message
    journal.close()
    run = Replayed(tmp_path)
    line = "Kline times skipped by multi-symbol strategies, some symbol's kline not in time: 1; late klines dropped: 2"
    assert run.group_line() == line and line in summary(tmp_path)
    ts, closes = run.timeline()
    metrics = run.metrics(ts, run.portfolio.equity_curve(ts, closes))
    assert (metrics["group_times_skipped"], metrics["group_klines_late"]) == (1, 2)
