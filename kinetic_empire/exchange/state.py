"""Save and restore a :class:`SimulatedExchange` as JSON-safe data (the sandbox's ``--state`` file).

Kept beside the exchange because it reads and writes the exchange's internals (order table, books,
id counters); nothing outside this package needs to know them. Two granularities: the whole exchange
(:func:`export_state` / :func:`import_state`, for a snapshot) and single records (one order, one book,
the id counters, for the sandbox's write-through log). Nothing here runs on the backtest's hot path.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..core.enums import MarginType, OrderStatus, OrderType, Side, TimeInForce, WorkingType
from .book import Book
from .orders import SimOrder
from .simulated import SimulatedExchange

_ORDER_FIELDS = (
    "order_id", "client_order_id", "symbol", "side", "order_type", "orig_type", "quantity", "price", "trigger_price",
    "time_in_force", "reduce_only", "close_position", "working_type", "is_algo", "status", "executed_qty", "cum_quote",
    "avg_price", "time", "update_time", "triggered", "is_taker_on_arrival", "good_till_date", "modifications",
    "callback_rate", "activation_price", "activated", "extreme_f",
)  # fmt: skip
_DECIMALS = {"quantity", "price", "trigger_price", "executed_qty", "cum_quote", "avg_price"}
_ENUMS: dict[str, Any] = {
    "side": Side, "order_type": OrderType, "orig_type": OrderType, "time_in_force": TimeInForce,
    "working_type": WorkingType, "status": OrderStatus,
}  # fmt: skip
_TRADE_DECIMALS = ("price", "qty", "quoteQty", "commission", "realizedPnl")


def export_state(ex: SimulatedExchange) -> dict[str, Any]:
    """Wallet, positions, every order, trades, income and id counters; decimals as strings."""
    return {
        "wallet": str(ex.wallet),
        "books": {symbol: book_record(book) for symbol, book in ex._books.items()},
        "orders": [order_record(o) for o in ex._orders.values()],
        "trades": [_strings(t) for t in ex.trades],
        "income": [_strings(i) for i in ex.income],
        "next_order_id": ex._next_order_id,
        "next_trade_id": ex._next_trade_id,
    }


def import_state(ex: SimulatedExchange, saved: dict[str, Any]) -> None:
    """Put an exported state back into a freshly built exchange with the same symbols."""
    ex.wallet = Decimal(saved["wallet"])
    for symbol, b in saved["books"].items():
        book = ex.book(symbol)
        pos = book.pos
        pos.qty, pos.entry, pos.leverage = Decimal(b["qty"]), Decimal(b["entry"]), int(b["leverage"])
        pos.qty_f, pos.entry_f = float(pos.qty), float(pos.entry)
        pos.margin_type = MarginType(b["margin_type"])
        pos.iso_wallet = Decimal(b.get("iso_wallet", "0"))  # absent in files written before isolated margin
        book.last, book.next_funding = float(b["last"]), int(b["next_funding"])
    for item in saved["orders"]:
        order = _order(item)
        ex._orders[order.order_id] = order
        ex._by_client[(order.symbol, order.client_order_id)] = order
        if order.is_open:
            book = ex.book(order.symbol)
            (book.market if order.order_type is OrderType.MARKET else book.resting).append(order)
    for symbol in ex.symbols:
        ex.book(symbol).refresh()
    ex.trades[:] = [_decimals(t, _TRADE_DECIMALS) for t in saved["trades"]]
    ex.income[:] = [_decimals(i, ("income",)) for i in saved["income"]]
    ex._next_order_id = int(saved["next_order_id"])
    ex._next_trade_id = int(saved["next_trade_id"])
    ex._update_liquidation_prices()


def order_by_id(ex: SimulatedExchange, order_id: int) -> SimOrder | None:
    return ex._orders.get(order_id)


def order_record(o: SimOrder) -> dict[str, Any]:
    """One order as JSON-safe data (every field of ``_ORDER_FIELDS``, so a restored order behaves exactly as
    the original). Spelled out: the sandbox writes one per changed order on every commit."""
    return {
        "order_id": o.order_id, "client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side.value,
        "order_type": o.order_type.value, "orig_type": o.orig_type.value, "quantity": str(o.quantity),
        "price": None if o.price is None else str(o.price),
        "trigger_price": None if o.trigger_price is None else str(o.trigger_price),
        "time_in_force": None if o.time_in_force is None else o.time_in_force.value,
        "reduce_only": o.reduce_only, "close_position": o.close_position, "working_type": o.working_type.value,
        "is_algo": o.is_algo, "status": o.status.value, "executed_qty": str(o.executed_qty),
        "cum_quote": str(o.cum_quote), "avg_price": str(o.avg_price), "time": o.time, "update_time": o.update_time,
        "triggered": o.triggered, "is_taker_on_arrival": o.is_taker_on_arrival, "good_till_date": o.good_till_date,
        "modifications": o.modifications,
        "callback_rate": None if o.callback_rate is None else str(o.callback_rate),
        "activation_price": None if o.activation_price is None else str(o.activation_price),
        "activated": o.activated, "extreme_f": o.extreme_f,
    }  # fmt: skip


def order_fingerprint(order: SimOrder) -> tuple[Any, ...]:
    """The fields a price update may change on an open order without emitting an event (a STOP that
    triggers into a resting LIMIT, a marketable limit that rests after all)."""
    return (order.status, order.executed_qty, order.order_type, order.triggered, order.is_taker_on_arrival,
            order.update_time, order.quantity, order.price, order.modifications,  # the last two: modify order
            order.activated, order.extreme_f)  # a trailing stop's best price moves without an event


def book_record(book: Book) -> dict[str, Any]:
    pos = book.pos
    return {
        "qty": str(pos.qty), "entry": str(pos.entry), "leverage": pos.leverage,
        "margin_type": pos.margin_type.value, "last": book.last, "next_funding": book.next_funding,
        "iso_wallet": str(pos.iso_wallet),
    }  # fmt: skip


def book_fingerprint(book: Book) -> tuple[Any, ...]:
    """What changes a book's record, except the last price (the replay restores that)."""
    pos = book.pos
    return (pos.qty, pos.entry, pos.leverage, pos.margin_type, book.next_funding, pos.iso_wallet)


