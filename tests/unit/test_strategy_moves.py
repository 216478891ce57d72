"""set_stop and target_position from a strategy, end to end in a backtest (strategy -> risk -> exchange)."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.core.enums import OrderStatus, OrderType
from kinetic_empire.data import KlineFrame
from kinetic_empire.strategy import Strategy
from kinetic_empire.strategy.registry import StrategyRegistry

MIN = 60_000
START = 1_690_848_000_000


def frame(closes: list[float], spread: float = 0.005) -> KlineFrame:
    c = np.asarray(closes, dtype=np.float64)
    o = np.concatenate([[c[0]], c[:-1]])
    return KlineFrame("FILUSDT", "1m", START + np.arange(len(c), dtype=np.int64) * MIN, o,
                      np.maximum(o, c) + spread, np.minimum(o, c) - spread, c, np.full(len(c), 1000.0))


def run(strategy: type[Strategy], closes: list[float]) -> object:
    cfg = BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 10_000, "funding_rate": 0},
        "strategies": [{"name": strategy.strategy_name(), "symbols": ["FILUSDT"], "timeframe": "1m"}],
        "risk": {"default_leverage": 2, "sizing": {"method": "fixed_notional", "notional": 400}},
    })
    registry = StrategyRegistry()
    registry.add(strategy, "test")
    return Backtest(cfg, registry, frames={"FILUSDT": frame(closes)}).run()


class Ratchet(Strategy):
    """Long at the first kline with a stop at 3.5; at 4.4 the stop moves to break-even (4.0)."""

    name = "ratchet"
    timeframe = "1m"

    def on_start(self):
        self.moved = False
        self.denied = []

    def on_kline(self, kline):
        if not self.position and not self.moved:
            self.buy(stop_loss=3.5)
        elif self.position and not self.moved and kline.close >= 4.4:
            self.set_stop(self.position.entry_price)
            self.set_stop(kline.close + 1)  # wrong side: denied, and the good move stands
            self.moved = True

    def on_order_rejected(self, rejection):
        self.denied.append(rejection.code)


def test_a_ratcheted_stop_closes_at_break_even_not_at_the_first_stop() -> None:
    closes = [4.0, 4.0, 4.2, 4.4, 4.3, 4.1, 3.9, 3.6, 3.4]
    result = run(Ratchet, closes)
    (trade,) = result.portfolio.trades
    assert trade.exit_reason == "stop_loss" and trade.exit_price == D("4.000") and trade.entry_price == D("4.000")
    (strategy,) = [r.strategy for r in result.runners]
    assert strategy.denied == ["STOP_WRONG_SIDE"]
    orders = list(result.exchange._orders.values())
    first = [o for o in orders if o.close_position]
    assert [o.status for o in first] == [OrderStatus.CANCELED]  # replaced, never fired at 3.5


class Rebalance(Strategy):
    """Holds a scripted signed target at each kline."""

    name = "rebalance"
    timeframe = "1m"
    targets = (D("100"), D("250"), D("50"), D("-150"), D("-150"), D("0"))

    def on_start(self):
        self.seen = []
        self.i = 0

    def on_kline(self, kline):
        self.seen.append(D(repr(self.position.size)))
        if self.i < len(self.targets):
            self.target_position(self.targets[self.i])
            self.i += 1


def test_target_positions_reach_each_target_with_reduce_only_reductions() -> None:
    result = run(Rebalance, [4.0] * 9)
    (strategy,) = [r.strategy for r in result.runners]
    assert strategy.seen[:7] == [D(0), D(100), D(250), D(50), D(-150), D(-150), D(0)]  # -150 twice: nothing sent
    orders = [o for o in result.exchange._orders.values() if o.orig_type is OrderType.MARKET]
    shape = [(o.side.value, o.quantity, o.reduce_only) for o in orders]
    assert shape == [("BUY", D(100), False), ("BUY", D(150), False), ("SELL", D(200), True),
                     ("SELL", D("50.0"), True), ("SELL", D(150), False), ("BUY", D("150.0"), True)]
