"""The replay feed's compiled loops with handlers inlined give exactly what calling each handler gives.

The feed runs the strategy runner's and the simulated exchange's per-kline steps as source inlined into
its loop (``core.bus.InlineStep``, issue 17 target 3), and several streams through one compiled loop
(target 4). Each test runs the same thing twice: through that loop, and through ``bus.publish`` (the
plain delivery, which calls every handler), and compares everything observable.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.backtest import feed as feed_module
from kinetic_empire.backtest.feed import ReplayFeed, Stream
from kinetic_empire.core.bus import EventBus, source_digest
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.errors import StrategyError
from kinetic_empire.core.events import KlineClosed, OrderIntent
from kinetic_empire.data import KlineFrame
from kinetic_empire.exchange import matching as matching_module
from kinetic_empire.exchange.matching import Matching
from kinetic_empire.resources import default_symbol_rules
from kinetic_empire.strategy import runner as runner_module
from kinetic_empire.strategy.base import Strategy
from kinetic_empire.strategy.registry import build_registry
from kinetic_empire.strategy.runner import StrategyRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import synthetic_klines


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _both_ways(monkeypatch: pytest.MonkeyPatch, run: Any) -> tuple[Any, Any]:
    """``run()`` through the compiled loops, then with every kline delivered by ``bus.publish``."""
    fused = run()
    with monkeypatch.context() as m:
        m.setattr(EventBus, "stops_on_error", property(lambda self: False))
        published = run()
    return fused, published


def _frames(symbols: list[str], n: int, wicks: int | None = None) -> dict[str, KlineFrame]:
    """Synthetic klines; with ``wicks``, the first symbol's low falls 40% every ``wicks`` klines (liquidations)."""
    rules = default_symbol_rules(full=True)
    frames = {}
    for i, s in enumerate(symbols):
        f = synthetic_klines(n, 7 + i, s, start_price=5.0, tick=float(rules[s].tick_size))
        if wicks is not None and i == 0:
            low = f.low.copy()
            low[wicks::wicks] = np.round(low[wicks::wicks] * 0.6, 3)
            f = KlineFrame(s, "1m", f.open_time, f.open, f.high, low, f.close, f.volume, source="wicks")
        frames[s] = f
    return frames


def _summary(result: Any) -> tuple[Any, ...]:
    return (result.portfolio.trades, result.equity.tolist(), result.exchange.wallet,
            [(r.strategy_id, r.symbol, r.intents_emitted, r.entries_ignored, r.position_in_history)
             for r in result.runners], result.klines_processed)  # fmt: skip


@pytest.mark.parametrize("strategies,leverage,wicks,exits,params", [
    # stops and take-profits resting (the exchange's step calls its processing), funding times, three symbols
    ([{"name": "rsi_reversion", "symbols": ["FILUSDT", "NEARUSDT"], "timeframe": "1m"},
      {"name": "donchian_breakout", "symbols": ["ADAUSDT"], "timeframe": "5m"}], 3, None,
     {"stop_loss", "take_profit"}, {"stop_pct": 0.4, "target_pct": 0.2}),
    # liquidations under cross margin with two positions, and a trend filter on a higher timeframe
    ([{"name": "ema_cross", "symbols": ["FILUSDT", "NEARUSDT"], "timeframe": "1m",
       "params": {"fast": 5, "slow": 20, "long_only": True}},
      {"name": "mtf_trend", "symbols": ["ADAUSDT"], "timeframe": "1m"}], 20, 250, {"liquidation", "signal"}, {}),
    # one symbol, one stream: the single-stream loop
    ([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m", "params": {"fast": 10, "slow": 30}}], 5, None,
     {"signal"}, {}),
])  # fmt: skip
def test_backtests_through_the_compiled_loops_equal_plain_delivery(
    monkeypatch: pytest.MonkeyPatch, registry, strategies: list[dict[str, Any]], leverage: int, wicks: int | None,
    exits: set[str], params: dict[str, float],
) -> None:
    symbols = [s for spec in strategies for s in spec["symbols"]]
    frames = _frames(symbols, 6_000, wicks)
    strategies[0] = {**strategies[0], "params": {**strategies[0].get("params", {}), **params}}
    config = BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 10_000, "fees": {"maker": 0.0002, "taker": 0.0004},
                     "funding_rate": 0.0005},
        "strategies": strategies,
        "risk": {"default_leverage": leverage, "sizing": {"method": "fixed_notional", "notional": 4_000 * leverage},
                 "guards": {"max_open_positions": 4}},
    })  # fmt: skip
    fused, published = _both_ways(monkeypatch, lambda: Backtest(config, registry, frames=frames).run())
    assert _summary(fused) == _summary(published)
    trades = fused.portfolio.trades
    assert len(trades) > 20 and sum(t.funding != 0 for t in trades) > 0  # funding was settled on the fast path
    assert exits <= {t.exit_reason for t in trades}


