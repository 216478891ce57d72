"""EMA cross with a stop that moves: to break-even at one risk unit of profit, then a trailing stop."""

from kinetic_empire import Param, Strategy, crossover, crossunder
from kinetic_empire.indicators import atr, ema


class TrailingBreakeven(Strategy):
    """Enter on an EMA cross with a stop ``atr_stop`` ATRs away (one risk unit, R). Once the close is one R in
    profit the stop moves to the entry price (``set_stop``: break-even); at ``trail_at`` R it becomes a
    trailing stop ``trail_pct`` percent behind the best price (Binance's TRAILING_STOP_MARKET). The opposite
    cross exits (or flips)."""

    timeframe = "1h"
    fast = Param(12, "fast EMA period", min=2)
    slow = Param(26, "slow EMA period", min=3)
    atr_period = Param(14, "ATR period", min=2)
    atr_stop = Param(2.0, "initial stop distance in ATRs (one risk unit)", min=0.1)
    trail_at = Param(2.0, "profit, in risk units, at which the stop starts trailing", min=1.0)
    trail_pct = Param(1.0, "trailing distance in percent (0.1 to 10)", min=0.1, max=10.0)

    def init(self):
        self.fast_ema = self.I(ema, self.close, self.fast)
        self.slow_ema = self.I(ema, self.close, self.slow)
        self.atr = self.I(atr, self.high, self.low, self.close, self.atr_period)

    def on_start(self):
        self.risk = 0.0  # the entry's risk unit, in price
        self.stage = "initial"  # then "breakeven", then "trailing"

    def on_kline(self, kline):
        close = kline.close
        if crossover(self.fast_ema, self.slow_ema):
            self._enter(close, long=True)
            return
        if crossunder(self.fast_ema, self.slow_ema):
            self._enter(close, long=False)
            return
        if not self.position or self.risk <= 0:
            return
        entry = self.position.entry_price
        gained = (close - entry if self.position.is_long else entry - close) / self.risk
        if self.stage == "initial" and gained >= 1.0:
            self.set_stop(entry, tag="break-even")
            self.stage = "breakeven"
        elif self.stage == "breakeven" and gained >= self.trail_at:
            self.set_stop(trail_pct=self.trail_pct, tag="trailing")
            self.stage = "trailing"

    def _enter(self, close, long):
        self.risk = self.atr[-1] * self.atr_stop
        self.stage = "initial"
        if long:
            self.buy(stop_loss=close - self.risk, tag="cross up")
        else:
            self.sell(stop_loss=close + self.risk, tag="cross down")

    def on_fill(self, fill):
        if not self.position:
            self.stage = "initial"
