"""Binance's JSON shapes, read and written at the boundary; nothing here leaves the adapter as a dict.

Decimals are parsed from their strings (never through float) for money; kline prices become floats
because they only feed indicator math and comparisons (CONVENTIONS 3).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..core.enums import OrderStatus, OrderType, Side
from ..core.events import KlineClosed, OrderAccepted, OrderRequest, new_kline
from ..core.timeframes import TIMEFRAME_MS

ZERO = Decimal(0)

ORDER_PATH = "/fapi/v1/order"
ALGO_PATH = "/fapi/v1/algoOrder"


class WireError(ValueError):
    """A payload that does not have Binance's shape."""


def dec(value: Any, default: Decimal = ZERO) -> Decimal:
    if value is None or value == "":
        return default
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise WireError(f"not a decimal: {value!r}") from None
    if not out.is_finite():
        raise WireError(f"not a finite decimal: {value!r}")
    return out


def opt_dec(value: Any) -> Decimal | None:
    d = dec(value)
    return d if d != 0 else None


# ------------------------------------------------------------------------------------------- klines


def stream_name(symbol: str, timeframe: str) -> str:
    return f"{symbol.lower()}@kline_{timeframe}"


def kline_from_stream(k: Mapping[str, Any], ts_init: int) -> KlineClosed:
    """The ``k`` object of a kline stream event (reference 8.2) as a KlineClosed (the caller checks ``x``)."""
    try:
        t = int(k["t"])
        return new_kline(
            str(k["s"]), str(k["i"]), t, float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), float(k["v"]),
            t + TIMEFRAME_MS[k["i"]] - 1, ts_init,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"kline payload without {exc}: {str(k)[:120]}") from None


def kline_from_rest(row: list[Any], symbol: str, timeframe: str, ts_init: int) -> KlineClosed:
    """One row of ``GET /fapi/v1/klines``: [openTime, o, h, l, c, v, closeTime, ...]."""
    try:
        t = int(row[0])
        return new_kline(symbol, timeframe, t, float(row[1]), float(row[2]), float(row[3]), float(row[4]),
                         float(row[5]), t + TIMEFRAME_MS[timeframe] - 1, ts_init)
    except (IndexError, TypeError, ValueError) as exc:
        raise WireError(f"kline row {str(row)[:120]}: {exc}") from None


# ------------------------------------------------------------------------------------------- orders


def is_algo(order_type: OrderType) -> bool:
    """Conditional types go to the algo service since 2025-12-09 (reference 3.2)."""
    return order_type.is_conditional


def order_params(r: OrderRequest) -> tuple[str, dict[str, Any]]:
    """(path, parameters) placing ``r``; the client id is the request's, so a retry is recognisable."""
    if is_algo(r.order_type):
        p: dict[str, Any] = {
            "algoType": "CONDITIONAL",
            "symbol": r.symbol,
            "side": r.side.value,
            "type": r.order_type.value,
            "triggerPrice": r.trigger_price,
            "workingType": r.working_type.value,
            "clientAlgoId": r.client_order_id,
        }
        if r.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT):
            p["price"] = r.price
            p["timeInForce"] = (r.time_in_force.value if r.time_in_force else "GTC")
        if r.order_type is OrderType.TRAILING_STOP_MARKET:  # no triggerPrice: callbackRate, activatePrice
            del p["triggerPrice"]
            p["callbackRate"] = r.callback_rate
            if r.activation_price is not None:
                p["activatePrice"] = r.activation_price
        if r.close_position:
            p["closePosition"] = "true"
        else:
            p["quantity"] = r.quantity
            if r.reduce_only:
                p["reduceOnly"] = "true"
        return ALGO_PATH, p
    # ``_value_``: the member's value as a plain attribute (``.value`` is a property: enum's Python code per read)
    p = {"symbol": r.symbol, "side": r.side._value_, "type": r.order_type._value_, "quantity": r.quantity}
    if r.order_type is OrderType.LIMIT:
        p["price"] = r.price
        p["timeInForce"] = r.time_in_force.value if r.time_in_force else "GTC"
    if r.reduce_only:
        p["reduceOnly"] = "true"
    p["newClientOrderId"] = r.client_order_id
    return ORDER_PATH, p


def query_params(symbol: str, client_id: str, algo: bool) -> tuple[str, dict[str, Any]]:
    """(path, parameters) looking an order up (or cancelling it) by our client id."""
    if algo:
        return ALGO_PATH, {"clientAlgoId": client_id}
    return ORDER_PATH, {"symbol": symbol, "origClientOrderId": client_id}


