"""Binance's JSON shapes for orders, algo orders, positions, balances, trades and income.

Field names and types follow the reference (sections 3 and 8) and the captured samples: decimals as
strings with the symbol's precision, ids and times as numbers, flags as booleans.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from ..core.enums import MarginType
from ..core.rules import SymbolRules
from ..exchange.orders import SimOrder
from .accounts import Account, AlgoRecord
from .fmt import ZERO, fixed, money, plain, spec


def _pp(rules: SymbolRules) -> tuple[int, int]:
    return rules.price_precision, rules.quantity_precision


try:  # orjson is several times faster; the standard library is the fallback
    import orjson

    def dumps(obj: Any) -> bytes:
        """The compact JSON of an answer (orjson's bytes; the standard library's, same text, without it)."""
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover
    def dumps(obj: Any) -> bytes:
        """The compact JSON of an answer (orjson's bytes; the standard library's, same text, without it)."""
        return json.dumps(obj, separators=(",", ":")).encode()


ORDER_KEYS = ("orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty", "executedQty", "cumQty",
              "cumQuote", "timeInForce", "type", "reduceOnly", "closePosition", "side", "positionSide", "stopPrice",
              "workingType", "priceProtect", "origType", "priceMatch", "selfTradePreventionMode", "goodTillDate",
              "time", "updateTime")
"""The order object's fields in Binance's order (and :func:`order_json`'s)."""
# dumps(order_json(...)) with the values put in place: what it prints for these types (ints, booleans, strings
# that need no escaping), so the two give the same bytes (tests/unit/test_sandbox_order_bytes.py)
_ORDER_TEMPLATE = (
    '{"orderId":%d,"symbol":"%s","status":"%s","clientOrderId":"%s","price":"%s","avgPrice":"%s","origQty":"%s",'
    '"executedQty":"%s","cumQty":"%s","cumQuote":"%s","timeInForce":"%s","type":"%s","reduceOnly":%s,'
    '"closePosition":%s,"side":"%s","positionSide":"%s","stopPrice":"%s","workingType":"%s","priceProtect":%s,'
    '"origType":"%s","priceMatch":"%s","selfTradePreventionMode":"%s","goodTillDate":%d,"time":%d,"updateTime":%d}')
_JSON_BOOL = {True: "true", False: "false"}
_PLAIN_TEXT = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but '"' and '\\': a JSON string as it stands


def _order_values(acct: Account, sim: SimOrder) -> tuple[Any, ...]:
    """The values of :data:`ORDER_KEYS`, in that order.

    On every signed order request: enum values are read as ``_value_`` (the ``.value`` property is a Python
    descriptor call) and Decimal fields formatted with one ``format`` call each."""
    rules = acct.exchange.rules(sim.symbol)
    pp, qp = rules.price_precision, rules.quantity_precision
    ps, qs = spec(pp), spec(qp)
    stop = sim.trigger_price if sim.is_algo else None
    otype = sim.order_type._value_
    executed_qty = sim.executed_qty
    executed = format(executed_qty, qs)
    zero_price = format(ZERO, ps)
    price = sim.price
    tif = sim.time_in_force
    return (
        acct.wire_id(sim) if sim.is_algo else sim.order_id,
        sim.symbol,
        sim.status._value_,
        sim.client_order_id,
        format(price, ps) if otype != "MARKET" and price is not None else zero_price,
        plain(sim.avg_price, pp) if executed_qty else zero_price,
        format(sim.quantity, qs),
        executed,
        executed,
        fixed(sim.cum_quote, min(8, pp + qp)),
        tif._value_ if tif else "GTC",
        otype,
        sim.reduce_only,
        sim.close_position,
        sim.side._value_,
        "BOTH",
        fixed(stop, pp) if stop else zero_price,
        sim.working_type._value_,
        False,
        sim.orig_type._value_,
        "NONE",
        "NONE",
        sim.good_till_date,
        sim.time,
        sim.update_time,
    )


def order_json(acct: Account, sim: SimOrder) -> dict[str, Any]:
    """The order object of POST/GET/DELETE /fapi/v1/order, openOrders and allOrders."""
    return dict(zip(ORDER_KEYS, _order_values(acct, sim), strict=True))


def order_bytes(acct: Account, sim: SimOrder) -> bytes:
    """``dumps(order_json(acct, sim))``, printed straight into the order object's text: the answer of the single-order
    endpoints without building a dict of 25 fields for the encoder. Any value the template cannot print exactly as
    the encoder does (a string that needs escaping, a number or flag of another type) goes through the encoder."""
    v = _order_values(acct, sim)
    symbol, client_id = v[1], v[3]
    # the other strings are enum values and formatted numbers (ASCII letters, digits, '-', '.', '_')
    if (symbol.__class__ is str and client_id.__class__ is str and _PLAIN_TEXT.fullmatch(client_id)
            and _PLAIN_TEXT.fullmatch(symbol) and v[0].__class__ is int and v[22].__class__ is int
            and v[23].__class__ is int and v[24].__class__ is int and v[12].__class__ is bool
            and v[13].__class__ is bool):
        return (_ORDER_TEMPLATE % (*v[:12], _JSON_BOOL[v[12]], _JSON_BOOL[v[13]], *v[14:18], "false",
                                   *v[19:])).encode()
    return dumps(dict(zip(ORDER_KEYS, v, strict=True)))


def algo_json(acct: Account, rec: AlgoRecord, detail: bool = False) -> dict[str, Any]:
    """The algo order object of POST/GET /fapi/v1/algoOrder and openAlgoOrders."""
    sim = rec.sim
    rules = acct.exchange.rules(sim.symbol)
    pp, qp = _pp(rules)
    out: dict[str, Any] = {
        "algoId": rec.algo_id,
        "clientAlgoId": sim.client_order_id,
        "algoType": rec.algo_type,
        "orderType": sim.orig_type.value,
        "symbol": sim.symbol,
        "side": sim.side.value,
        "positionSide": "BOTH",
        "timeInForce": sim.time_in_force.value if sim.time_in_force else "GTC",
        "quantity": fixed(sim.quantity, qp),
        "algoStatus": rec.status,
        "triggerPrice": fixed(sim.trigger_price or ZERO, pp),
        "price": fixed(sim.price or ZERO, pp),
        "icebergQuantity": None,
        "selfTradePreventionMode": "NONE",
        "workingType": sim.working_type.value,
        "priceMatch": "NONE",
        "closePosition": sim.close_position,
        "priceProtect": rec.price_protect,
        "reduceOnly": sim.reduce_only,
        "activatePrice": "" if sim.callback_rate is None else fixed(sim.activation_price or ZERO, pp),
        "callbackRate": "" if sim.callback_rate is None else plain(sim.callback_rate, 1),
        "createTime": sim.time,
        "updateTime": max(rec.update_time, sim.update_time),
        "triggerTime": rec.trigger_time,
        "goodTillDate": sim.good_till_date,
    }
    if detail:
        out["actualOrderId"] = str(rec.actual_id) if rec.actual_id else ""
        out["actualPrice"] = plain(sim.avg_price, pp) if sim.executed_qty else "0"
        out["actualType"] = sim.order_type.value if rec.triggered else ""
        out["actualQty"] = fixed(sim.executed_qty, qp) if rec.triggered else "0"
        out["tpOrderType"] = ""
    return out


def order_event(
    acct: Account,
    sim: SimOrder,
    x: str,
    ts: int,
    *,
    last_qty: Decimal = ZERO,
    last_price: Decimal = ZERO,
    commission: Decimal | None = None,
    trade_id: int = 0,
    maker: bool = False,
    realized: Decimal = ZERO,
) -> dict[str, Any]:
    """ORDER_TRADE_UPDATE (reference 8.3)."""
    rules = acct.exchange.rules(sim.symbol)
    pp, qp = _pp(rules)
    o: dict[str, Any] = {
        "s": sim.symbol,
        "c": sim.client_order_id,
        "S": sim.side.value,
        "o": sim.order_type.value,
        "f": sim.time_in_force.value if sim.time_in_force else "GTC",
        "q": fixed(sim.quantity, qp),
        "p": fixed(sim.price if sim.order_type.value != "MARKET" else ZERO, pp),
        "ap": plain(sim.avg_price, pp) if sim.executed_qty else "0",
        "sp": fixed(sim.trigger_price or ZERO, pp) if sim.is_algo else "0",
        "x": x,
        "X": sim.status.value,
        "i": acct.wire_id(sim),
        "l": fixed(last_qty, qp),
        "z": fixed(sim.executed_qty, qp),
        "L": fixed(last_price, pp),
        "T": ts,
        "t": trade_id,
        "b": "0",
        "a": "0",
        "m": maker,
        "R": sim.reduce_only,
        "wt": sim.working_type.value,
        "ot": sim.orig_type.value,
        "ps": "BOTH",
        "cp": sim.close_position,
        "rp": money(realized),
        "pP": False,
        "si": 0,
        "ss": 0,
        "V": "NONE",
        "pm": "NONE",
        "gtd": sim.good_till_date,
        "er": "0",
    }
    if commission is not None:
        o["N"] = "USDT"
        o["n"] = money(commission)
    return {"e": "ORDER_TRADE_UPDATE", "E": ts, "T": ts, "o": o}


def algo_event(acct: Account, rec: AlgoRecord, ts: int) -> dict[str, Any]:
    """ALGO_UPDATE, shaped like the testnet captures."""
    sim = rec.sim
    rules = acct.exchange.rules(sim.symbol)
    pp, qp = _pp(rules)
    o: dict[str, Any] = {
        "caid": sim.client_order_id,
        "aid": rec.algo_id,
        "at": rec.algo_type,
        "o": sim.orig_type.value,
        "s": sim.symbol,
        "S": sim.side.value,
        "ps": "BOTH",
        "f": sim.time_in_force.value if sim.time_in_force else "GTC",
        "q": fixed(sim.quantity, qp),
        "X": rec.status,
        "ai": str(rec.actual_id) if rec.actual_id else "",
        "tp": fixed(sim.trigger_price or ZERO, pp),
        "p": fixed(sim.price or ZERO, pp),
        "V": "NONE",
        "wt": sim.working_type.value,
        "pm": "NONE",
        "cp": sim.close_position,
        "pP": rec.price_protect,
        "R": sim.reduce_only,
        "tt": rec.trigger_time,
        "gtd": sim.good_till_date,
    }
    if rec.triggered:
        o["ap"] = plain(sim.avg_price, pp) if sim.executed_qty else "0"
        o["aq"] = fixed(sim.executed_qty, qp)
        o["act"] = sim.order_type.value
    return {"e": "ALGO_UPDATE", "T": ts, "E": ts, "o": o}


# ------------------------------------------------------------------------------------ positions
class WirePosition:
    """One symbol's position as the wire shows it: the numbers computed once, shown in several shapes."""

    __slots__ = (
        "bep", "entry", "im", "isolated", "iw", "leverage", "liq", "mark", "max_notional", "mm", "notional", "oim",
        "qty", "rules", "symbol", "upnl",
    )

    def __init__(self, acct: Account, symbol: str, max_notional: Decimal, taker_fee: Decimal) -> None:
        ex = acct.exchange
        self.symbol = symbol
        self.rules = ex.rules(symbol) if symbol in ex.symbols else None
        if symbol in ex.symbols:
            self.qty, self.entry, self.leverage = ex.position(symbol)
            self.mark = ex.last_price(symbol)
            self.upnl = ex.unrealized_pnl(symbol)
            self.liq = ex.liquidation_price(symbol) if self.qty else ZERO
            self.im = ex.position_initial_margin(symbol)
            self.mm = ex.maintenance_margin(symbol)
            self.oim = ex.open_order_initial_margin(symbol)
            self.isolated = ex.margin_type(symbol) is MarginType.ISOLATED
            self.iw = ex.isolated_wallet(symbol)
        else:
            self.qty = self.entry = self.mark = self.upnl = self.liq = self.im = self.mm = self.oim = self.iw = ZERO
            self.leverage = ex.config.default_leverage
            self.isolated = False
        self.notional = self.qty * self.mark
        self.max_notional = max_notional
        if self.qty > 0:
            self.bep = self.entry * (1 + taker_fee)
        elif self.qty < 0:
            self.bep = self.entry * (1 - taker_fee)
        else:
            self.bep = ZERO

    @property
    def iso_margin(self) -> Decimal:
        """Binance's isolatedMargin: the isolated wallet plus the position's unrealized PnL (0 under cross)."""
        return self.iw + self.upnl if self.isolated else ZERO

    def _qty(self) -> str:
        return fixed(self.qty, self.rules.quantity_precision if self.rules else 3)

    def _price(self, value: Decimal) -> str:
        return plain(value, self.rules.price_precision if self.rules else 2)

    def risk_v2(self, update_time: int) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "positionAmt": self._qty(),
            "entryPrice": self._price(self.entry),
            "breakEvenPrice": self._price(self.bep),
            "markPrice": money(self.mark),
            "unRealizedProfit": money(self.upnl),
            "liquidationPrice": self._price(self.liq),
            "leverage": str(self.leverage),
            "maxNotionalValue": plain(self.max_notional),
            "marginType": "isolated" if self.isolated else "cross",
            "isolatedMargin": money(self.iso_margin),
            "isAutoAddMargin": "false",
            "positionSide": "BOTH",
            "notional": money(self.notional),
            "isolatedWallet": money(self.iw) if self.isolated else "0",
            "updateTime": update_time,
        }

    def risk_v3(self, update_time: int) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "positionSide": "BOTH",
            "positionAmt": self._qty(),
            "entryPrice": self._price(self.entry),
            "breakEvenPrice": self._price(self.bep),
            "markPrice": money(self.mark),
            "unRealizedProfit": money(self.upnl),
            "liquidationPrice": self._price(self.liq),
            "isolatedMargin": money(self.iso_margin),
            "notional": money(self.notional),
            "marginAsset": "USDT",
            "isolatedWallet": money(self.iw) if self.isolated else "0",
            "initialMargin": money(self.im + self.oim),
            "maintMargin": money(self.mm),
            "positionInitialMargin": money(self.im),
            "openOrderInitialMargin": money(self.oim),
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": update_time,
        }

    def account_v2(self, update_time: int) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "initialMargin": money(self.im + self.oim),
            "maintMargin": money(self.mm),
            "unrealizedProfit": money(self.upnl),
            "positionInitialMargin": money(self.im),
            "openOrderInitialMargin": money(self.oim),
            "leverage": str(self.leverage),
            "isolated": self.isolated,
            "entryPrice": self._price(self.entry),
            "breakEvenPrice": self._price(self.bep),
            "maxNotional": plain(self.max_notional),
            "bidNotional": "0",
            "askNotional": "0",
            "positionSide": "BOTH",
            "positionAmt": self._qty(),
            "updateTime": update_time,
        }

    def account_v3(self, update_time: int) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "positionSide": "BOTH",
            "positionAmt": self._qty(),
            "unrealizedProfit": money(self.upnl),
            "isolatedMargin": money(self.iso_margin),
            "notional": money(self.notional),
            "isolatedWallet": money(self.iw) if self.isolated else "0",
            "initialMargin": money(self.im + self.oim),
            "maintMargin": money(self.mm),
            "updateTime": update_time,
        }

    def stream_row(self) -> dict[str, Any]:
        """The ``P`` entry of ACCOUNT_UPDATE."""
        return {
            "s": self.symbol,
            "pa": self._qty(),
            "ep": self._price(self.entry),
            "bep": self._price(self.bep),
            "cr": "0",
            "up": money(self.upnl),
            "mt": "isolated" if self.isolated else "cross",
            "iw": money(self.iw) if self.isolated else "0",
            "ps": "BOTH",
        }


