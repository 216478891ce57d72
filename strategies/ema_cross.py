"""EMA crossover: the smallest useful strategy."""

from kinetic_empire import Param, Strategy, crossover, crossunder
from kinetic_empire.indicators import ema
from kinetic_empire.strategy.act_mask import crossed


class EmaCross(Strategy):
    """Long when the fast EMA crosses above the slow one, short when it crosses below."""

    timeframe = "1h"
    fast = Param(20, "fast EMA period", min=2)
    slow = Param(50, "slow EMA period", min=3)
    long_only = Param(False, "never go short; close the long instead")

    def init(self):
        self.fast_ema = self.I(ema, self.close, self.fast)
        self.slow_ema = self.I(ema, self.close, self.slow)

    def act_mask(self):  # on_kline acts only where the EMAs cross: a backtest skips the other klines
        return crossed(self.fast_ema, self.slow_ema)

    def on_kline(self, kline):
        if crossover(self.fast_ema, self.slow_ema):
            self.buy()
        elif crossunder(self.fast_ema, self.slow_ema):
            if self.long_only:
                self.close_position()
            else:
                self.sell()
