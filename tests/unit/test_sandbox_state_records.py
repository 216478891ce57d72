"""The ``--state`` records: an order record carries every field, and records merge into an image."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kinetic_empire.core.enums import OrderStatus, OrderType, Side, TimeInForce, WorkingType
from kinetic_empire.exchange.orders import SimOrder
from kinetic_empire.exchange.state import _ORDER_FIELDS, _encode, _order, order_record
from kinetic_empire.sandbox.state import apply


def test_an_order_record_has_every_field_and_round_trips() -> None:
    order = SimOrder(order_id=7, client_order_id="c", symbol="FILUSDT", side=Side.SELL, order_type=OrderType.STOP,
                     quantity=Decimal("10"), price=Decimal("4.1"), trigger_price=Decimal("4.2"),
                     time_in_force=TimeInForce.GTC, reduce_only=True, close_position=False,
                     working_type=WorkingType.MARK_PRICE, is_algo=True, time=3, good_till_date=9)
    order.order_type, order.triggered, order.status = OrderType.LIMIT, True, OrderStatus.PARTIALLY_FILLED
    order.executed_qty, order.cum_quote, order.avg_price = Decimal("4"), Decimal("16.4"), Decimal("4.1")
    record = order_record(order)
    assert record == {f: _encode(getattr(order, f)) for f in _ORDER_FIELDS}
    back = _order(record)
    assert all(getattr(back, f) == getattr(order, f) for f in SimOrder.__slots__)


def test_records_merge_into_an_image() -> None:
    image: dict[str, Any] = {"seq": 3, "replay": {"i": 1, "phase": 0, "series": {"A": [1], "B": [1]}},
             "accounts": {"d": {"wallet": "10", "books": {}, "orders": {"1": {"s": "NEW"}}, "trades": [{"id": 1}],
                                "income": [], "ids": {"order": 2}, "reserved": {"order": 1002}}}}
    apply(image, {"seq": 4, "replay": {"i": 2, "series": {"B": [2]}},
                  "accounts": {"d": {"orders": {"1": {"s": "FILLED"}, "2": {"s": "NEW"}}, "trades": [{"id": 2}],
                                     "ids": {"order": 3}}, "e": {"wallet": "5"}}})
    assert image["seq"] == 4 and image["replay"] == {"i": 2, "phase": 0, "series": {"A": [1], "B": [2]}}
    d = image["accounts"]["d"]
    assert d["orders"] == {"1": {"s": "FILLED"}, "2": {"s": "NEW"}} and d["trades"] == [{"id": 1}, {"id": 2}]
    assert d["wallet"] == "10" and d["ids"] == {"order": 3} and d["reserved"] == {"order": 1002}
    assert image["accounts"]["e"]["wallet"] == "5"
