"""Live indicators: O(1) per kline, equal to the backtest's full-history values, ``init`` run once.

All on the bundled real klines (FILUSDT 1m, August 2023: 44,640 klines). "Backtest" values are the
vectorised indicator functions over the whole month; "live" values come from a runner warmed up on the
klines before a start point and then fed one kline at a time, as the live engine does.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from kinetic_empire import Strategy, crossover, crossunder
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.events import KlineClosed, OrderIntent, new_kline
from kinetic_empire.indicators import adx, atr, bollinger, donchian, ema, macd, rsi, sma
from kinetic_empire.strategy import incremental as inc
from kinetic_empire.strategy import live_indicators
from kinetic_empire.strategy.live_indicators import history_needed, probe_history_needed
from kinetic_empire.strategy.runner import StrategyRunner
from kinetic_empire.strategy.series import engine_array

REL = 1e-9


@functools.cache
def month() -> tuple[np.ndarray, ...]:
    from kinetic_empire.data import load_klines, sample_data_dir

    k = load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m", end="2023-09-01")
    return k.open_time, k.open, k.high, k.low, k.close, k.volume


def klines(lo: int, hi: int) -> list[KlineClosed]:
    t, o, h, lo_, c, v = month()
    return [new_kline("FILUSDT", "1m", int(t[i]), float(o[i]), float(h[i]), float(lo_[i]), float(c[i]),
                      float(v[i]), int(t[i]) + 59_999, int(t[i]) + 59_999) for i in range(lo, hi)]


def assert_close(live: float, full: float, what: str) -> None:
    if np.isnan(full):
        assert np.isnan(live), (what, live, full)
        return
    assert abs(live - full) <= REL * abs(full), (what, live, full, abs(live - full) / abs(full))


# ------------------------------------------------------------------------ incremental == vectorised
def stepped(state: inc.Incremental, *inputs: np.ndarray) -> np.ndarray:
    return np.array([state.update(*[float(x[i]) for x in inputs]) for i in range(len(inputs[0]))])


@pytest.mark.parametrize("period", [2, 14, 50, 200])
def test_recursions_are_bit_identical_to_the_vectorised_functions(period):
    _, _, h, lo, c, _ = month()
    assert np.array_equal(stepped(inc.Ema(period), c), ema(c, period), equal_nan=True)
    assert np.array_equal(stepped(inc.Rsi(period), c), rsi(c, period), equal_nan=True)
    got = stepped(inc.Macd(period, period * 2, 9), c)
    for k, want in enumerate(macd(c, period, period * 2, 9)):
        assert np.array_equal(got[:, k], want, equal_nan=True), k
    # TA-Lib sums its seed in another order: equal to the last bits
    np.testing.assert_allclose(stepped(inc.Atr(period), h, lo, c), atr(h, lo, c, period), rtol=1e-14, atol=0)


@pytest.mark.parametrize("period", [2, 20, 55])
def test_rolling_windows_match_pandas(period):
    _, _, h, lo, c, _ = month()
    np.testing.assert_allclose(stepped(inc.Sma(period), c), sma(c, period), rtol=1e-13, atol=0)
    got = stepped(inc.Bollinger(period, 2.5), c)
    for k, want in enumerate(bollinger(c, period, 2.5)):
        np.testing.assert_allclose(got[:, k], want, rtol=1e-12, atol=0)
    import pandas as pd
    from ta.volatility import BollingerBands

    bands = BollingerBands(pd.Series(c), window=period, window_dev=2.5)  # what bollinger() used to return
    np.testing.assert_allclose(bollinger(c, period, 2.5)[2], bands.bollinger_hband(), rtol=1e-7, atol=0)
    got = stepped(inc.Donchian(period), h, lo)
    for k, want in enumerate(donchian(h, lo, period)):
        assert np.array_equal(got[:, k], want, equal_nan=True), k


def test_settle_is_the_seed_decay_and_grows_with_the_period():
    assert inc.Ema(200).settle() > 2_900 > inc.Ema(50).settle() > 700
    assert inc.Rsi(14).settle() == inc.Atr(14).settle()  # both Wilder smoothing seeded after `period` moves
    assert inc.Sma(20).settle() == inc.Donchian(20).settle() == inc.Bollinger(20).settle() == 20


# --------------------------------------------------------------------------------- live runner
class Everything(Strategy):
    """Every built-in with an incremental form, one chained on another, and one recomputed (ADX)."""

    timeframe = "1m"

    def init(self):
        self.inits = getattr(self, "inits", 0) + 1
        self.slow = self.I(ema, self.close, 200)
        self.fast = self.I(ema, self.close, 20)
        self.r = self.I(rsi, self.close, 14)
        self.smooth_r = self.I(ema, self.r, 9)
        self.a = self.I(atr, self.high, self.low, self.close)
        self.dc = self.I(donchian, self.high, self.low, 20)
        self.bb = self.I(bollinger, self.close, 20, 2.0)
        self.m = self.I(macd, self.close)
        self.s = self.I(sma, self.volume, 30)
        self.x = self.I(adx, self.high, self.low, self.close, 14)

    def on_kline(self, kline):
        if crossover(self.fast, self.slow):
            self.buy()
        elif crossunder(self.fast, self.slow):
            self.sell()


def live_runner(strategy: Strategy, window: int = 500) -> tuple[StrategyRunner, list[OrderIntent]]:
    bus = EventBus()
    runner = StrategyRunner(strategy, bus, ManualClock(start_ms=0), strategy_id="t", id_prefix="t",
                            fail_fast=True, window=window)
    intents: list[OrderIntent] = []
    bus.subscribe(OrderIntent, intents.append)
    return runner, intents


def full_history(strategy_type: type[Strategy]) -> Strategy:
    s = strategy_type("FILUSDT")
    _, o, h, lo, c, v = month()
    s._bind(o, h, lo, c, v)
    return s


def test_live_values_equal_the_full_history_backtest_after_the_sized_warm_up():
    full = full_history(Everything)
    reference = {s.name: engine_array(s) for s in full._indicators}
    probe = Everything("FILUSDT")
    need, per = probe_history_needed(probe, 500)
    assert per["ema(close, 200)"] == inc.Ema(200).settle() and per["ema(rsi(close, 14), 9)"] > per["rsi(close, 14)"]
    assert per["adx(high, low, close, 14)"] == 500  # recomputed on the window
    start = 20_000
    live = Everything("FILUSDT")
    runner, _ = live_runner(live)
    runner.warm_up_live(klines(start - need, start))
    assert runner._live is not None
    assert sorted(runner._live.recomputed) == ["adx(high, low, close, 14)"]
    for k, kline in zip(range(start, start + 600), klines(start, start + 600)):
        runner.on_kline(kline)
        assert live.close[-1] == kline.close and len(live.close) == need + k - start + 1
        for series in live._indicators:
            if series.name.startswith("adx"):  # a window recompute of a Wilder smoothing: close, not 1e-9
                np.testing.assert_allclose(series[-1], reference[series.name][k], rtol=1e-6)
                continue
            assert_close(series[-1], reference[series.name][k], f"{series.name} at kline {k}")
    assert live.inits == 1  # init ran once, on the warm-up history; never again


def test_a_500_kline_window_is_not_enough_for_ema_200():
    """What the sizing fixes (the check above fails with the old 500-kline window)."""
    reference = engine_array(full_history(Everything).slow)
    start = 20_000
    live = Everything("FILUSDT")
    runner, _ = live_runner(live)
    runner.warm_up_live(klines(start - 500, start))
    worst = 0.0
    for k, kline in zip(range(start, start + 50), klines(start, start + 50)):
        runner.on_kline(kline)
        worst = max(worst, abs(live.slow[-1] - reference[k]) / reference[k])
    assert worst > REL


@pytest.mark.parametrize("name", ["ema_cross", "rsi_reversion", "donchian_breakout"])
def test_the_examples_decide_live_as_in_the_backtest(name):
    from kinetic_empire.strategy.registry import build_registry

    cls = build_registry([]).get(name)
    replay = cls("FILUSDT", timeframe="1m")
    live = cls("FILUSDT", timeframe="1m")
    need = probe_history_needed(live, 500)[0]
    start, n = need + 1_000, 3_000
    t, o, h, lo, c, v = month()
    replayed, want = live_runner(replay)
    replayed.on_kline = replayed._on_replayed_kline  # type: ignore[method-assign]
    replayed.bind_history(t, o, h, lo, c, v, start_index=start)
    runner, got = live_runner(live)
    runner.warm_up_live(klines(start - need, start))
    for kline in klines(start, start + n):
        replayed.on_kline(kline)
        runner.on_kline(kline)
        for a, b in zip(live._indicators, replay._indicators):
            assert_close(a[-1], b[-1], a.name)
    strip = [(i.action, i.stop_loss, i.take_profit, i.reference_price, i.tag) for i in got]
    assert strip == [(i.action, i.stop_loss, i.take_profit, i.reference_price, i.tag) for i in want]
    assert got, "the span should trade"


def test_buffers_are_cut_back_and_the_strategy_still_sees_its_history(monkeypatch):
    monkeypatch.setattr(live_indicators, "_HEADROOM", 64)
    full = full_history(Everything)
    start = 5_000
    live = Everything("FILUSDT")
    runner, _ = live_runner(live, window=100)
    need = probe_history_needed(live, 100)[0]
    runner.warm_up_live(klines(start - need, start))
    c = month()[4]
    for k, kline in zip(range(start, start + 300), klines(start, start + 300)):
        runner.on_kline(kline)
        assert live.close[-100] == c[k - 99]
        assert list(live.close[-5:]) == list(c[k - 4 : k + 1])
        assert live.close.values[-1] == c[k] and float(live.close) == c[k]
        assert_close(live.bb[2][-1], engine_array(full.bb[2])[k], "bollinger upper")
    assert len(live.close) < need + 300  # cut back at least once
    assert len(live.close) >= 100


def test_duplicates_and_old_klines_are_ignored_and_no_history_means_the_first_kline_warms_up():
    live = Everything("FILUSDT")
    runner, _ = live_runner(live)
    runner.warm_up_live([])
    batch = klines(0, 300)
    runner.on_kline(batch[0])
    assert live.inits == 1 and len(live.close) == 1
    for kline in batch[1:]:
        runner.on_kline(kline)
    runner.on_kline(batch[-1])
    runner.on_kline(batch[10])
    assert len(live.close) == 300 and live.inits == 1
    reference = ema(month()[4][:300], 20)
    assert live.fast[-1] == reference[-1]


def test_on_kline_waits_until_every_indicator_has_a_value():
    class Counts(Strategy):
        timeframe = "1m"

        def init(self):
            self.e = self.I(ema, self.close, 30)
            self.seen = getattr(self, "seen", [])

        def on_kline(self, kline):
            self.seen.append(self.e[-1])

    s = Counts("FILUSDT")
    runner, _ = live_runner(s)
    runner.warm_up_live(klines(0, 10))
    for kline in klines(10, 40):
        runner.on_kline(kline)
    assert len(s.seen) == 11 and not np.isnan(s.seen[0])  # klines 29..39: as the backtest's inferred warm-up


def test_an_indicator_that_fails_live_halts_the_strategy_not_the_engine():
    calls = []

    def fragile(close):
        calls.append(len(close))
        if len(calls) > 3:
            raise ZeroDivisionError("boom")
        return close * 2

    class Fragile(Strategy):
        timeframe = "1m"

        def init(self):
            self.f = self.I(fragile, self.close)

    s = Fragile("FILUSDT")
    bus = EventBus()
    runner = StrategyRunner(s, bus, ManualClock(start_ms=0), strategy_id="f", id_prefix="f", fail_fast=False,
                            window=50)
    runner.warm_up_live(klines(0, 100))
    assert calls == [100]  # init: once, on the whole warm-up history
    for kline in klines(100, 105):
        runner.on_kline(kline)
    assert calls[1:3] == [50, 50] and runner.halted  # recomputed on the window, then halted


def test_history_needed_counts_the_window_and_an_explicit_warmup():
    class Long(Strategy):
        timeframe = "1m"
        warmup = 5_000

        def init(self):
            self.e = self.I(ema, self.close, 10)

    s = Long("FILUSDT")
    _, o, h, lo, c, v = month()
    s._bind(o[:50], h[:50], lo[:50], c[:50], v[:50])
    assert history_needed(s, 500)[0] == 5_001


class OnlyRsi(Strategy):
    timeframe = "1m"

    def init(self):
        self.r = self.I(rsi, self.close, 14)


def test_the_short_warm_up_warning_names_only_a_real_shortfall(caplog) -> None:
    """A default paper run warned "388 klines of warm-up history, fewer than rsi(close, 14) (388) need": a
    warm-up of exactly the needed length is enough. One kline less is not, and says so."""
    need = inc.Rsi(14).settle()
    for n, warned in ((need, False), (need - 1, True)):
        caplog.clear()
        runner, _ = live_runner(OnlyRsi("FILUSDT"), window=50)
        with caplog.at_level("WARNING"):
            runner.warm_up_live(klines(0, n))
        assert any("fewer than" in r.getMessage() for r in caplog.records) is warned, (n, caplog.text)