def order_status(data: Mapping[str, Any]) -> OrderStatus:
    """Status of an order or algo object; algo statuses map to the plain ones they mean for us."""
    if "algoStatus" in data:
        raw = str(data["algoStatus"])
        return {
            "NEW": OrderStatus.NEW, "TRIGGERING": OrderStatus.NEW, "TRIGGERED": OrderStatus.NEW,
            "FINISHED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED, "EXPIRED": OrderStatus.EXPIRED,
            "REJECTED": OrderStatus.REJECTED,
        }.get(raw, OrderStatus.NEW)
    try:
        return OrderStatus(str(data.get("status", "NEW")))
    except ValueError:
        return OrderStatus.NEW


FORCED_PREFIXES = ("autoclose-", "adl_autoclose")  # client ids of liquidation and ADL orders (reference 8.3)


def order_type_of(o: Mapping[str, Any]) -> OrderType | None:
    """The order's type: its original type (``ot``), else the current one (``o``); None if neither is ours."""
    for raw in (o.get("ot"), o.get("o")):
        try:
            return OrderType(str(raw))
        except ValueError:
            continue
    return None


def fill_status(o: Mapping[str, Any]) -> OrderStatus:
    """FILLED or PARTIALLY_FILLED after this fill: Binance's own if it says one, else cumulative vs ordered."""
    raw = o.get("X")
    if raw in (OrderStatus.FILLED.value, OrderStatus.PARTIALLY_FILLED.value):
        return OrderStatus(raw)
    ordered, cumulative = dec(o.get("q")), dec(o.get("z"))
    return OrderStatus.FILLED if ordered == 0 or cumulative >= ordered else OrderStatus.PARTIALLY_FILLED


def accepted_from_rest(data: Mapping[str, Any], ts_init: int) -> OrderAccepted:
    """OrderAccepted from a placement reply or a query result (plain or algo)."""
    try:
        if "algoId" in data:
            ts = int(data.get("createTime") or data.get("updateTime") or ts_init)
            close = bool(data.get("closePosition", False))
            return OrderAccepted(
                client_order_id=str(data["clientAlgoId"]), order_id=int(data["algoId"]), symbol=str(data["symbol"]),
                side=Side(data["side"]), order_type=OrderType(str(data.get("orderType") or data.get("type"))),
                quantity=None if close else dec(data.get("quantity")), price=opt_dec(data.get("price")),
                trigger_price=opt_dec(data.get("triggerPrice")), reduce_only=bool(data.get("reduceOnly", False)),
                close_position=close, ts_event=ts, ts_init=ts_init,
            )
        otype = OrderType(data.get("origType") or data["type"])
        return OrderAccepted(
            client_order_id=str(data["clientOrderId"]), order_id=int(data["orderId"]), symbol=str(data["symbol"]),
            side=Side(data["side"]), order_type=otype, quantity=dec(data.get("origQty")),
            price=opt_dec(data.get("price")), trigger_price=opt_dec(data.get("stopPrice")),
            reduce_only=bool(data.get("reduceOnly", False)), close_position=bool(data.get("closePosition", False)),
            ts_event=int(data.get("updateTime") or data.get("time") or ts_init), ts_init=ts_init,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"order payload {str(dict(data))[:160]}: {exc}") from None


def unwrap(message: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """A combined-stream message ``{"stream":..,"data":..}`` or a raw event."""
    if "stream" in message and "data" in message:
        data = message["data"]
        if type(data) is not dict and not isinstance(data, Mapping):  # (json's dicts skip the ABC's check)
            raise WireError(f"stream data is not an object: {str(data)[:80]}")
        return str(message["stream"]), data
    return None, message


_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads(raw: str | bytes) -> Any:
    """``json.loads(raw)``, the same value or error: a text message is read by json's C scanner directly, without the
    three Python layers around it (``loads``, ``decode``, ``raw_decode`` and its two whitespace matches), which a
    kline after an idle wait runs cold on its way to an order. Anything else (bytes, whitespace around the value,
    bad JSON) goes through ``json.loads`` itself, so errors read the same."""
    if type(raw) is str:
        try:
            value, end = _SCAN(raw, 0)
        except (StopIteration, ValueError):
            return json.loads(raw)
        if end == len(raw):
            return value
    return json.loads(raw)
