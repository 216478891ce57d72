"""Multi-timeframe trend following: EMA crosses on the strategy's timeframe, taken only in the direction of
the trend on a higher timeframe (an EMA of its closes, visible once each higher kline has closed)."""

import numpy as np

from kinetic_empire import Param, Strategy, crossover, crossunder
from kinetic_empire.indicators import ema
from kinetic_empire.strategy.act_mask import crossed, whole


class MtfTrend(Strategy):
    """Long on a fast/slow EMA cross up while the close is above the higher-timeframe EMA; short on a cross
    down while below it; a cross against the position closes it. Every entry carries a stop."""

    timeframe = "15m"
    trend_timeframe = Param("4h", "the higher timeframe whose EMA sets the direction")
    trend = Param(20, "higher-timeframe EMA period", min=2)
    fast = Param(10, "fast EMA period", min=2)
    slow = Param(30, "slow EMA period", min=3)
    stop_pct = Param(2.0, "stop-loss distance, percent of the entry", min=0.1, max=50.0)

    def init(self):
        self.trend_ema = self.I(ema, self.close, self.trend, timeframe=self.trend_timeframe)
        self.fast_ema = self.I(ema, self.close, self.fast)
        self.slow_ema = self.I(ema, self.close, self.slow)

    def act_mask(self):  # every action needs a cross, and a higher-timeframe EMA (NaN: on_kline returns)
        return crossed(self.fast_ema, self.slow_ema) & ~np.isnan(whole(self.trend_ema))

    def on_kline(self, kline):
        trend = self.trend_ema[-1]
        if trend != trend:  # NaN: no higher kline has closed yet
            return
        up, down = crossover(self.fast_ema, self.slow_ema), crossunder(self.fast_ema, self.slow_ema)
        stop = self.stop_pct / 100
        if up and kline.close > trend:
            self.buy(stop_loss=kline.close * (1 - stop), tag="with-trend")
        elif down and kline.close < trend:
            self.sell(stop_loss=kline.close * (1 + stop), tag="with-trend")
        elif (up and self.position.is_short) or (down and self.position.is_long):
            self.close_position(tag="cross-against")