def books(ex: SimulatedExchange) -> dict[str, Book]:
    return ex._books


def open_orders(ex: SimulatedExchange) -> list[SimOrder]:
    """Every open order, unsorted (cheaper than :meth:`SimulatedExchange.open_orders`)."""
    return [o for b in ex._books.values() for o in (*b.market, *b.resting)]


def id_counters(ex: SimulatedExchange) -> tuple[int, int]:
    """(next order id, next trade id)."""
    return ex._next_order_id, ex._next_trade_id


def set_id_counters(ex: SimulatedExchange, next_order_id: int, next_trade_id: int) -> None:
    """Move the id counters (only forward: ids handed out before must never come again)."""
    ex._next_order_id = max(ex._next_order_id, next_order_id)
    ex._next_trade_id = max(ex._next_trade_id, next_trade_id)


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value.value if hasattr(value, "value") else value


def _strings(item: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in item.items()}


def _decimals(item: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: (Decimal(v) if k in names else v) for k, v in item.items()}


def _order(item: dict[str, Any]) -> SimOrder:
    def val(name: str) -> Any:
        v = item[name]
        if v is None:
            return None
        if name in _DECIMALS:
            return Decimal(v)
        return _ENUMS[name](v) if name in _ENUMS else v

    order = SimOrder(
        order_id=val("order_id"), client_order_id=val("client_order_id"), symbol=val("symbol"), side=val("side"),
        order_type=val("order_type"), quantity=val("quantity"), price=val("price"),
        trigger_price=val("trigger_price"), time_in_force=val("time_in_force"), reduce_only=val("reduce_only"),
        close_position=val("close_position"), working_type=val("working_type"), is_algo=val("is_algo"),
        time=val("time"), good_till_date=val("good_till_date"),
    )  # fmt: skip
    for name in ("orig_type", "status", "executed_qty", "cum_quote", "avg_price", "update_time", "triggered",
                 "is_taker_on_arrival"):  # fmt: skip
        setattr(order, name, val(name))
    order.modifications = int(item.get("modifications", 0))  # absent in files written before modify order
    if item.get("callback_rate") is not None:  # a trailing stop (absent in files written before them)
        order.callback_rate = Decimal(item["callback_rate"])
        order.callback_f = float(order.callback_rate) / 100.0
        act = item.get("activation_price")
        order.activation_price = None if act is None else Decimal(act)
        order.activated = bool(item.get("activated", False))
        order.extreme_f = float(item.get("extreme_f", 0.0))
        if order.activated:
            order.trigger_f = order._level()
    return order
