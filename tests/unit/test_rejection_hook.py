"""``on_order_rejected`` receives one type, OrderRejection, for risk denials and exchange rejections."""

from __future__ import annotations

from kinetic_empire import OrderRejection, Strategy
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.events import OrderRejected, RiskDenied
from kinetic_empire.strategy.runner import StrategyRunner


class Listens(Strategy):
    timeframe = "1m"

    def on_start(self):
        self.rejections = []

    def on_order_rejected(self, rejection):
        self.rejections.append(rejection)


def test_both_sources_arrive_as_one_typed_rejection_for_this_strategy_only():
    bus = EventBus()
    s = Listens("FILUSDT")
    runner = StrategyRunner(s, bus, ManualClock(start_ms=0), strategy_id="s1", id_prefix="ke1-s1", window=50)
    runner.start()
    denied = RiskDenied(intent_id="ke1-s1-3", strategy_id="s1", symbol="FILUSDT", code="NOTIONAL_BELOW_MIN",
                        message="NOTIONAL_BELOW_MIN: min=5 notional=1.2", ts_event=10, ts_init=11)
    rejected = OrderRejected(client_order_id="ke1-s1-4", symbol="FILUSDT", code=-2019, reason="Margin is insufficient.",
                             ts_event=20, ts_init=21)
    for other in (
        RiskDenied(intent_id="x-1", strategy_id="s2", symbol="FILUSDT", code="X", message="m", ts_event=1, ts_init=1),
        OrderRejected(client_order_id="ke1-s2-1", symbol="FILUSDT", code=-1, reason="r", ts_event=1, ts_init=1),
        OrderRejected(client_order_id="ke1-s1-5", symbol="NEARUSDT", code=-1, reason="r", ts_event=1, ts_init=1),
    ):
        bus.publish(other)
    bus.publish(denied)
    bus.publish(rejected)
    assert [type(r) for r in s.rejections] == [OrderRejection, OrderRejection]
    risk, exchange = s.rejections
    assert (risk.source, risk.code, risk.reason, risk.order_id, risk.ts_event, risk.event) == (
        "risk", "NOTIONAL_BELOW_MIN", "NOTIONAL_BELOW_MIN: min=5 notional=1.2", "ke1-s1-3", 10, denied)
    assert (exchange.source, exchange.code, exchange.reason, exchange.order_id, exchange.ts_event, exchange.event) == (
        "exchange", "-2019", "Margin is insufficient.", "ke1-s1-4", 20, rejected)
