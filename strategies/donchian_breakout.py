"""Donchian channel breakout with an ATR stop."""

from kinetic_empire import Param, Strategy
from kinetic_empire.indicators import atr, donchian
from kinetic_empire.strategy.act_mask import previous, whole


class DonchianBreakout(Strategy):
    """Enter on a close beyond the previous N-kline channel, stop K ATRs away, exit on the opposite
    M-kline channel break (the classic turtle rules, both directions)."""

    timeframe = "1h"
    entry_period = Param(20, "breakout channel length", min=2)
    exit_period = Param(10, "exit channel length", min=2)
    atr_period = Param(14, "ATR period", min=2)
    atr_stop = Param(2.0, "stop distance in ATRs", min=0.1)

    def init(self):
        self.entry_low, self.entry_high = self.I(donchian, self.high, self.low, self.entry_period, name="entry")
        self.exit_low, self.exit_high = self.I(donchian, self.high, self.low, self.exit_period, name="exit")
        self.atr = self.I(atr, self.high, self.low, self.close, self.atr_period)

    def act_mask(self):
        """Every action needs the close beyond a previous channel: entries beyond the entry channel, exits beyond
        the exit channel (whatever the position, so all four; NaN compares False, as in on_kline)."""
        close = whole(self.close)
        return ((close > previous(self.entry_high)) | (close < previous(self.entry_low))
                | (close < previous(self.exit_low)) | (close > previous(self.exit_high)))

    def on_kline(self, kline):
        close, risk = kline.close, self.atr[-1] * self.atr_stop
        if not self.position:
            if close > self.entry_high[-2]:
                self.buy(stop_loss=close - risk, tag="breakout up")
            elif close < self.entry_low[-2]:
                self.sell(stop_loss=close + risk, tag="breakout down")
        elif self.position.is_long and close < self.exit_low[-2]:
            self.close_position(tag="exit channel")
        elif self.position.is_short and close > self.exit_high[-2]:
            self.close_position(tag="exit channel")
