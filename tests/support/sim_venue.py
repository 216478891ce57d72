"""A simulated exchange with FILUSDT driven kline by kline, recording what it emits (no tests here)."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange

T0 = 1_690_848_000_000


class Venue:
    """A simulated exchange with FILUSDT (no funding), recording what it emits."""

    def __init__(self, rules: Any, brackets: Any, **config: Any) -> None:
        self.clock = ReplayClock(T0 - 60_000)
        self.events: list[Any] = []
        self.ex = SimulatedExchange(rules, brackets, clock=self.clock, emit=self.events.append,
                                    config=ExchangeConfig(**{"funding_rate": D(0), **config}), symbols=["FILUSDT"])
        self.t = T0 - 60_000
        self.bar(4.0, 4.0, 4.0, 4.0)

    def bar(self, o: float, h: float, low: float, c: float) -> None:
        self.t += 60_000
        self.clock.advance_to(self.t + 59_999)
        self.ex.on_bar("FILUSDT", self.t, o, h, low, c)

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def _order(self, side: Side, qty: str) -> Any:
        return self.ex.submit(symbol="FILUSDT", side=side, order_type=OrderType.MARKET, quantity=D(qty))

    def buy(self, qty: str) -> Any:
        return self._order(Side.BUY, qty)

    def sell(self, qty: str) -> Any:
        return self._order(Side.SELL, qty)

