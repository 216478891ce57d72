"""Test strategies for mark price, ticker and state (loaded by tests only)."""

from __future__ import annotations

from kinetic_empire.strategy import Param, Strategy


class MarkProbe(Strategy):
    """Counts what it is fed in ``self.state`` (a counter that must survive a restart) and remembers funding."""

    timeframe = "1m"
    entry_at = Param(0, "go short after this many klines (0: never)")

    def on_start(self) -> None:
        for key in ("klines", "marks", "tickers"):
            self.state.setdefault(key, 0)

    def on_kline(self, kline):
        self.state["klines"] += 1
        if self.entry_at and self.state["klines"] == self.entry_at:
            self.sell(quantity=100)

    def on_mark_price(self, update):
        self.state["marks"] += 1
        self.state["mark"] = self.mark_price
        self.state["funding_rate"] = self.funding_rate
        self.state["next_funding_time"] = self.next_funding_time

    def on_ticker(self, ticker):
        self.state["tickers"] += 1
        self.state["last"] = ticker.last_price


class MarkOnly(Strategy):
    timeframe = "1m"

    def on_mark_price(self, update):
        self.state["marks"] = self.state.get("marks", 0) + 1


class KlinesOnly(Strategy):
    timeframe = "1m"

    def on_kline(self, kline):
        self.state["n"] = self.state.get("n", 0) + 1


class BadState(Strategy):
    timeframe = "1m"

    def on_kline(self, kline):
        self.state["seen"] = {kline.open_time}  # a set: JSON cannot hold it