def trade_json(acct: Account, t: dict[str, Any]) -> dict[str, Any]:
    rules = acct.exchange.rules(t["symbol"])
    pp, qp = _pp(rules)
    order_id = t["orderId"]
    rec = acct.algos.get(order_id)
    if rec is not None and rec.actual_id:
        order_id = rec.actual_id
    return {
        "buyer": t["buyer"],
        "commission": money(t["commission"]),
        "commissionAsset": "USDT",
        "id": t["id"],
        "maker": t["maker"],
        "orderId": order_id,
        "price": fixed(t["price"], pp),
        "qty": fixed(t["qty"], qp),
        "quoteQty": fixed(t["quoteQty"], min(8, pp + qp)),
        "realizedPnl": money(t["realizedPnl"]),
        "side": t["side"],
        "positionSide": "BOTH",
        "symbol": t["symbol"],
        "time": t["time"],
        "marginAsset": "USDT",
        "baseQty": fixed(t["qty"], qp),
        "pair": t["symbol"],
    }


def income_json(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "symbol": item["symbol"],
        "incomeType": item["incomeType"],
        "income": money(item["income"]),
        "asset": item["asset"],
        "info": item["info"],
        "time": item["time"],
        "tranId": item["tranId"],
        "tradeId": item["tradeId"],
    }

