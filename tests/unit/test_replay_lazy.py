"""The replay's loop that builds no kline per event (issue 17, target 3) gives exactly what plain delivery gives.

When no handler of a stream needs the kline on every event (the strategy's ``on_kline`` never reads its
argument, the exchange's step reads the scalars), the feed builds a kline only where one is used and keeps the
portfolio's latest-kline slot up to date only where anything can read it (``backtest.feed._LAZY``). These
tests run the same backtests through that loop and through ``bus.publish`` (which builds every kline and calls
every handler) and compare what every reader saw, and check the analysis that lets the loop pass None.
"""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.backtest import feed as feed_module
from kinetic_empire.backtest.feed import ReplayFeed, Stream
from kinetic_empire.core.bus import EventBus, ignores_argument
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.errors import StrategyError
from kinetic_empire.core.events import KlineClosed, OrderIntent
from kinetic_empire.exchange.matching import Matching
from kinetic_empire.portfolio.portfolio import Portfolio
from kinetic_empire.portfolio.prices import LatestClose
from kinetic_empire.strategy.base import Strategy
from kinetic_empire.strategy.registry import build_registry
from kinetic_empire.strategy.runner import StrategyRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import synthetic_klines

_LAST_PRICE = Portfolio.last_price
_PROCESS = Matching._process
_ON_FILLED = Portfolio._on_filled


class Scheduled(Strategy):
    """Trades on a fixed schedule with a stop and a target resting, never reading the kline it is given."""

    timeframe = "1m"
    warmup = 3

    def init(self) -> None:
        pass

    def on_kline(self, kline):
        n = len(self.close)
        price = self.close[-1]
        if n % 13 == 0:
            self.buy(stop_loss=price * 0.995, take_profit=price * 1.004)
        elif n % 13 == 7:
            self.close_position()
        elif n % 29 == 0:
            self.sell(stop_loss=price * 1.004, take_profit=price * 0.997)


class ScheduledReading(Scheduled):
    """The same, reading its kline (so the loop must build one per event)."""

    def on_kline(self, kline):
        assert kline.close == self.close[-1]
        super().on_kline(kline)


def _both_ways(monkeypatch: pytest.MonkeyPatch, run: Any) -> tuple[Any, Any]:
    """``run()`` through the compiled loops, then with every kline delivered by ``bus.publish``."""
    fused = run()
    with monkeypatch.context() as m:
        m.setattr(EventBus, "stops_on_error", property(lambda self: False))
        published = run()
    return fused, published


def _reads(monkeypatch: pytest.MonkeyPatch, strategy: type[Strategy]) -> tuple[list[Any], Any, list[str]]:
    """A backtest of ``strategy``: every answer of the portfolio's latest price with the whole latest kline it
    held then, the result, and the compiled loops' sources."""
    reads: list[Any] = []
    original = _LAST_PRICE

    processing: list[int | None] = [None]  # the open time of the kline the exchange is processing

    def last_price(self: Portfolio, symbol: str) -> float:
        store = self._closes.get(symbol)
        reads.append((symbol, store.close if store is not None else None, processing[0]))
        return original(self, symbol)

    def process(self: Matching, book: Any, open_time: int, *args: Any) -> None:
        processing[0] = open_time
        try:
            _PROCESS(self, book, open_time, *args)
        finally:
            processing[0] = None

    def on_filled(self: Portfolio, event: Any) -> None:  # a reader inside the exchange's processing
        last_price(self, event.symbol)
        _ON_FILLED(self, event)

    monkeypatch.setattr(Portfolio, "last_price", last_price)
    monkeypatch.setattr(Portfolio, "_on_filled", on_filled)
    monkeypatch.setattr(Matching, "_process", process)
    registry = build_registry()
    registry.add(strategy, "test")
    frames = {"FILUSDT": _frame()}
    config = BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 10_000, "fees": {"maker": 0.0002, "taker": 0.0004},
                     "funding_rate": 0.0001},
        "strategies": [{"name": strategy.strategy_name(), "symbols": ["FILUSDT"], "timeframe": "1m"}],
        "risk": {"default_leverage": 3, "sizing": {"method": "fixed_notional", "notional": 3_000}},
    })  # fmt: skip
    feed_module._compiled.clear()
    result = Backtest(config, registry, frames=frames, act_mask="off").run()
    sources = [source for source in feed_module._compiled]
    return reads, result, sources


def _frame() -> Any:
    return synthetic_klines(3_000, 11, "FILUSDT", start_price=5.0, tick=0.001)


