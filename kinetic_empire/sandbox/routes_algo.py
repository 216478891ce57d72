"""Algo (conditional) order endpoints (reference 3.3): STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET and
TRAILING_STOP_MARKET (``callbackRate`` 0.1-10 %, optional ``activatePrice``; no ``triggerPrice``).

They become conditional orders of the simulated exchange (``submit(..., algo=True)``); the exchange
triggers and fills them, this layer shows them as algo orders and, once triggered, as plain orders.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..core.enums import OrderType, Side, TimeInForce, WorkingType
from ..core.errors import ExchangeError
from .accounts import AlgoRecord
from .endpoints import SIGNED, Ctx, Endpoint, by_symbol, ep
from .errors import ApiError, bad_symbol, from_exchange, invalid, mandatory, not_required, unknown_order
from .routes_orders import (
    PRICE_MATCH,
    STP_MODES,
    check_gtd,
    duplicate_client_id,
    position_side,
    symbol_of,
    tradable,
    window,
)
from .wire import algo_json

ALGO_PARAMS = (
    "algoType symbol side positionSide type timeInForce quantity price triggerPrice workingType priceMatch "
    "closePosition priceProtect reduceOnly activatePrice callbackRate clientAlgoId newOrderRespType "
    "selfTradePreventionMode goodTillDate"
)
_SUPPORTED = (OrderType.STOP, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_MARKET,
              OrderType.TRAILING_STOP_MARKET)


def _would_trigger(otype: OrderType, side: Side, trigger: Decimal, last: Decimal) -> bool:
    stop = otype in (OrderType.STOP, OrderType.STOP_MARKET)
    if stop:
        return last >= trigger if side is Side.BUY else last <= trigger
    return last <= trigger if side is Side.BUY else last >= trigger


def new_algo(ctx: Ctx) -> Any:
    p = ctx.params
    algo_type = p.req("algoType")
    if algo_type != "CONDITIONAL":
        raise invalid("algoType")
    symbol = symbol_of(ctx, p)
    side = p.enum("side", Side, -1117, "Invalid side.", required=True)
    otype = p.enum("type", OrderType, -1116, "Invalid orderType.", required=True)
    assert side is not None and otype is not None
    if otype not in _SUPPORTED:
        raise ApiError(-1116, "Invalid orderType.")
    position_side(ctx, p)
    tif = p.enum("timeInForce", TimeInForce, -1115, "Invalid timeInForce.")
    quantity = p.decimal("quantity")
    price = p.decimal("price")
    trigger = p.decimal("triggerPrice")
    working = p.enum("workingType", WorkingType, -1130, "Data sent for parameter 'workingType' is not valid.")
    close_position = p.bool("closePosition")
    price_protect = p.bool("priceProtect")
    reduce_only = p.bool("reduceOnly")
    client_id = p.client_id("clientAlgoId")
    p.choice("newOrderRespType", ("ACK", "RESULT"))
    p.choice("priceMatch", PRICE_MATCH)
    p.choice("selfTradePreventionMode", STP_MODES)
    gtd = p.int("goodTillDate")
    activate = p.decimal("activatePrice")
    callback = p.decimal("callbackRate")
    trailing = otype is OrderType.TRAILING_STOP_MARKET
    if trailing:
        if callback is None:
            raise mandatory("callbackRate")
        if trigger is not None:
            raise not_required("triggerPrice")
        if close_position:
            raise not_required("closePosition")
    else:
        if activate is not None:
            raise not_required("activatePrice")
        if callback is not None:
            raise not_required("callbackRate")
        if trigger is None:
            raise mandatory("triggerPrice")
    limit_type = otype in (OrderType.STOP, OrderType.TAKE_PROFIT)
    if limit_type:
        if price is None:
            raise mandatory("price")
        tif = tif or TimeInForce.GTC
    else:
        if price is not None and price != 0:
            raise not_required("price")
        price, tif = None, None
    if close_position:
        if limit_type:
            raise not_required("closePosition")
        if quantity is not None or reduce_only:
            raise ApiError(-4137, "Quantity must be zero with closePosition equals true")
    elif quantity is None:
        raise mandatory("quantity")
    gtd_ms = check_gtd(ctx, tif, gtd)
    tradable(ctx, symbol)
    acct = ctx.acct
    ex = acct.exchange
    duplicate_client_id(ctx, symbol, client_id)
    last = ex.last_price(symbol)
    if trailing:  # activated by a rise for a SELL, a fall for a BUY: an activation price already passed is refused
        if last and activate is not None and (activate < last if side is Side.SELL else activate > last):
            raise ApiError(-2021, "Order would immediately trigger.")
    elif last and trigger is not None and _would_trigger(otype, side, trigger, last):
        raise ApiError(-2021, "Order would immediately trigger.")
    rules = ex.rules(symbol)
    if rules.max_num_algo_orders is not None and len(acct.open_algos(symbol)) >= rules.max_num_algo_orders:
        raise ApiError(-4045, "Reach max stop order limit.")
    try:
        sim = ex.submit(
            symbol=symbol, side=side, order_type=otype, quantity=quantity, price=price, trigger_price=trigger,
            time_in_force=tif, reduce_only=reduce_only, close_position=close_position,
            working_type=working or WorkingType.CONTRACT_PRICE, client_order_id=client_id or ctx.venue.new_client_id(),
            algo=True, good_till_date=gtd_ms, callback_rate=callback, activation_price=activate,
        )
    except ExchangeError as exc:
        raise from_exchange(exc) from None
    rec = acct.add_algo(sim, price_protect)
    ctx.venue.users.algo_new(acct, rec)
    return algo_json(acct, rec)


def _find(ctx: Ctx) -> AlgoRecord | None:
    p = ctx.params
    algo_id = p.int("algoId")
    client_id = p.str("clientAlgoId")
    if algo_id is None and client_id is None:
        raise ApiError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
    return ctx.acct.find_algo(algo_id, client_id)


def get_algo(ctx: Ctx) -> Any:
    rec = _find(ctx)
    if rec is None or ctx.venue.faults.hidden(ctx.acct.key.api_key, rec.algo_id, ctx.venue.wall_ms()):
        raise ApiError(-2013, "Order does not exist.")
    return algo_json(ctx.acct, rec, detail=True)


def _cancel(ctx: Ctx, rec: AlgoRecord | None) -> dict[str, Any]:
    if rec is None or rec.triggered or not rec.sim.is_open:
        raise unknown_order()
    try:
        ctx.acct.exchange.cancel(rec.sim.symbol, order_id=rec.sim.order_id)
    except ExchangeError as exc:
        raise from_exchange(exc) from None
    return {"algoId": rec.algo_id, "clientAlgoId": rec.sim.client_order_id, "code": "200", "msg": "success"}


def cancel_algo(ctx: Ctx) -> Any:
    return _cancel(ctx, _find(ctx))


def open_algos(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = p.str("symbol")
    if symbol is not None and symbol not in ctx.venue.rules:
        raise bad_symbol()
    algo_type = p.str("algoType")
    if algo_type is not None and algo_type != "CONDITIONAL":
        raise invalid("algoType")
    algo_id = p.int("algoId")
    recs = ctx.acct.open_algos(symbol)
    if algo_id is not None:
        recs = [r for r in recs if r.algo_id == algo_id]
    return [algo_json(ctx.acct, r, detail=True) for r in recs]


def all_algos(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = symbol_of(ctx, p)
    limit = p.limit(500, 1000)
    algo_id = p.int("algoId")
    recs = [r for r in ctx.acct.algos.values() if r.sim.symbol == symbol]
    if algo_id is not None:
        recs = sorted((r for r in recs if r.algo_id >= algo_id), key=lambda r: r.algo_id)[:limit]
    else:
        start, end = window(ctx, p)
        recs = [r for r in recs if start <= r.sim.time <= end][-limit:]
    return [algo_json(ctx.acct, r, detail=True) for r in recs]


def cancel_all_algos(ctx: Ctx) -> Any:
    symbol = symbol_of(ctx, ctx.params)
    for rec in ctx.acct.open_algos(symbol):
        if rec.sim.is_open:
            ctx.acct.exchange.cancel(symbol, order_id=rec.sim.order_id)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def endpoints() -> list[Endpoint]:
    ident = "symbol algoId clientAlgoId"
    return [
        ep("POST", "/fapi/v1/algoOrder", new_algo, SIGNED, 0, ALGO_PARAMS, orders=(1, 1), order_fault=True),
        ep("GET", "/fapi/v1/algoOrder", get_algo, SIGNED, 1, ident),
        ep("DELETE", "/fapi/v1/algoOrder", cancel_algo, SIGNED, 1, ident, order_fault=True),
        ep("GET", "/fapi/v1/openAlgoOrders", open_algos, SIGNED, by_symbol(1, 40), "algoType symbol algoId"),
        ep("GET", "/fapi/v1/allAlgoOrders", all_algos, SIGNED, 5, "symbol algoId startTime endTime page limit"),
        ep("DELETE", "/fapi/v1/algoOpenOrders", cancel_all_algos, SIGNED, 1, "symbol", order_fault=True),
    ]
