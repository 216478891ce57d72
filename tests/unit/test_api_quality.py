"""Execution quality from bus events: slippage signed against us, per order and in total, latency basis,
rejections by code."""

from __future__ import annotations

from decimal import Decimal

from kinetic_empire.core.enums import IntentAction, OrderStatus, OrderType, Side
from kinetic_empire.core.events import OrderAccepted, OrderFilled, OrderIntent, OrderRejected, OrderRequest
from kinetic_empire.live.execution_quality import ExecutionQuality, render_section


def _intent(iid: str, ref: float) -> OrderIntent:
    return OrderIntent(intent_id=iid, strategy_id="s", symbol="FILUSDT", action=IntentAction.OPEN_LONG,
                       reference_price=ref, ts_event=0, ts_init=0)


def _request(cid: str, iid: str, side: Side, *, t: int, trigger: str | None = None) -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id=iid, strategy_id="s", symbol="FILUSDT", side=side,
                        order_type=OrderType.STOP_MARKET if trigger else OrderType.MARKET,
                        quantity=None if trigger else Decimal("10"),
                        trigger_price=Decimal(trigger) if trigger else None, close_position=bool(trigger),
                        ts_event=t, ts_init=t)


def _fill(cid: str, side: Side, qty: str, price: str, t: int, done: bool = True) -> OrderFilled:
    return OrderFilled(client_order_id=cid, order_id=1, trade_id=t, symbol="FILUSDT", side=side,
                       order_type=OrderType.MARKET, quantity=Decimal(qty), price=Decimal(price),
                       commission=Decimal(0), realized_pnl=Decimal(0), is_maker=False,
                       status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, ts_event=t, ts_init=t)


def test_slippage_latency_and_rejections() -> None:
    q = ExecutionQuality(speed=100)
    q.on_event(_intent("a", 4.0))
    q.on_event(_request("a-e", "a", Side.BUY, t=1_000))
    q.on_event(OrderAccepted(client_order_id="a-e", order_id=1, symbol="FILUSDT", side=Side.BUY,
                             order_type=OrderType.MARKET, quantity=Decimal(10), price=None, trigger_price=None,
                             reduce_only=False, ts_event=1_500, ts_init=1_500))
    assert q.on_event(_fill("a-e", Side.BUY, "4", "4.004", 3_000, done=False)) == 10.0  # paid 10 bps more
    assert q.on_event(_fill("a-e", Side.BUY, "6", "4.000", 3_000)) == 0.0
    # a stop is measured against its trigger: a sell below it is worse for us (positive)
    q.on_event(_request("a-sl", "a", Side.SELL, t=5_000, trigger="3.9"))
    assert q.on_event(_fill("a-sl", Side.SELL, "10", "3.861", 9_000)) == 100.0
    q.on_event(_intent("b", 4.0))
    q.on_event(_request("b-e", "b", Side.BUY, t=10_000))
    q.on_event(OrderRejected(client_order_id="b-e", symbol="FILUSDT", code=-2019, reason="Margin is insufficient.",
                             ts_event=10_100, ts_init=10_100))
    s = q.summary()
    assert s["orders"] == 3 and s["filled_orders"] == 2 and s["rejected_orders"] == 1
    assert s["rejections_by_code"] == {"-2019": {"count": 1, "reason": "Margin is insufficient."}}
    assert Decimal(s["slippage_total_quote"]) == Decimal("0.016") + Decimal("0.39")
    assert s["slippage_fill_bps"]["n"] == 3 and s["slippage_fill_bps"]["max"] == 100.0
    assert s["latency_ms"]["ack"]["p50"] == 5.0  # 500 ms of market time at 100x
    assert s["latency_ms"]["first_fill"]["n"] == 2
    rows = q.per_order_csv().decode().splitlines()
    assert rows[0].startswith("client_order_id,") and len(rows) == 4
    assert rows[1].split(",")[8] == "4.000"  # a-e: 4 of 10 at +10 bps
    html = render_section(s)
    assert "Execution quality" in html and "-2019" in html


def test_no_orders_is_not_an_error() -> None:
    s = ExecutionQuality().summary()
    assert s["orders"] == 0 and s["fill_rate"] is None and s["latency_ms"]["ack"]["n"] == 0
    assert "n/a" in render_section(s)