def _inlined(registry, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Any]:
    """The names the single-stream loop of a small ema_cross backtest bound, and the result."""
    frames = _frames(["FILUSDT"], 2_000)
    config = BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 10_000},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m", "params": {"fast": 5}}],
    })  # fmt: skip
    seen: dict[str, Any] = {}
    original = feed_module._single_chain

    def spy(handlers: tuple[Any, ...], topic: tuple[str, str]) -> Any:
        made = original(handlers, topic)
        seen.update(made[1])
        return made

    monkeypatch.setattr(feed_module, "_single_chain", spy)
    result = Backtest(config, registry, frames=frames, act_mask="off").run()  # ema_cross's mask would skip
    monkeypatch.setattr(feed_module, "_single_chain", original)
    return seen, result


def test_the_runner_and_exchange_steps_are_inlined(registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed of the idle kline rests on these two not being calls. Each step is offered only while the
    handler it copies is unchanged (``core.bus.source_digest``): after an edit of the handler, check the step
    still does the same, then record the digest this test prints."""
    digests = {"strategy/runner.py _REPLAY_STEP_MIRRORS": (source_digest(StrategyRunner._on_replayed_kline),
                                                           runner_module._REPLAY_STEP_MIRRORS),
               "exchange/matching.py _ON_KLINE_STEP_MIRRORS": (source_digest(Matching.on_kline),
                                                               matching_module._ON_KLINE_STEP_MIRRORS)}  # fmt: skip
    changed = {where: now for where, (now, recorded) in digests.items() if now != recorded}
    assert not changed, f"handler edited: check its inline step, then set {changed}"
    seen, _ = _inlined(registry, monkeypatch)
    assert {type(v).__name__ for k, v in seen.items() if k.endswith("_runner")} == {"StrategyRunner"}
    assert any(k.endswith("_book") for k in seen) and any(k.endswith("_process") for k in seen)
    # ema_cross never reads its kline: the loop builds none per kline and calls on_kline(None) (test_replay_lazy)
    assert any("held" in source and "_on_kline(None)" in source for source in feed_module._compiled)


def test_an_edited_handler_is_called_not_its_stale_step(registry, monkeypatch: pytest.MonkeyPatch) -> None:
    inlined_seen, inlined = _inlined(registry, monkeypatch)
    monkeypatch.setattr(runner_module, "_REPLAY_STEP_MIRRORS", "edited")
    monkeypatch.setattr(matching_module, "_ON_KLINE_STEP_MIRRORS", "edited")
    called_seen, called = _inlined(registry, monkeypatch)
    assert not any(k.endswith(("_runner", "_book")) for k in called_seen)  # both handlers called
    assert any(k.endswith("_runner") for k in inlined_seen)
    assert _summary(called) == _summary(inlined) and len(inlined.portfolio.trades) > 10


def _runner_log(fused: bool, fail_fast: bool) -> tuple[list[Any], StrategyError | None]:
    """A real StrategyRunner on a tiny strategy, replayed; what the strategy and a later handler saw."""
    seen: list[tuple[int, int]] = []
    after: list[int] = []

    class Probe(Strategy):
        timeframe = "1m"
        warmup = 5

        def init(self) -> None:
            pass

        def on_kline(self, kline: KlineClosed) -> None:
            seen.append((kline.open_time, self._cursor.i))
            if len(seen) == 7:
                raise ValueError("boom")
            if len(seen) % 3 == 0:
                self.buy(quantity=1.0)

    frame = synthetic_klines(40, 1)
    bus = EventBus() if fused else EventBus(on_error=lambda e: (_ for _ in ()).throw(e))
    clock = ReplayClock()
    runner = StrategyRunner(Probe("FILUSDT"), bus, clock, strategy_id="probe", id_prefix="p", fail_fast=fail_fast)
    runner.bind_history(frame.open_time, frame.open, frame.high, frame.low, frame.close, frame.volume, start_index=2)
    intents: list[Any] = []
    bus.subscribe(OrderIntent, lambda e: intents.append((e.intent_id, clock.now_ms())))
    bus.subscribe(KlineClosed, lambda k: after.append(k.open_time), topic=("FILUSDT", "1m"))
    error = None
    try:
        ReplayFeed(bus, clock, [Stream(frame, 2)]).run()
    except StrategyError as exc:
        error = exc
    return [seen, after, intents, runner.halted, runner.position_in_history], error


@pytest.mark.parametrize("fail_fast", [True, False])
def test_the_inlined_runner_step_does_what_its_handler_does(fail_fast: bool) -> None:
    """Warm-up skipped, intents flushed on their kline, a strategy error raised with its kline (fail fast) or the
    strategy halted while the other handlers go on: the same through the inlined step as through the call."""
    fused = _runner_log(True, fail_fast)
    called = _runner_log(False, fail_fast)
    (seen, after, intents, halted, _position), error = fused
    assert fused[0] == called[0]
    assert len(intents) == 2 and seen[0][1] == 4  # history from index 2, warm-up of 5: index 4 is the first seen
    if fail_fast:
        assert error is not None and called[1] is not None
        assert type(error.__cause__) is ValueError and error.event.open_time == seen[-1][0]
        assert len(seen) == 7 and len(after) == 8  # stopped on the 7th kline the strategy saw (the 9th)
    else:
        assert error is None and halted and len(seen) == 7 and len(after) == 38  # the rest went on


def _cross_stream_log(fused: bool) -> list[tuple[str, str, int]]:
    """Two symbols merged; a handler of one subscribes a handler to the other's topic mid-run."""
    one = synthetic_klines(30, 1, "FILUSDT")
    two = synthetic_klines(30, 2, "NEARUSDT")
    bus = EventBus() if fused else EventBus(on_error=lambda e: (_ for _ in ()).throw(e))
    log: list[tuple[str, str, int]] = []

    def late(k: KlineClosed) -> None:
        log.append(("late", k.symbol, k.open_time))

    def first(k: KlineClosed) -> None:
        log.append(("first", k.symbol, k.open_time))
        if k.open_time == one.open_time[10]:
            bus.subscribe(KlineClosed, late, topic=("NEARUSDT", "1m"))  # the other stream's next kline has it
        if k.open_time == one.open_time[20]:
            bus.unsubscribe(KlineClosed, late, topic=("NEARUSDT", "1m"))

    bus.subscribe(KlineClosed, first, topic=("FILUSDT", "1m"))
    bus.subscribe(KlineClosed, lambda k: log.append(("two", k.symbol, k.open_time)), topic=("NEARUSDT", "1m"))
    ReplayFeed(bus, ReplayClock(), [Stream(one), Stream(two)]).run()
    return log


def test_a_subscription_made_on_one_stream_reaches_the_other_from_its_next_kline() -> None:
    fused = _cross_stream_log(True)
    assert fused == _cross_stream_log(False)
    lates = [e for e in fused if e[0] == "late"]
    assert len(lates) == 10 and lates[0][2] == synthetic_klines(30, 1).open_time[10]
