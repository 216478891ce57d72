"""The adapter's wire for trailing stops: a TRAILING_STOP_MARKET request goes to the algo endpoint with Binance's
parameter names (callbackRate, activatePrice, no triggerPrice), and the algo reply reads back as the order."""

from __future__ import annotations

from decimal import Decimal as D

from kinetic_empire.binance.wire import ALGO_PATH, accepted_from_rest, order_params
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import OrderRequest


def _request(**kw) -> OrderRequest:
    return OrderRequest(client_order_id="s1-9-ts", intent_id="s1-3", strategy_id="s1", symbol="FILUSDT",
                        side=Side.SELL, order_type=OrderType.TRAILING_STOP_MARKET, quantity=D("25.0"),
                        reduce_only=True, callback_rate=D("1.3"), ts_event=1, ts_init=1, **kw)


def test_trailing_stop_params() -> None:
    path, p = order_params(_request(activation_price=D("4.310")))
    assert path == ALGO_PATH
    assert p == {"algoType": "CONDITIONAL", "symbol": "FILUSDT", "side": "SELL", "type": "TRAILING_STOP_MARKET",
                 "workingType": "CONTRACT_PRICE", "clientAlgoId": "s1-9-ts", "callbackRate": D("1.3"),
                 "activatePrice": D("4.310"), "quantity": D("25.0"), "reduceOnly": "true"}
    _, p = order_params(_request())
    assert "activatePrice" not in p and "triggerPrice" not in p


def test_algo_reply_of_a_trailing_stop() -> None:
    reply = {"algoId": 7, "clientAlgoId": "s1-9-ts", "algoType": "CONDITIONAL", "orderType": "TRAILING_STOP_MARKET",
             "symbol": "FILUSDT", "side": "SELL", "quantity": "25.0", "algoStatus": "NEW", "triggerPrice": "0.000",
             "price": "0.000", "reduceOnly": True, "closePosition": False, "activatePrice": "4.310",
             "callbackRate": "1.3", "createTime": 5}
    got = accepted_from_rest(reply, 9)
    assert (got.order_type, got.quantity, got.trigger_price, got.reduce_only) == (
        OrderType.TRAILING_STOP_MARKET, D("25.0"), None, True)