def _summary(result: Any) -> tuple[Any, ...]:
    return (result.portfolio.trades, result.equity.tolist(), result.exchange.wallet,
            [(r.intents_emitted, r.entries_ignored, r.position_in_history) for r in result.runners],
            result.portfolio.last_price("FILUSDT"), result.klines_processed)  # fmt: skip


@pytest.mark.parametrize("strategy", [Scheduled, ScheduledReading])
def test_every_read_of_the_latest_kline_is_what_plain_delivery_gives(monkeypatch: pytest.MonkeyPatch,
                                                                     strategy: type[Strategy]) -> None:
    """Reads during fills (the exchange's processing: the slot holds the kline before) and during intents (the
    runner's flush: the slot holds the current kline) see the same kline either way, and the results agree."""
    (reads, result, sources), (plain_reads, plain, _) = _both_ways(monkeypatch, lambda: _reads(monkeypatch, strategy))
    lazy = strategy is Scheduled
    assert any("held" in s for s in sources) == lazy, "the lazy loop is used exactly when nothing reads the kline"
    assert all(k is not None for _s, k, _p in reads[1:])
    assert sum(p is not None for _s, _k, p in reads) > 50 and sum(p is None for _s, _k, p in reads) > 50  # fills
    assert reads == plain_reads  # and intents
    frame = _frame()
    close_before = dict(zip((frame.open_time + 60_000).tolist(), frame.close.tolist()))
    # while the exchange processes a kline, the portfolio still holds the close of the kline before it
    assert all(k == close_before[p] for _s, k, p in reads if p is not None and p in close_before)
    assert _summary(result) == _summary(plain)
    assert {"stop_loss", "take_profit", "signal"} <= {t.exit_reason for t in result.portfolio.trades}


def _probe_log(fused: bool, fail_fast: bool, fail_at: int) -> tuple[list[Any], StrategyError | None]:
    """A runner whose strategy never reads its kline and a one-slot latest-kline store, replayed; what each
    intent saw in the store, the store at the end, and the error with its kline."""
    calls: list[int] = []

    class Probe(Strategy):
        timeframe = "1m"
        warmup = 4

        def init(self) -> None:
            pass

        def on_kline(self, kline):
            calls.append(self._cursor.i)
            if len(calls) == fail_at:
                raise ValueError("boom")
            if len(calls) % 3 == 0:
                self.buy(quantity=1.0)

    frame = synthetic_klines(30_000, 3)  # two chunks of the feed
    bus = EventBus() if fused else EventBus(on_error=lambda e: (_ for _ in ()).throw(e))
    clock = ReplayClock()
    runner = StrategyRunner(Probe("FILUSDT"), bus, clock, strategy_id="probe", id_prefix="p", fail_fast=fail_fast)
    runner.bind_history(frame.open_time, frame.open, frame.high, frame.low, frame.close, frame.volume, start_index=5)
    latest: deque[KlineClosed] = deque(maxlen=1)
    bus.subscribe(KlineClosed, latest.append, topic=("FILUSDT", "1m"))
    seen: list[Any] = []
    bus.subscribe(OrderIntent, lambda e: seen.append((e.intent_id, clock.now_ms(), latest[-1])))
    progress: list[Any] = []
    error = None
    try:
        ReplayFeed(bus, clock, [Stream(frame, 5)]).run(lambda done: progress.append((done, latest[-1])))
    except StrategyError as exc:
        error = exc
    return [calls, seen, progress, list(latest), runner.halted, runner.position_in_history], error


@pytest.mark.parametrize("fail_fast", [True, False])
@pytest.mark.parametrize("fail_at", [700, 25_000])
def test_a_failure_and_the_latest_kline_are_the_same_without_a_kline_per_event(fail_fast: bool, fail_at: int) -> None:
    """The kline a strategy error carries, the store's kline at every intent, at each progress call and at the
    end: the same through the lazy loop as through plain delivery, in both chunks, halting or stopping."""
    feed_module._compiled.clear()
    fused, fused_error = _probe_log(True, fail_fast, fail_at)
    assert any("held" in s for s in feed_module._compiled), "the lazy loop ran"
    called, called_error = _probe_log(False, fail_fast, fail_at)
    assert fused == called
    calls, seen, progress, _latest, halted, _position = fused
    # the store subscribed after the runner: at each intent it still holds the kline before the current one
    assert len(seen) > 100 and all(k.ts_event == t - 60_000 for _id, t, k in seen)
    if fail_fast:
        assert fused_error is not None and called_error is not None
        assert fused_error.event == called_error.event and fused_error.event.volume == called_error.event.volume
        assert fused_error.event.open_time == synthetic_klines(30_000, 3).open_time[calls[-1]]
    else:
        assert fused_error is None and halted and len(progress) == 2


