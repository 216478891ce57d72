"""``--state <file>``: accounts, orders, positions and the replay position as JSON, written atomically.

The simulated exchange has no public snapshot API yet, so saving reads and restoring writes a few of
its internals (order table, books, id counters); those touch points are all in this module.
"""

from __future__ import annotations

import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.enums import OrderStatus, OrderType, Side, TimeInForce, WorkingType
from ..exchange.orders import SimOrder
from .accounts import AlgoRecord
from .replay import path_points

if TYPE_CHECKING:
    from .accounts import Account
    from .server import SandboxServer

VERSION = 1
_ORDER_FIELDS = (
    "order_id", "client_order_id", "symbol", "side", "order_type", "orig_type", "quantity", "price", "trigger_price",
    "time_in_force", "reduce_only", "close_position", "working_type", "is_algo", "status", "executed_qty", "cum_quote",
    "avg_price", "time", "update_time", "triggered", "is_taker_on_arrival", "good_till_date",
)
_DECIMALS = {"quantity", "price", "trigger_price", "executed_qty", "cum_quote", "avg_price"}
_ENUMS = {"side": Side, "order_type": OrderType, "orig_type": OrderType, "time_in_force": TimeInForce,
          "working_type": WorkingType, "status": OrderStatus}


def _enc(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value"):
        return value.value
    return value


def _dec_record(item: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in item.items()}


def snapshot(srv: SandboxServer) -> dict[str, Any]:
    replay = srv.replay
    series = {
        s.symbol: {"closed": s.closed, "partial": s.partial, "last": s.last, "updates": s.updates, "played": s.played}
        for s in replay.series
    }
    accounts = {}
    for key, acct in srv.accounts.items():
        accounts[key] = _account(acct)
    return {"version": VERSION, "clock": srv.clock.now_ms(), "replay": {"i": replay.i, "phase": replay.phase},
            "series": series, "accounts": accounts}


def _account(acct: Account) -> dict[str, Any]:
    ex = acct.exchange
    books = {}
    for symbol in ex.symbols:
        book = ex.book(symbol)
        pos = book.pos
        books[symbol] = {"qty": str(pos.qty), "entry": str(pos.entry), "leverage": pos.leverage,
                         "margin_type": pos.margin_type.value, "last": book.last, "next_funding": book.next_funding}
    orders = [{f: _enc(getattr(o, f)) for f in _ORDER_FIELDS} for o in ex._orders.values()]
    algos = {str(aid): {"actual_id": r.actual_id, "trigger_time": r.trigger_time, "update_time": r.update_time,
                        "price_protect": r.price_protect} for aid, r in acct.algos.items()}
    return {
        "wallet": str(ex.wallet),
        "books": books,
        "orders": orders,
        "trades": [_dec_record(t) for t in ex.trades],
        "income": [_dec_record(i) for i in ex.income],
        "next_order_id": ex._next_order_id,
        "next_trade_id": ex._next_trade_id,
        "algos": algos,
        "next_actual_id": acct.next_actual_id,
    }


def save(srv: SandboxServer, path: Path) -> None:
    """Write the state atomically (temporary file in the same folder, then rename)."""
    data = json.dumps(snapshot(srv), separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def restore(srv: SandboxServer, path: Path) -> None:
    data = json.loads(path.read_text())
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported state version {data.get('version')!r}")
    replay = srv.replay
    replay.i = int(data["replay"]["i"])
    replay.phase = int(data["replay"]["phase"])
    for s in replay.series:
        saved = data["series"].get(s.symbol)
        if saved is None:
            continue
        s.closed, s.partial, s.last = saved["closed"], saved["partial"], saved["last"]
        s.updates, s.played = saved["updates"], saved["played"]
        if s.partial is not None and s.closed < len(s.open_time):
            row = s.closed
            replay._paths[s.symbol] = path_points(
                float(s.open[row]), float(s.high[row]), float(s.low[row]), float(s.close[row]), replay.k, s.tick
            )
    srv.clock.advance_to(int(data["clock"]))
    for key, saved in data["accounts"].items():
        acct = srv.accounts.get(key)
        if acct is not None:
            _restore_account(acct, saved)


def _restore_account(acct: Account, saved: dict[str, Any]) -> None:
    from ..core.enums import MarginType

    ex = acct.exchange
    ex.wallet = Decimal(saved["wallet"])
    for symbol, b in saved["books"].items():
        book = ex.book(symbol)
        pos = book.pos
        pos.qty, pos.entry, pos.leverage = Decimal(b["qty"]), Decimal(b["entry"]), int(b["leverage"])
        pos.qty_f, pos.entry_f = float(pos.qty), float(pos.entry)
        pos.margin_type = MarginType(b["margin_type"])
        book.last, book.next_funding = float(b["last"]), int(b["next_funding"])
    for item in saved["orders"]:
        order = _order(item)
        ex._orders[order.order_id] = order
        ex._by_client[(order.symbol, order.client_order_id)] = order
        if order.is_open:
            book = ex.book(order.symbol)
            (book.market if order.order_type is OrderType.MARKET else book.resting).append(order)
            book.busy = True
    for symbol in ex.symbols:
        book = ex.book(symbol)
        book.busy = bool(book.market or book.resting or book.pos.qty_f != 0.0)
    ex.trades[:] = [_undec(t, ("price", "qty", "quoteQty", "commission", "realizedPnl")) for t in saved["trades"]]
    ex.income[:] = [_undec(i, ("income",)) for i in saved["income"]]
    ex._next_order_id = int(saved["next_order_id"])
    ex._next_trade_id = int(saved["next_trade_id"])
    ex._update_liquidation_prices()
    for aid, r in saved["algos"].items():
        sim = ex._orders.get(int(aid))
        if sim is None:
            continue
        rec = AlgoRecord(sim, bool(r["price_protect"]))
        rec.actual_id, rec.trigger_time, rec.update_time = int(r["actual_id"]), int(r["trigger_time"]), int(
            r["update_time"])
        acct.algos[sim.order_id] = rec
        if rec.actual_id:
            acct.actual[rec.actual_id] = rec
    acct.next_actual_id = int(saved["next_actual_id"])


def _undec(item: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: (Decimal(v) if k in names else v) for k, v in item.items()}


def _order(item: dict[str, Any]) -> SimOrder:
    def val(name: str) -> Any:
        v = item[name]
        if v is None:
            return None
        if name in _DECIMALS:
            return Decimal(v)
        if name in _ENUMS:
            return _ENUMS[name](v)
        return v

    order = SimOrder(
        order_id=val("order_id"), client_order_id=val("client_order_id"), symbol=val("symbol"), side=val("side"),
        order_type=val("order_type"), quantity=val("quantity"), price=val("price"),
        trigger_price=val("trigger_price"), time_in_force=val("time_in_force"), reduce_only=val("reduce_only"),
        close_position=val("close_position"), working_type=val("working_type"), is_algo=val("is_algo"),
        time=val("time"), good_till_date=val("good_till_date"),
    )
    for name in ("orig_type", "status", "executed_qty", "cum_quote", "avg_price", "update_time", "triggered",
                 "is_taker_on_arrival"):
        setattr(order, name, val(name))
    return order
