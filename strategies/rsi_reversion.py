"""RSI mean reversion with a stop-loss and take-profit around the entry."""

from kinetic_empire import Param, Strategy
from kinetic_empire.indicators import rsi


class RsiReversion(Strategy):
    """Buy when RSI is oversold, sell short when overbought; exit when RSI returns to the middle.

    Every entry carries a protective stop and a take-profit at fixed percentages of the close.
    """

    timeframe = "15m"
    period = Param(14, "RSI period", min=2)
    oversold = Param(30.0, "enter long below this RSI", min=0, max=50)
    overbought = Param(70.0, "enter short above this RSI", min=50, max=100)
    exit_level = Param(50.0, "close when RSI crosses back through this level", min=0, max=100)
    stop_pct = Param(2.0, "stop-loss distance, percent of entry", min=0.05)
    target_pct = Param(3.0, "take-profit distance, percent of entry", min=0.05)

    def init(self):
        self.rsi = self.I(rsi, self.close, self.period)

    def on_kline(self, kline):
        value, price = self.rsi[-1], kline.close
        stop, target = self.stop_pct / 100, self.target_pct / 100
        if not self.position:
            if value < self.oversold:
                self.buy(stop_loss=price * (1 - stop), take_profit=price * (1 + target), tag="oversold")
            elif value > self.overbought:
                self.sell(stop_loss=price * (1 + stop), take_profit=price * (1 - target), tag="overbought")
        elif self.position.is_long and value >= self.exit_level:
            self.close_position(tag="rsi back to middle")
        elif self.position.is_short and value <= self.exit_level:
            self.close_position(tag="rsi back to middle")
