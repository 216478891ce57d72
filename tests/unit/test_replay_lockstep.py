"""Streams closing in lockstep replay close time by close time (backtest.merge) and give exactly what the
general merged replay gives: every handler call, in order, with the clock at each kline's close, subscription
changes inside a close time and across chunks, failures, and a whole multi-symbol backtest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kinetic_empire.backtest import Backtest, merge
from kinetic_empire.backtest import feed as feed_module
from kinetic_empire.backtest.feed import ReplayFeed, Stream
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.errors import HandlerError
from kinetic_empire.core.events import KlineClosed
from kinetic_empire.data import KlineFrame
from kinetic_empire.data._util import interval_ms
from kinetic_empire.strategy.registry import build_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_multisymbol import _frames, config
from synthetic import synthetic_klines

SYMBOLS = ["FILUSDT", "NEARUSDT", "ADAUSDT"]


def shifted(frame: KlineFrame, rows: int, timeframe: str = "1m", times: Any = None) -> KlineFrame:
    """The same prices ``rows`` intervals later (or at ``times``, or on another timeframe)."""
    if times is None:
        times = frame.open_time[0] + (np.arange(len(frame)) + rows) * interval_ms(timeframe)
    return KlineFrame(frame.symbol, timeframe, times, frame.open, frame.high, frame.low, frame.close, frame.volume)


def test_lockstep_is_one_timeframe_and_the_same_open_times_from_each_start() -> None:
    a, b = synthetic_klines(50, 1, "FILUSDT"), synthetic_klines(50, 2, "NEARUSDT")
    assert merge.in_lockstep([Stream(a), Stream(b)])
    later = shifted(synthetic_klines(49, 2, "NEARUSDT"), 1)
    assert merge.in_lockstep([Stream(a, 3), Stream(later, 2)])  # warm-ups differ, the replays line up
    assert not merge.in_lockstep([Stream(a), Stream(shifted(b, 1))])
    assert not merge.in_lockstep([Stream(a), Stream(synthetic_klines(49, 2, "NEARUSDT"))])
    assert not merge.in_lockstep([Stream(a), Stream(shifted(b, 0, "5m"))])
    times = b.open_time.copy()
    times[30:] += 60_000  # a gap: the rest one interval late
    assert not merge.in_lockstep([Stream(a), Stream(shifted(b, 0, times=times))])


def _log(lockstep: bool, monkeypatch: pytest.MonkeyPatch, seed: int) -> list[tuple[Any, ...]]:
    """Three streams; handlers subscribe and unsubscribe others (on any stream, their own included) at random
    klines; small chunks. Returns every call: (handler, symbol, open time, close, clock)."""
    frames = [synthetic_klines(60, 10 + i, s) for i, s in enumerate(SYMBOLS)]
    topics = [(s, "1m") for s in SYMBOLS]
    bus = EventBus()
    clock = ReplayClock()
    log: list[tuple[Any, ...]] = []
    rng = np.random.default_rng(seed)
    plan = {int(t): (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
            for t in rng.choice(frames[0].open_time[:-1], 12, replace=False)}  # open time -> (extra, topic)
    extras = [lambda k, j=j: log.append((f"extra{j}", k.symbol, k.open_time, k.close, clock.time_ms))
              for j in range(3)]
    on: dict[tuple[int, int], bool] = {}

    def make(name: str) -> Any:
        def handler(k: KlineClosed) -> None:
            log.append((name, k.symbol, k.open_time, k.close, clock.time_ms))
            step = plan.get(k.open_time)
            if step is not None and name == f"main-{k.symbol}" and (SYMBOLS.index(k.symbol) + seed) % 2 == 0:
                j, t = step
                key = (j, t)
                if on.get(key):
                    bus.unsubscribe(KlineClosed, extras[j], topic=topics[t])
                else:
                    bus.subscribe(KlineClosed, extras[j], topic=topics[t])
                on[key] = not on.get(key)
        return handler

    for s in SYMBOLS:
        bus.subscribe(KlineClosed, make(f"main-{s}"), topic=(s, "1m"))
    monkeypatch.setattr(merge, "CHUNK_TIMES", 7)
    with monkeypatch.context() as m:
        if not lockstep:
            m.setattr(feed_module, "in_lockstep", lambda streams: False)
        assert ReplayFeed(bus, clock, [Stream(f, 2) for f in frames]).run() == 3 * 58
    return log


@pytest.mark.parametrize("seed", range(8))
def test_subscription_changes_inside_a_close_time_give_the_general_merge(monkeypatch, seed: int) -> None:
    lockstep, general = _log(True, monkeypatch, seed), _log(False, monkeypatch, seed)
    assert lockstep == general
    assert any(e[0].startswith("extra") for e in general)  # the plan did change subscriptions


def _failing(lockstep: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int, int]:
    frames = [synthetic_klines(40, 20 + i, s) for i, s in enumerate(SYMBOLS)]
    bus = EventBus()
    calls: list[int] = []

    def boom(k: KlineClosed) -> None:
        calls.append(k.open_time)
        if len(calls) == 25:
            raise ValueError("bad kline")

    bus.subscribe(KlineClosed, boom, topic=("NEARUSDT", "1m"))
    bus.subscribe(KlineClosed, lambda k: calls.append(-k.open_time), topic=("ADAUSDT", "1m"))
    with monkeypatch.context() as m:
        if not lockstep:
            m.setattr(feed_module, "in_lockstep", lambda streams: False)
        with pytest.raises(HandlerError) as caught:
            ReplayFeed(bus, ReplayClock(), [Stream(f) for f in frames]).run()
    return str(caught.value), caught.value.event.open_time, len(calls)


def test_a_failing_handler_stops_the_replay_as_the_general_merge_does(monkeypatch) -> None:
    assert _failing(True, monkeypatch) == _failing(False, monkeypatch)


def test_a_multi_symbol_backtest_gives_the_general_merges_results(monkeypatch) -> None:
    symbols = [*SYMBOLS, "XRPUSDT"]
    frames = _frames(symbols, 3_000, 5)

    def result(lockstep: bool) -> tuple[Any, ...]:
        with monkeypatch.context() as m:
            if not lockstep:
                m.setattr(feed_module, "in_lockstep", lambda streams: False)
            r = Backtest(config(symbols), build_registry(), frames=frames, act_mask="off").run()
        trades = r.portfolio.trades
        return r.klines_processed, [(t.symbol, t.entry_time, t.exit_time, t.net_pnl) for t in trades], \
            r.portfolio.equity()

    got, want = result(True), result(False)
    assert got == want and len(want[1]) > 20
