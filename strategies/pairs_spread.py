"""Pairs mean reversion on two symbols: trade the spread of their log prices when it strays from its mean.

One instance trades both legs (``multi_symbol = True``): when the spread's z-score over ``lookback`` klines
leaves the band (``entry_z``), it shorts the rich leg and buys the cheap one; when the z-score comes back
inside ``exit_z`` it closes both. Each leg is an ordinary order for its symbol, sized by the risk manager.

    strategies:
      - name: pairs_spread
        symbols: [FILUSDT, NEARUSDT]     # exactly two: the first is leg A, the second leg B
        timeframe: 1h
"""

import numpy as np

from kinetic_empire import Param, Strategy
from kinetic_empire.indicators import bollinger


def spread_zscore(a, b, period):
    """z-score of log(a) - log(b) against its mean and deviation over the last ``period`` klines (the
    current one included; NaN before): Bollinger bands of one deviation around the spread. Each value uses
    only its own window, so a live recomputation on a shorter history gives the same value bit for bit."""
    spread = np.log(np.asarray(a, dtype=np.float64)) - np.log(np.asarray(b, dtype=np.float64))
    _, mean, upper = bollinger(spread, int(period), 1.0)
    deviation = upper - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(deviation > 0, (spread - mean) / deviation, np.where(np.isnan(mean), np.nan, 0.0))


class PairsSpread(Strategy):
    """Short the rich leg and buy the cheap one when the spread's z-score leaves the band; flat on reversion."""

    multi_symbol = True
    timeframe = "1h"
    lookback = Param(48, "klines of spread mean and deviation", min=5)
    entry_z = Param(2.0, "open when |z| exceeds this", min=0.1)
    exit_z = Param(0.5, "close both legs when |z| falls below this", min=0.0)

    def init(self):
        if len(self.symbols) != 2:
            raise ValueError(f"pairs_spread trades exactly two symbols, got {len(self.symbols)}")
        self.leg_a, self.leg_b = self.symbols
        self.z = self.I(spread_zscore, self.data[self.leg_a].close, self.data[self.leg_b].close, self.lookback,
                        name="spread_z")

    def on_kline(self, kline):
        a, b = self.leg_a, self.leg_b
        z = self.z[-1]
        held_a, held_b = self.position_of(a), self.position_of(b)
        if not held_a and not held_b:
            if z > self.entry_z:  # A rich against B
                self.sell(symbol=a, tag="spread_high")
                self.buy(symbol=b, tag="spread_high")
            elif z < -self.entry_z:
                self.buy(symbol=a, tag="spread_low")
                self.sell(symbol=b, tag="spread_low")
        elif abs(z) < self.exit_z:
            for leg, held in ((a, held_a), (b, held_b)):
                if held:
                    self.close_position(symbol=leg, tag="reverted")
