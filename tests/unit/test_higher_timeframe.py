"""Indicators on a higher timeframe (issue 13 item 2): the values, their alignment, and no lookahead.

Reference: the project's Binance-style resampler (``data.resample``) and pandas' ``merge_asof`` on close
times, written independently of :mod:`kinetic_empire.strategy.higher`, on real FILUSDT 1m klines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_empire.backtest.lookahead_decisions import check_decisions
from kinetic_empire.data import read_kline_file
from kinetic_empire.data.resample import resample
from kinetic_empire.indicators import ema
from kinetic_empire.strategy import higher
from kinetic_empire.strategy.base import Param, Strategy
from kinetic_empire.strategy.series import crossover, crossunder, engine_array

DATA = Path(__file__).parents[1] / "data" / "sandbox" / "FILUSDT-1m-2023-08.csv.gz"


@pytest.fixture(scope="module")
def fil():
    f = read_kline_file(DATA, "FILUSDT", "1m")
    cut = slice(17, None)  # two days, starting mid-hour on purpose: the first hour is incomplete
    return type("F", (), {k: getattr(f, k)[cut] for k in ("open_time", "open", "high", "low", "close", "volume")})


class Trend(Strategy):
    """1m entries in the direction of a 15m EMA trend, the trend on 1h closes."""

    timeframe = "1m"
    htf = Param("1h", "the trend's timeframe")

    def init(self) -> None:
        self.trend = self.I(ema, self.close, 5, timeframe=self.params["htf"])
        self.fast = self.I(ema, self.close, 10)
        self.slow = self.I(ema, self.close, 30)
        self.hl = self.I(lambda h, lo: (h + lo) / 2, self.high, self.low, timeframe="15m", name="mid15")

    def on_kline(self, kline) -> None:
        if np.isnan(self.trend[-1]):
            return
        if crossover(self.fast, self.slow) and kline.close > self.trend[-1]:
            self.buy(stop_loss=kline.close * 0.98)
        elif crossunder(self.fast, self.slow):
            self.close_position()


def bound(strategy: Strategy, f) -> Strategy:
    strategy._bind(f.open, f.high, f.low, f.close, f.volume, f.open_time)
    return strategy


def test_values_are_the_resampled_indicator_as_of_each_klines_close(fil) -> None:
    s = bound(Trend("FILUSDT"), fil)
    frame = read_kline_file(DATA, "FILUSDT", "1m")
    hourly = resample(frame, "1h")  # the whole month: the reference does not share our cut or our code
    ref = pd.DataFrame({"close_at": hourly.open_time + 3_600_000, "ema": ema(hourly.close, 5)})
    base = pd.DataFrame({"close_at": fil.open_time + 60_000})
    # the 1h periods inside our cut: EMA seeds differ (the reference saw 17 more klines and earlier hours),
    # so compare the hourly closes the indicator saw, then the EMA recomputed on exactly those
    seen = pd.merge_asof(base, ref, on="close_at", direction="backward")
    assert np.isnan(engine_array(s.trend)[: 60 - 17 + 60 - 1]).all()  # no complete hour closed yet
    first_hour = hourly.open_time.searchsorted(fil.open_time[0] + (3_600_000 - fil.open_time[0] % 3_600_000))
    closes = hourly.close[first_hour:]
    opens = hourly.open_time[first_hour:]
    closes = closes[opens + 3_600_000 <= fil.open_time[-1] + 60_000]
    expect_hourly = pd.DataFrame({"close_at": opens[: len(closes)] + 3_600_000, "ema": ema(closes, 5)})
    expected = pd.merge_asof(base, expect_hourly, on="close_at", direction="backward")["ema"].to_numpy()
    got = engine_array(s.trend)
    assert np.allclose(got, expected, rtol=1e-12, equal_nan=True)
    assert np.isfinite(got).sum() > 1900 and not np.isnan(seen["ema"]).all()
    # the 15m output of a two-input lambda: the mid of the 15m high and low, from each 15m close on
    q = resample(frame, "15m")
    ref15 = pd.DataFrame({"close_at": q.open_time + 900_000, "mid": (q.high + q.low) / 2})
    mid = pd.merge_asof(base, ref15, on="close_at", direction="backward")["mid"].to_numpy()
    got15 = engine_array(s.hl)
    valid = np.isfinite(got15)
    assert valid.sum() > 2700 and np.allclose(got15[valid], mid[valid], rtol=1e-12)


def test_a_value_shows_at_the_kline_that_closes_its_period_not_before(fil) -> None:
    s = bound(Trend("FILUSDT"), fil)
    got = engine_array(s.trend)
    changes = np.flatnonzero(np.diff(np.nan_to_num(got)) != 0) + 1
    closes = (fil.open_time[changes] + 60_000) % 3_600_000
    assert len(changes) > 40 and (closes == 0).all()  # only at the 1m kline closing an hour


def test_history_cut_anywhere_gives_the_same_values_up_to_the_cut(fil) -> None:
    full = engine_array(bound(Trend("FILUSDT"), fil).trend)
    for k in (100, 1259, 1260, 1261, 2862):
        cut = type("C", (), {a: getattr(fil, a)[: k + 1] for a in ("open_time", "open", "high", "low", "close",
                                                                   "volume")})
        part = engine_array(bound(Trend("FILUSDT"), cut).trend)
        assert np.allclose(part, full[: k + 1], rtol=0, atol=0, equal_nan=True), k


def test_the_decision_check_passes_an_honest_strategy_and_catches_a_forming_period(fil, monkeypatch) -> None:
    arrays = (fil.open, fil.high, fil.low, fil.close, fil.volume)
    findings, checked = check_decisions(Trend("FILUSDT"), arrays, fil.open_time)
    assert findings == [] and checked
    # planted: the period still forming counts as closed (its close is the latest 1m close, seen early)
    real = higher.HigherTimeframe.__init__

    def leaky(self, base, open_time, base_tf, timeframe):
        real(self, base, open_time, base_tf, timeframe)
        n = len(open_time)
        starts = np.flatnonzero(np.concatenate(([True], np.diff(open_time // 3_600_000) != 0)))
        ends = np.append(starts[1:], n)
        self.arrays = {k: np.asarray([base[k][e - 1] if k == "close" else base[k][s] for s, e in zip(starts, ends)])
                       for k in higher.FIELDS}
        self._kept = np.arange(len(starts))
        self._visible_at = starts  # visible from the period's first kline: its close is the future

    monkeypatch.setattr(higher.HigherTimeframe, "__init__", leaky)
    findings, _ = check_decisions(Trend("FILUSDT", {"htf": "1h"}), arrays, fil.open_time)
    assert findings, "a higher-timeframe value shown before its period closed was not caught"


def test_bad_declarations_are_clear(fil) -> None:
    class Finer(Trend):
        def init(self) -> None:
            self.I(ema, self.close, 5, timeframe="1s")

    class OnIndicator(Trend):
        def init(self) -> None:
            e = self.I(ema, self.close, 5)
            self.I(ema, e, 5, timeframe="1h")

    with pytest.raises(ValueError, match=r"unknown timeframe|whole multiple"):
        bound(Finer("FILUSDT"), fil)
    with pytest.raises(ValueError, match=r"inputs must be price series .* ema\(close, 5\) is computed"):
        bound(OnIndicator("FILUSDT"), fil)