def _plain(self, kline):
    return self.x


def _reads_it(self, kline):
    return kline.close


def _rebinds(self, kline):
    kline = 1
    return kline


def _closes_over(self, kline):
    return lambda: kline


def _frame_locals(self, kline):
    return locals()


def _passes_on(self, kline):
    return super().on_kline(kline)  # type: ignore[misc]


def _deletes(self, kline):
    del kline


def _star(self, *args):
    return None


def _keyword(self, kline, *, extra=1):
    return extra


def _getframe(self, kline):
    import sys

    return sys._getframe().f_locals


@pytest.mark.parametrize("func,ignored", [
    (_plain, True), (_reads_it, False), (_rebinds, False), (_closes_over, False), (_frame_locals, False),
    (_passes_on, False), (_deletes, False), (_star, False), (_keyword, False), (_getframe, False),
])  # fmt: skip
def test_only_a_method_that_provably_never_reads_its_argument_gets_none(func: Any, ignored: bool) -> None:
    class Holder:
        x = 1

    method = func.__get__(Holder())
    assert ignores_argument(method) is ignored
    assert ignores_argument(func) is False  # not a bound method
    assert ignores_argument(print) is False


def _close_store_log(fused: bool, before_runner: bool, fail_at: int) -> tuple[list[Any], Any]:
    """A runner that buys every third kline and a :class:`LatestClose` store subscribed before or after it: the
    store's close at every intent, at each progress call and at the end, and the error's kline."""

    class Probe(Strategy):
        timeframe = "1m"
        warmup = 4

        def init(self) -> None:
            self.calls = 0

        def on_kline(self, kline):
            self.calls += 1
            if self.calls == fail_at:
                raise ValueError("boom")
            if self.calls % 3 == 0:
                self.buy(quantity=1.0)

    frame = synthetic_klines(30_000, 5)  # two chunks of the feed
    bus = EventBus() if fused else EventBus(on_error=lambda e: (_ for _ in ()).throw(e))
    clock = ReplayClock()
    store = LatestClose()
    if before_runner:
        bus.subscribe(KlineClosed, store.on_kline, topic=("FILUSDT", "1m"))
    runner = StrategyRunner(Probe("FILUSDT"), bus, clock, strategy_id="probe", id_prefix="p")
    runner.bind_history(frame.open_time, frame.open, frame.high, frame.low, frame.close, frame.volume, start_index=5)
    if not before_runner:
        bus.subscribe(KlineClosed, store.on_kline, topic=("FILUSDT", "1m"))
    seen: list[Any] = []
    bus.subscribe(OrderIntent, lambda e: seen.append((clock.now_ms(), store.close)))
    progress: list[Any] = []
    error = None
    try:
        ReplayFeed(bus, clock, [Stream(frame, 5)]).run(lambda done: progress.append((done, store.close)))
    except StrategyError as exc:
        error = exc.event
    return [seen, progress, store.close], error


@pytest.mark.parametrize("before_runner", [True, False])
@pytest.mark.parametrize("fail_at", [0, 20_000])
def test_a_latest_close_store_is_settled_only_where_it_is_read(before_runner: bool, fail_at: int) -> None:
    """The portfolio's latest close (``InlineStep.latest_only``) is stored by the lazy loop only before a call out
    and at the end, from the columns: every intent, progress call and the end see what plain delivery gives, the
    current kline's close when the store comes before the runner, the one before when after."""
    feed_module._compiled.clear()
    fused, fused_error = _close_store_log(True, before_runner, fail_at)
    sources = list(feed_module._compiled)
    assert any("row_i" in s for s in sources), "the store was settled from the columns"
    assert not any("store.close = close" in s for s in sources), "the store ran on every kline"
    called, called_error = _close_store_log(False, before_runner, fail_at)
    assert fused == called
    assert (fused_error is None) == (called_error is None) == (fail_at == 0)
    frame = synthetic_klines(30_000, 5)
    close_of = dict(zip((frame.open_time + 59_999).tolist(), frame.close.tolist()))  # by close time
    seen = fused[0]
    assert len(seen) > 1_000
    shift = 0 if before_runner else 60_000
    assert all(close == close_of[t - shift] for t, close in seen if t - shift in close_of)
    assert fused[2] == (close_of[max(close_of)] if fail_at == 0 else fused[2])
