"""Streams closing in lockstep replay close time by close time (backtest.merge) and give exactly what the
general merged replay gives: every handler call, in order, with the clock at each kline's close, subscription
changes inside a close time and across chunks, failures, and a whole multi-symbol backtest."""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kinetic_empire.backtest import Backtest, merge
from kinetic_empire.backtest import feed as feed_module
from kinetic_empire.backtest.feed import ReplayFeed, Stream
from kinetic_empire.backtest.lockstep_lazy import lazy_lockstep_chain
from kinetic_empire.core.bus import EventBus, InlineStep
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


# --------------------------------------------------------------- the kline-free lockstep loop (lockstep_lazy)


class Probe:
    """A handler that offers an inline step reading no kline on its every-kline path (like the exchange's and the
    runner's): it records the fields it reads, and at planned klines calls out (``@sync``) into ``reach``, which
    reads every latest-kline slot (what a risk check marking all positions does), may change subscriptions, and
    may fail."""

    def __init__(self, name: str, log: list[Any], clock: ReplayClock, slots: dict[str, deque[KlineClosed]],
                 plan: dict[int, str]) -> None:
        self.name, self.log, self.clock, self.slots, self.plan = name, log, clock, slots, plan
        self.act: Any = None  # (probe, kline, what) -> None: subscription changes
        self.scale: dict[int, float] = {}  # open time -> what the close is divided by (0: fail on the hot path)

    def on_kline(self, k: KlineClosed) -> None:
        self.log.append((self.name, "hot", k.open_time, k.close / self.scale.get(k.open_time, 1.0)))
        if k.open_time in self.plan:
            self.reach(k)

    def reach(self, k: KlineClosed) -> None:
        held = tuple((s, d[-1].open_time if d else None, d[-1].close if d else None) for s, d in self.slots.items())
        self.log.append((self.name, "reach", k.symbol, k.open_time, k.high, k.volume, self.clock.time_ms, held))
        what = self.plan[k.open_time]
        if what == "fail":
            raise ValueError(f"{self.name} failed")
        if what == "nudge":  # a call out that moves the clock: every kline's delivery sets it again
            self.clock.time_ms += 1
        if self.act is not None:
            self.act(self, k, what)

    def inline_step(self, handler: Any, topic: Any) -> InlineStep | None:
        if handler != self.on_kline:
            return None
        source = ("$log.append(($name, 'hot', open_time, close / $scale.get(open_time, 1.0)))\n"
                  "if open_time in $plan:\n    @sync\n    $reach(@k)\n")
        return InlineStep(source, {"log": self.log, "name": self.name, "plan": self.plan, "reach": self.reach,
                                   "scale": self.scale},
                          reads_kline=False)


