"""Plain order endpoints (reference 3.2): LIMIT and MARKET only; conditional types get -4120."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..core.enums import OrderType, Side, TimeInForce
from ..core.errors import ExchangeError
from ..exchange.orders import SimOrder
from .accounts import Account
from .endpoints import SIGNED, Ctx, Endpoint, by_symbol, ep
from .errors import (
    ApiError,
    bad_symbol,
    from_exchange,
    invalid,
    mandatory,
    no_such_order,
    not_required,
    unknown_order,
)
from .params import Params
from .wire import order_bytes, order_json

ORDER_PARAMS = (
    "symbol side positionSide type timeInForce quantity reduceOnly price newClientOrderId stopPrice closePosition "
    "activationPrice callbackRate workingType priceProtect newOrderRespType priceMatch selfTradePreventionMode "
    "goodTillDate"
)
_ORDER_NAMES = frozenset(ORDER_PARAMS.split())
PRICE_MATCH = ("NONE", "OPPONENT", "OPPONENT_5", "OPPONENT_10", "OPPONENT_20", "QUEUE", "QUEUE_5", "QUEUE_10",
               "QUEUE_20")
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
_ALGO_MSG = "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
_GTD_MAX = 253402300799000


def symbol_of(ctx: Ctx, p: Params) -> str:
    symbol = p.req("symbol")
    if symbol not in ctx.venue.rules:
        raise bad_symbol()
    return symbol


def tradable(ctx: Ctx, symbol: str) -> None:
    """Orders need a replayed price series; exchangeInfo lists more symbols than the data may hold."""
    if ctx.venue.market.get(symbol) is None:
        raise bad_symbol()


def position_side(ctx: Ctx, p: Params) -> None:
    ctx.acct.check_position_side(p.str("positionSide"))


def check_gtd(ctx: Ctx, tif: TimeInForce | None, gtd: int | None) -> int:
    if tif is not TimeInForce.GTD:
        return 0
    if gtd is None:
        raise mandatory("goodTillDate")
    gtd = gtd // 1000 * 1000
    if gtd <= ctx.venue.market_ms() + 600_000 or gtd >= _GTD_MAX:
        raise ApiError(-5040, "The goodTillDate timestamp must be greater than the current time plus 600 seconds "
                       "and smaller than 253402300799000 (UTC 9999-12-31 23:59:59)")
    return gtd


def duplicate_client_id(ctx: Ctx, symbol: str, client_id: str | None) -> None:
    if client_id is None:
        return
    existing = ctx.acct.exchange.find_order(symbol, client_order_id=client_id)
    if existing is not None and existing.is_open:
        raise ApiError(-4116, "clientOrderId is duplicated.")


def place(ctx: Ctx, p: Params, render: Callable[[Account, SimOrder], Any] = order_json) -> Any:
    """Validate (Binance's order: mandatory, enums, mode, filters, margin) and submit a plain order; the answer
    is the order object as ``render`` gives it (a dict, or its JSON text from :func:`.wire.order_bytes`)."""
    symbol = symbol_of(ctx, p)
    side = p.enum("side", Side, -1117, "Invalid side.", required=True)
    otype = p.enum("type", OrderType, -1116, "Invalid orderType.", required=True)
    assert side is not None and otype is not None
    if otype.is_conditional:
        raise ApiError(-4120, _ALGO_MSG)
    position_side(ctx, p)
    tif = p.enum("timeInForce", TimeInForce, -1115, "Invalid timeInForce.")
    quantity = p.decimal("quantity")
    price = p.decimal("price")
    reduce_only = p.bool("reduceOnly")
    client_id = p.client_id("newClientOrderId")
    resp_type = p.choice("newOrderRespType", ("ACK", "RESULT"))
    match = p.choice("priceMatch", PRICE_MATCH)
    p.choice("selfTradePreventionMode", STP_MODES)
    gtd = p.int("goodTillDate")
    if quantity is None:
        raise mandatory("quantity")
    if otype is OrderType.LIMIT:
        if tif is None:
            raise mandatory("timeInForce")
        if match not in (None, "NONE"):
            if price is not None:
                raise not_required("price")
            price = _matched_price(ctx, symbol, side)
        elif price is None:
            raise mandatory("price")
    else:
        if price is not None and price != 0:
            raise not_required("price")
        price, tif = None, None
    gtd_ms = check_gtd(ctx, tif, gtd)
    tradable(ctx, symbol)
    duplicate_client_id(ctx, symbol, client_id)
    try:
        sim = ctx.acct.exchange.submit(
            symbol=symbol, side=side, order_type=otype, quantity=quantity, price=price, time_in_force=tif,
            reduce_only=reduce_only, client_order_id=client_id or ctx.venue.new_client_id(), good_till_date=gtd_ms,
        )
    except ExchangeError as exc:
        raise from_exchange(exc) from None
    if otype is not OrderType.MARKET:
        return render(ctx.acct, sim)
    ack = render(ctx.acct, sim)
    fill_on_arrival(ctx, sim)
    return render(ctx.acct, sim) if resp_type == "RESULT" else ack


def fill_on_arrival(ctx: Ctx, sim: SimOrder) -> None:
    """A MARKET order takes the book at once (Binance), unless the sandbox runs in the opt-in
    ``market_fills="next_update"`` mode, where it waits in the queue for the next price update."""
    venue = ctx.venue
    s = venue.market.get(sim.symbol)
    if venue.config.market_fills != "arrival" or s is None or not s.last:
        return
    ctx.acct.exchange.fill_market_on_arrival(sim, venue.book.walk(s, sim.side is Side.BUY))


def _matched_price(ctx: Ctx, symbol: str, side: Side) -> Decimal:
    """priceMatch: the synthetic book is bid = last, ask = last + tick."""
    ex = ctx.acct.exchange
    last = ex.last_price(symbol)
    if not last:
        raise ApiError(-2010, "NEW_ORDER_REJECTED")
    return last


def _hidden(ctx: Ctx, wire_id: int) -> bool:
    """Executed under an unknown-outcome fault and not yet visible (FaultConfig.unknown_visible_after_ms)."""
    faults = ctx.venue.faults
    return bool(faults.hidden_until) and faults.hidden(ctx.acct.key.api_key, wire_id, ctx.venue.wall_ms())


def _lookup(ctx: Ctx, p: Params, symbol: str) -> SimOrder | None:
    order_id = p.int("orderId")
    client_id = p.str("origClientOrderId")
    if order_id is None and client_id is None:
        raise ApiError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
    return ctx.acct.find_order(symbol, order_id, client_id)


def new_order(ctx: Ctx) -> Any:
    return place(ctx, ctx.params, order_bytes)


def modify_order(ctx: Ctx) -> Any:
    """PUT /fapi/v1/order: a resting LIMIT order's price and quantity, both mandatory (reference 3.2)."""
    p = ctx.params
    symbol = symbol_of(ctx, p)
    side = p.enum("side", Side, -1117, "Invalid side.", required=True)
    quantity = p.decimal("quantity", True)
    price = p.decimal("price")
    if p.str("priceMatch") not in (None, "NONE"):
        if price is not None:
            raise not_required("price")
        assert side is not None
        price = _matched_price(ctx, symbol, side)
    elif price is None:
        raise mandatory("price")
    sim = _lookup(ctx, p, symbol)
    if sim is None:
        raise no_such_order()
    assert side is not None and quantity is not None
    try:
        ctx.acct.exchange.amend(symbol, side=side, quantity=quantity, price=price, order_id=sim.order_id)
    except ExchangeError as exc:
        raise from_exchange(exc) from None
    return order_json(ctx.acct, sim)


def get_order(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    sim = _lookup(ctx, p, symbol)
    if sim is None or _hidden(ctx, ctx.acct.wire_id(sim)):
        raise no_such_order()
    return order_bytes(ctx.acct, sim)


def cancel(ctx: Ctx, symbol: str, sim: SimOrder | None, render: Callable[[Account, SimOrder], Any] = order_json
           ) -> Any:
    if sim is None or not sim.is_open:
        raise unknown_order()
    try:
        ctx.acct.exchange.cancel(symbol, order_id=sim.order_id)
    except ExchangeError as exc:
        raise from_exchange(exc) from None
    return render(ctx.acct, sim)


def cancel_order(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    return cancel(ctx, symbol, _lookup(ctx, p, symbol), order_bytes)


def open_orders(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = p.str("symbol")
    if symbol is not None and symbol not in ctx.venue.rules:
        raise bad_symbol()
    return [order_json(ctx.acct, o) for o in ctx.acct.open_orders(symbol)]


def open_order(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    sim = _lookup(ctx, p, symbol)
    if sim is None or not sim.is_open:
        raise no_such_order()
    return order_bytes(ctx.acct, sim)


def window(ctx: Ctx, p: Params, days: int = 7) -> tuple[int, int]:
    """startTime/endTime, defaulting to the last ``days`` days of market time; at most ``days`` wide."""
    start, end = p.int("startTime"), p.int("endTime")
    span = days * 86_400_000
    if start is None and end is None:
        end = ctx.venue.market_ms()
        start = end - span
    elif start is None:
        assert end is not None
        start = end - span
    elif end is None:
        end = start + span
    if start > end:
        raise ApiError(-1023, "Start time is greater than end time.")
    if end - start > span:
        raise ApiError(-4166, f"Search window is restricted to recent {days} days only.")
    return start, end


def all_orders(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    limit = p.limit(500, 1000)
    acct = ctx.acct
    orders = acct.all_orders(symbol) if symbol in acct.exchange.symbols else []
    from_id = p.int("orderId")
    if from_id is not None:
        rows = sorted((o for o in orders if acct.wire_id(o) >= from_id), key=acct.wire_id)[:limit]
    else:
        start, end = window(ctx, p)
        rows = sorted((o for o in orders if start <= o.time <= end), key=lambda o: (o.time, acct.wire_id(o)))
        rows = rows[-limit:]
    return [order_json(acct, o) for o in rows]


def cancel_all(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    for sim in ctx.acct.open_orders(symbol):
        if sim.is_open:
            ctx.acct.exchange.cancel(symbol, order_id=sim.order_id)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def _json_list(p: Params, name: str, maximum: int, required: bool = True) -> list[Any] | None:
    raw = p.str(name, required)
    if raw is None:
        return None
    try:
        items = json.loads(raw)
    except json.JSONDecodeError:
        raise invalid(name) from None
    if not isinstance(items, list) or not items:
        raise invalid(name)
    if len(items) > maximum:
        raise ApiError(-4000 if name == "batchOrders" else -1130,
                       f"Data sent for parameter '{name}' is not valid." if name != "batchOrders"
                       else f"Invalid number of batch place orders: {len(items)}")
    return items


def batch_orders(ctx: Ctx) -> Any:
    items = _json_list(ctx.params, "batchOrders", 5)
    assert items is not None
    out: list[dict[str, Any]] = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise invalid("batchOrders")
            params = Params({str(k): _text(v) for k, v in item.items()})
            params.check_known(_ORDER_NAMES)
            out.append(place(ctx, params))
        except ApiError as err:
            out.append(err.as_dict())
    return out


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def cancel_batch(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    ids = _json_list(p, "orderIdList", 10, required=False)
    clients = _json_list(p, "origClientOrderIdList", 10, required=False) if ids is None else None
    if ids is None and clients is None:
        raise ApiError(-1102, "Param 'origClientOrderIdList' or 'orderIdList' must be sent, but both were empty/null!")
    out: list[dict[str, Any]] = []
    for item in ids if ids is not None else clients or []:
        try:
            if ids is not None:
                if isinstance(item, bool) or not isinstance(item, int | str) or not str(item).isdigit():
                    raise invalid("orderIdList")
                sim = ctx.acct.find_order(symbol, int(item), None)
            else:
                sim = ctx.acct.find_order(symbol, None, str(item))
            out.append(cancel(ctx, symbol, sim))
        except ApiError as err:
            out.append(err.as_dict())
    return out


def countdown_cancel_all(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    countdown = p.int("countdownTime", True, lo=0)
    assert countdown is not None
    ctx.venue.schedule_cancel_all(ctx.acct, symbol, countdown)
    return {"symbol": symbol, "countdownTime": str(countdown)}


def endpoints() -> list[Endpoint]:
    q = "symbol orderId origClientOrderId"
    return [
        ep("POST", "/fapi/v1/order", new_order, SIGNED, 0, ORDER_PARAMS, orders=(1, 1), order_fault=True),
        ep("GET", "/fapi/v1/order", get_order, SIGNED, 1, q),
        ep("PUT", "/fapi/v1/order", modify_order, SIGNED, 0, q + " side quantity price priceMatch",
           orders=(1, 1), order_fault=True),
        ep("DELETE", "/fapi/v1/order", cancel_order, SIGNED, 1, q, order_fault=True),
        ep("GET", "/fapi/v1/openOrders", open_orders, SIGNED, by_symbol(1, 40), "symbol"),
        ep("GET", "/fapi/v1/openOrder", open_order, SIGNED, 1, q),
        ep("GET", "/fapi/v1/allOrders", all_orders, SIGNED, 5, "symbol orderId startTime endTime limit"),
        ep("DELETE", "/fapi/v1/allOpenOrders", cancel_all, SIGNED, 1, "symbol", order_fault=True),
        ep("POST", "/fapi/v1/batchOrders", batch_orders, SIGNED, 5, "batchOrders", orders=(5, 1), order_fault=True),
        ep("DELETE", "/fapi/v1/batchOrders", cancel_batch, SIGNED, 1, "symbol orderIdList origClientOrderIdList",
           order_fault=True),
        ep("POST", "/fapi/v1/countdownCancelAll", countdown_cancel_all, SIGNED, 10, "symbol countdownTime"),
    ]
