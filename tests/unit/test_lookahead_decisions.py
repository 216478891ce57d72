"""The decision-comparing lookahead check: each way a strategy can see the future is a planted strategy
that the check must catch (naming the kline and the indicator or the intents); honest strategies pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_empire.backtest.lookahead_decisions import check_decisions
from kinetic_empire.data import read_kline_file
from kinetic_empire.indicators import ema
from kinetic_empire.strategy.base import Param, Strategy
from kinetic_empire.strategy.registry import build_registry
from kinetic_empire.strategy.series import crossover, crossunder, engine_array

DATA = Path(__file__).parents[1] / "data" / "FILUSDT-1h-2023-08_2023-09.DERIVED.csv.gz"


@pytest.fixture(scope="module")
def fil() -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    f = read_kline_file(DATA, "FILUSDT", "1h")
    return (f.open, f.high, f.low, f.close, f.volume), f.open_time


class Cross(Strategy):
    """Trades when ``self.a`` crosses ``self.b``; subclasses plant one leak each in ``signal``."""

    timeframe = "1h"
    n = Param(10, "period")

    def signal(self, close: np.ndarray) -> np.ndarray:
        return ema(close, self.n)

    def init(self) -> None:
        self.a = self.I(lambda c: self.signal(c), self.close, name="signal")
        self.b = self.I(ema, self.close, 30)

    def on_kline(self, kline) -> None:
        if crossover(self.a, self.b):
            self.buy(stop_loss=kline.close * 0.97)
        elif crossunder(self.a, self.b):
            self.sell()


class ShiftBack(Cross):
    def signal(self, close):
        return pd.Series(ema(close, self.n)).shift(-1).to_numpy()


class Centred(Cross):
    def signal(self, close):
        return pd.Series(close).rolling(9, center=True).mean().to_numpy()


class NormalisedByMax(Cross):
    def signal(self, close):
        return close / np.nanmax(close) * np.nanmean(close)


class DailyHigh(Cross):
    """The day's high, computed over whole days: at 09:00 it already knows the afternoon."""

    def signal(self, close):
        days = np.arange(len(close)) // 24
        return pd.Series(close).groupby(days).transform("max").to_numpy() * 0.99


class BackFilled(Cross):
    def signal(self, close):
        return pd.Series(ema(close, self.n)).shift(5).bfill().to_numpy()


_CACHE: dict[str, np.ndarray] = {}


class Cached(Cross):
    """Caches its longest input, normalised over it: a short input gets a slice of the long result."""

    def signal(self, close):
        held = _CACHE.get("x")
        if held is None or len(held) < len(close):
            held = _CACHE["x"] = close / close.max() * close.mean()
        return held[: len(close)]


class InitArray(Strategy):
    """Reads an array computed in init from the whole history, outside self.I."""

    timeframe = "1h"

    def init(self) -> None:
        self.f = self.I(ema, self.close, 10)
        closes = engine_array(self.close)
        self.top = np.maximum.accumulate(closes[::-1])[::-1]  # the highest close from here to the end

    def on_kline(self, kline) -> None:
        i = self._cursor.i
        if not self.position and self.top[i] > kline.close * 1.05:
            self.buy()
        elif self.position and self.top[i] <= kline.close:
            self.close_position()


LEAKS = {
    ShiftBack: "signal", Centred: "signal", NormalisedByMax: "signal", DailyHigh: "signal",
    BackFilled: "signal", Cached: "signal", InitArray: "",
}


@pytest.mark.parametrize("cls", list(LEAKS), ids=[c.__name__ for c in LEAKS])
def test_every_planted_leak_is_caught_and_named(cls, fil) -> None:
    _CACHE.clear()
    arrays, times = fil
    findings, _ = check_decisions(cls("FILUSDT"), arrays, times)
    assert findings, f"{cls.__name__}: a leak passed the check"
    first = findings[0]
    assert first.indicator == LEAKS[cls], str(first)
    text = str(first)
    assert f"kline {first.index}" in text and str(first.open_time) in text
    if first.indicator:
        assert "uses future data" in text and repr(first.full_value) in text
    else:
        assert "reads data outside self.I" in text


@pytest.mark.parametrize("name", ["ema_cross", "rsi_reversion", "donchian_breakout"])
def test_the_bundled_strategies_pass_and_the_check_says_what_it_compared(name: str, fil) -> None:
    arrays, times = fil
    cls = build_registry().get(name)
    findings, checked = check_decisions(cls("FILUSDT", timeframe="1h"), arrays, times)
    assert findings == []
    assert checked.klines == sum(e - s for s, e in checked.windows) and checked.indicators >= 1
    assert "identical with and without the future" in str(checked)


def test_an_honest_copy_of_a_planted_strategy_passes(fil) -> None:
    arrays, times = fil
    findings, checked = check_decisions(Cross("FILUSDT"), arrays, times)
    assert findings == [] and checked.intents > 0  # it traded, and the trades matched
