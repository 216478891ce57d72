"""Mark-price and ticker stream payloads into events; strategy hooks fed only when defined; self.state kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.binance.market_events import mark_price_from_stream, market_streams, ticker_from_stream
from kinetic_empire.binance.wire import WireError
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.errors import StrategyError
from kinetic_empire.core.events import (
    KlineClosed,
    MarkPriceUpdated,
    OrderIntent,
    StrategyHalted,
    StrategyStateSaved,
    TickerUpdated,
)
from kinetic_empire.live.journal import Journal, read_events
from kinetic_empire.strategy import Strategy
from kinetic_empire.strategy.market_hooks import attach_market_hooks
from kinetic_empire.strategy.runner import StrategyRunner
from kinetic_empire.strategy.state import StateKeeper, latest_states

WS = Path(__file__).resolve().parents[1] / "data" / "api" / "ws"


def test_binance_payloads_become_typed_events():
    mark = mark_price_from_stream(json.loads((WS / "markPriceUpdate.nautilus_crate.json").read_text()), 7)
    assert mark == MarkPriceUpdated(symbol="BTCUSDT", mark_price=11794.15, index_price=11784.62659091,
                                    funding_rate=0.00038167, next_funding_time=1562306400000,
                                    ts_event=1562305380000, ts_init=7)
    t = ticker_from_stream(json.loads((WS / "24hrTicker.nautilus_crate.json").read_text()), 7)
    assert (t.symbol, t.last_price, t.open_price, t.high_price, t.low_price) == (
        "BTCUSDT", 16584.6, 16716.0, 16764.89, 16456.51)
    assert (t.volume, t.quote_volume, t.price_change_percent, t.ts_event) == (
        122474.816, 2036102085.697464, -0.786, 1672515782136)
    assert market_streams(["BTCUSDT", "FILUSDT"], ["FILUSDT"]) == [
        "btcusdt@markPrice@1s", "filusdt@markPrice@1s", "filusdt@ticker"]


@pytest.mark.parametrize("payload", [{"e": "markPriceUpdate", "s": "X"}, {"e": "markPriceUpdate", "E": 1, "s": "X",
                                                                            "p": "abc", "r": "0", "T": 1}])
def test_a_malformed_mark_payload_is_a_wire_error_naming_it(payload: dict[str, Any]):
    with pytest.raises(WireError, match="malformed markPriceUpdate"):
        mark_price_from_stream(payload, 0)


# ------------------------------------------------------------------------------------ hooks


class Hedger(Strategy):
    timeframe = "1m"

    def on_start(self) -> None:
        self.state.setdefault("marks", 0)

    def on_mark_price(self, update: MarkPriceUpdated) -> None:
        self.state["marks"] += 1
        if self.funding_rate > 0.0005 and not self.position:
            self.sell(quantity=1)

    def on_ticker(self, ticker: TickerUpdated) -> None:
        self.state["last"] = ticker.last_price


class Plain(Strategy):
    timeframe = "1m"


def mark(rate: float, ts: int = 1) -> MarkPriceUpdated:
    return MarkPriceUpdated(symbol="FILUSDT", mark_price=4.0, index_price=3.99, funding_rate=rate,
                            next_funding_time=28_800_000, ts_event=ts, ts_init=ts)


def kline(t: int) -> KlineClosed:
    return KlineClosed(symbol="FILUSDT", timeframe="1m", open_time=t, open=4.0, high=4.0, low=4.0, close=4.0,
                       volume=1.0, ts_event=t + 59_999, ts_init=t + 59_999)


def live_runner(strategy: Strategy, bus: EventBus, *, fail_fast: bool = False) -> StrategyRunner:
    runner = StrategyRunner(strategy, bus, ManualClock(), strategy_id="h", id_prefix="h0", fail_fast=fail_fast,
                            window=50)
    runner.warm_up_live([kline(i * 60_000) for i in range(3)])
    return runner


def test_hooks_feed_funding_fields_and_send_the_intents_they_emit():
    bus = EventBus()
    intents: list[OrderIntent] = []
    bus.subscribe(OrderIntent, intents.append)
    runner = live_runner(Hedger("FILUSDT"), bus)
    hooks, wanted = attach_market_hooks([runner], bus, live=True)
    assert wanted.mark_price == {"FILUSDT"} and wanted.ticker == {"FILUSDT"}
    runner.start()
    bus.publish(mark(0.0001), "FILUSDT")
    s = runner.strategy
    assert (s.mark_price, s.index_price, s.funding_rate, s.next_funding_time) == (4.0, 3.99, 0.0001, 28_800_000)
    assert not intents
    bus.publish(mark(0.001), "FILUSDT")
    assert [i.quantity for i in intents] == [1] and s.state["marks"] == 2
    bus.publish(mark(0.001), "BTCUSDT")  # another symbol's topic: not this strategy's
    assert s.state["marks"] == 2
    bus.publish(TickerUpdated(symbol="FILUSDT", last_price=4.2, open_price=4.0, high_price=4.3, low_price=3.9,
                              volume=1.0, quote_volume=4.0, price_change_percent=5.0, ts_event=2, ts_init=2), "FILUSDT")
    assert s.state["last"] == 4.2 and hooks[0].delivered == 3


def test_no_hook_before_the_window_covers_the_warm_up():
    class Slow(Hedger):
        warmup = 10

    bus = EventBus()
    runner = live_runner(Slow("FILUSDT"), bus)  # 3 klines of 10
    attach_market_hooks([runner], bus, live=True)
    runner.start()
    bus.publish(mark(0.0001), "FILUSDT")
    assert runner.strategy.state["marks"] == 0 and runner.strategy.funding_rate == 0.0001  # fields are kept current


def test_a_strategy_without_hooks_subscribes_to_nothing():
    bus = EventBus()
    runner = live_runner(Plain("FILUSDT"), bus)
    hooks, wanted = attach_market_hooks([runner], bus, live=True)
    assert hooks == [] and not wanted
    assert bus.handlers(MarkPriceUpdated, "FILUSDT") == () and bus.handlers(TickerUpdated, "FILUSDT") == ()


# ------------------------------------------------------------------------------------ state


class Counter(Strategy):
    timeframe = "1m"
    bad = False

    def on_kline(self, kline: KlineClosed) -> None:
        self.state["n"] = self.state.get("n", 0) + (kline.open_time % 120_000 == 0)  # changes every other kline
        if self.bad:
            self.state["when"] = {kline.open_time}


def test_state_is_published_only_when_a_handler_changed_it_and_journaled_at_once(tmp_path: Path):
    bus = EventBus()
    saved: list[StrategyStateSaved] = []
    bus.subscribe(StrategyStateSaved, saved.append)
    journal = Journal(tmp_path / "journal.sqlite")
    journal.attach(bus)
    runner = live_runner(Counter("FILUSDT"), bus)
    keeper = StateKeeper(runner, bus, ManualClock())
    keeper.start()
    for i in range(3, 9):
        bus.publish(kline(i * 60_000), ("FILUSDT", "1m"))
    assert [e.state["n"] for e in saved] == [0, 1, 2, 3]  # klines 3..8: n goes 0,1,1,2,2,3: four changes
    saved[0].state["n"] = 99  # the event holds its own copy
    assert runner.strategy.state["n"] == 3
    # committed when published, before any flush: a crash now keeps it
    states = latest_states(read_events(tmp_path / "journal.sqlite", ("StrategyStateSaved",)))
    assert states == {("h", "FILUSDT"): {"n": 3}}
    journal.close()


def test_restored_state_is_not_saved_again_and_counts_on():
    bus = EventBus()
    saved: list[StrategyStateSaved] = []
    bus.subscribe(StrategyStateSaved, saved.append)
    runner = live_runner(Counter("FILUSDT"), bus)
    keeper = StateKeeper(runner, bus, ManualClock())
    keeper.restore({"n": 41})
    keeper.start()
    assert saved == []
    bus.publish(kline(4 * 60_000), ("FILUSDT", "1m"))
    assert saved[-1].state == {"n": 42}


def test_state_json_cannot_hold_halts_the_strategy_naming_it():
    bus = EventBus()
    halted: list[StrategyHalted] = []
    bus.subscribe(StrategyHalted, halted.append)
    strategy = Counter("FILUSDT")
    strategy.bad = True
    runner = live_runner(strategy, bus)
    StateKeeper(runner, bus, ManualClock()).start()
    bus.publish(kline(4 * 60_000), ("FILUSDT", "1m"))
    (event,) = halted
    assert "strategy h on FILUSDT: self.state is not JSON-serialisable" in event.error
    assert "set is not JSON serializable" in event.error and runner.halted


def test_bad_state_in_a_fail_fast_run_raises_naming_the_strategy():
    bus = EventBus()
    strategy = Counter("FILUSDT")
    strategy.bad = True
    runner = live_runner(strategy, bus, fail_fast=True)
    StateKeeper(runner, bus, ManualClock())
    with pytest.raises(StrategyError, match=r"strategy h on FILUSDT: self\.state is not JSON-serialisable"):
        bus.publish(kline(4 * 60_000), ("FILUSDT", "1m"))