def _lazy_log(lockstep: bool, monkeypatch: pytest.MonkeyPatch, seed: int, fail: bool = False) -> list[Any]:
    """Three streams, each with a probe before and after a one-slot latest-kline store; probes call out at random
    klines (reading every slot), some of them subscribing or unsubscribing an extra probe or slot; small chunks.
    Returns everything the probes saw, and the error if one failed."""
    frames = [synthetic_klines(60, 30 + i, s) for i, s in enumerate(SYMBOLS)]
    bus = EventBus()
    clock = ReplayClock()
    log: list[Any] = []
    rng = np.random.default_rng(seed)
    slots: dict[str, deque[KlineClosed]] = {s: deque(maxlen=1) for s in SYMBOLS}
    extra_slot: deque[KlineClosed] = deque(maxlen=1)
    times = frames[0].open_time[2:].tolist()
    probes = []
    for s in SYMBOLS:
        for part in ("a", "b"):
            plan = {int(t): str(rng.choice(["read", "nudge", "toggle", "slot"])) for t in rng.choice(times, 6)}
            probes.append(Probe(f"{s}-{part}", log, clock, {**slots, "extra": extra_slot}, plan))
    extra = Probe("extra", log, clock, slots, {int(t): "read" for t in rng.choice(times, 10)})
    if fail:  # after a call out, or on the path every kline takes (a division by zero)
        failing = probes[int(rng.integers(0, len(probes)))]
        if seed % 2:
            failing.plan[int(rng.choice(times[10:]))] = "fail"
        else:
            failing.scale[int(rng.choice(times[10:]))] = 0.0
    topics = [(s, "1m") for s in SYMBOLS]
    on: dict[str, tuple[str, str]] = {}  # "extra" / "slot" -> the topic it is subscribed to

    def act(probe: Probe, k: KlineClosed, what: str) -> None:
        handler = {"toggle": extra.on_kline, "slot": extra_slot.append}.get(what)
        if handler is None:
            return
        key = "extra" if what == "toggle" else "slot"
        if key in on:
            bus.unsubscribe(KlineClosed, handler, topic=on.pop(key))
        else:
            on[key] = topics[int(rng.integers(0, 3))]
            bus.subscribe(KlineClosed, handler, topic=on[key])

    for p in probes:
        p.act = act
    for i, s in enumerate(SYMBOLS):
        bus.subscribe(KlineClosed, probes[2 * i].on_kline, topic=topics[i])
        bus.subscribe(KlineClosed, slots[s].append, topic=topics[i])
        bus.subscribe(KlineClosed, probes[2 * i + 1].on_kline, topic=topics[i])
    monkeypatch.setattr(merge, "CHUNK_TIMES", 7)
    with monkeypatch.context() as m:
        if not lockstep:
            m.setattr(feed_module, "in_lockstep", lambda streams: False)
        try:
            assert ReplayFeed(bus, clock, [Stream(f, 2) for f in frames]).run() == 3 * 58
        except HandlerError as exc:
            e = exc.event
            log.append(("error", str(exc), e.symbol, e.open_time, e.close, e.volume, clock.time_ms))
    log.append(("slots", tuple((s, d[-1].open_time, d[-1].close) for s, d in slots.items())))
    return log


@pytest.mark.parametrize("seed", range(10))
def test_the_kline_free_lockstep_loop_gives_the_general_merge(monkeypatch, seed: int) -> None:
    made: list[bool] = []
    real = merge.lazy_lockstep_chain

    def spy(*args: Any) -> Any:
        found = real(*args)
        made.append(found is not None)
        return found

    monkeypatch.setattr(merge, "lazy_lockstep_chain", spy)
    lockstep = _lazy_log(True, monkeypatch, seed)
    assert made and all(made)  # every loop of the lockstep run built no kline per event
    general = _lazy_log(False, monkeypatch, seed)
    assert lockstep == general
    assert sum(e[1] == "reach" for e in general) > 20 and any(e[0] == "extra" for e in general)


@pytest.mark.parametrize("seed", range(6))
def test_a_failing_step_in_the_kline_free_loop_fails_as_the_general_merge(monkeypatch, seed: int) -> None:
    lockstep, general = _lazy_log(True, monkeypatch, seed, fail=True), _lazy_log(False, monkeypatch, seed, fail=True)
    assert lockstep == general
    assert general[-2][0] == "error" and ("failed" if seed % 2 else "ZeroDivisionError") in general[-2][1]


def test_a_slot_fed_by_two_routes_keeps_the_kline_building_loop() -> None:
    shared: deque[KlineClosed] = deque(maxlen=1)
    handlers = [(shared.append,), (shared.append,)]
    assert lazy_lockstep_chain(handlers, [("FILUSDT", "1m"), ("NEARUSDT", "1m")], feed_module._LOCKSTEP_KIT) is None
    assert lazy_lockstep_chain([(deque(maxlen=1).append,), (deque(maxlen=1).append,)],
                               [("FILUSDT", "1m"), ("NEARUSDT", "1m")], feed_module._LOCKSTEP_KIT) is not None
