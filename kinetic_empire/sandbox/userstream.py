"""The user data stream: listenKeys, their connections, and the exchange's events in Binance's shapes.

The simulated exchange emits core events (OrderAccepted, OrderFilled, PositionChanged, ...); this
module turns them into ORDER_TRADE_UPDATE, ACCOUNT_UPDATE and ALGO_UPDATE in the order Binance sends
them (the order update first, then the account update), plus listenKeyExpired and MARGIN_CALL.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..core.enums import BalanceReason
from ..core.events import (
    BalanceChanged,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    PositionChanged,
)
from .accounts import Account, AlgoRecord
from .fmt import money
from .streams import Subscriber
from .wire import WirePosition, algo_event, order_event

_ALNUM = string.ascii_letters + string.digits
_REASONS = {BalanceReason.LIQUIDATION: "ORDER"}
LIQUIDATION_PREFIX = "autoclose-"  # Binance's client ids of forced orders (reference 8.3)
ADL_CLIENT_ID = "adl_autoclose"


def forced(event: dict[str, Any]) -> dict[str, Any]:
    """An ORDER_TRADE_UPDATE of a forced order in Binance's shape: a liquidation (``autoclose-...``) or an
    auto-deleverage (``adl_autoclose``) is order type LIQUIDATION, IOC; its fill is ``x=CALCULATED`` with status
    ``NEW_INSURANCE`` (liquidation, the insurance fund takes the position) or ``NEW_ADL`` (deleveraged).
    Other orders pass unchanged."""
    o = event["o"]
    cid = str(o["c"])
    adl = cid.startswith(ADL_CLIENT_ID)
    if not adl and not cid.startswith(LIQUIDATION_PREFIX):
        return event
    o["o"] = o["ot"] = "LIQUIDATION"
    o["f"] = "IOC"
    o["R"] = True
    if o["x"] == "TRADE":
        o["x"] = "CALCULATED"
    if o["x"] == "CALCULATED":
        o["X"] = "NEW_ADL" if adl else "NEW_INSURANCE"
        o["p"] = o["L"]
    return event


class UserStreams:
    """listenKey registry and per-account fan-out of user events."""

    def __init__(
        self,
        *,
        validity_ms: int,
        wall_ms: Callable[[], int],
        market_ms: Callable[[], int],
        wire_position: Callable[[Account, str], WirePosition],
    ) -> None:
        self.validity_ms = validity_ms
        self._wall = wall_ms
        self._market = market_ms
        self._view = wire_position
        self.by_key: dict[str, Account] = {}
        self.conns: dict[str, set[Subscriber]] = {}  # listenKey -> connections
        self._pending: dict[int, set[str]] = {}  # id(account) -> symbols whose position changed

    # ------------------------------------------------------------------------------------ keys
    def create(self, acct: Account) -> str:
        """POST listenKey: the account's active key (extended), or a new one."""
        now = self._wall()
        if acct.listen_key is not None and acct.listen_key_expires > now:
            acct.listen_key_expires = now + self.validity_ms
            return acct.listen_key
        if acct.listen_key is not None:
            self.expire(acct)
        key = "".join(secrets.choice(_ALNUM) for _ in range(64))
        acct.listen_key = key
        acct.listen_key_expires = now + self.validity_ms
        self.by_key[key] = acct
        return key

    def keepalive(self, acct: Account) -> str | None:
        """PUT listenKey: extend, or None when there is no live key (-1125)."""
        now = self._wall()
        if acct.listen_key is None or acct.listen_key_expires <= now:
            return None
        acct.listen_key_expires = now + self.validity_ms
        return acct.listen_key

    def close(self, acct: Account) -> None:
        """DELETE listenKey: close its connections without a listenKeyExpired event."""
        key = acct.listen_key
        if key is None:
            return
        for conn in self.conns.pop(key, set()):
            conn.close_soon()
        self.by_key.pop(key, None)
        acct.listen_key = None

    def expire(self, acct: Account) -> None:
        """The key lapsed: tell its connections, then close them."""
        key = acct.listen_key
        if key is None:
            return
        event = {"e": "listenKeyExpired", "E": self._market(), "listenKey": key}
        for conn in self.conns.pop(key, set()):
            conn.push_json(event, key)
            conn.close_soon()
        self.by_key.pop(key, None)
        acct.listen_key = None

    def expire_due(self, force: bool = False) -> int:
        now = self._wall()
        due = [a for a in set(self.by_key.values()) if force or a.listen_key_expires <= now]
        for acct in due:
            self.expire(acct)
        return len(due)

    def attach(self, key: str, conn: Subscriber) -> Account | None:
        acct = self.by_key.get(key)
        if acct is None or acct.listen_key_expires <= self._wall():
            return None
        conn.listen_key = key
        self.conns.setdefault(key, set()).add(conn)
        return acct

    def detach(self, conn: Subscriber) -> None:
        if conn.listen_key is not None:
            conns = self.conns.get(conn.listen_key)
            if conns is not None:
                conns.discard(conn)

    # ------------------------------------------------------------------------------------ events
    def listened(self, acct: Account) -> bool:
        """Whether any connection listens to ``acct``: with none, an event's payload is not even built (an
        order placed through REST alone, as a benchmark or a polling client does, pays nothing for it)."""
        key = acct.listen_key
        return key is not None and bool(self.conns.get(key))

    def send(self, acct: Account, payload: dict[str, Any]) -> None:
        key = acct.listen_key
        if key is None:
            return
        conns = self.conns.get(key)
        if not conns:
            return
        kind = payload["e"]
        for conn in conns:
            if conn.events is None or kind in conn.events:
                conn.push_json(payload, key)

    def on_event(self, acct: Account, ev: Any) -> None:
        """Sink of every account's exchange events."""
        if isinstance(ev, OrderFilled):
            self._filled(acct, ev)
        elif isinstance(ev, PositionChanged):
            self._pending.setdefault(id(acct), set()).add(ev.symbol)
        elif isinstance(ev, BalanceChanged):
            self._balance(acct, ev)
        elif isinstance(ev, OrderAccepted):
            if not self.listened(acct):
                return
            sim = acct.exchange.get_order(ev.symbol, order_id=ev.order_id)
            if not sim.is_algo:  # algo orders are announced by the REST handler, which knows their record
                self.send(acct, forced(order_event(acct, sim, "NEW", ev.ts_event)))
        elif isinstance(ev, OrderCanceled | OrderExpired):
            self._finished(acct, ev, "CANCELED" if isinstance(ev, OrderCanceled) else "EXPIRED")
        elif isinstance(ev, OrderAmended) and self.listened(acct):
            sim = acct.exchange.get_order(ev.symbol, order_id=ev.order_id)
            self.send(acct, order_event(acct, sim, "AMENDMENT", ev.ts_event))

    def algo_new(self, acct: Account, rec: AlgoRecord) -> None:
        self.send(acct, algo_event(acct, rec, rec.sim.time))

    def triggered(self, acct: Account, rec: AlgoRecord, ts: int) -> None:
        """An algo order fired: the NEW of the order it placed, then ALGO_UPDATE TRIGGERED (Binance's order:
        the placed order is announced before the algo order says it triggered)."""
        if not acct.mark_triggered(rec, ts):
            return
        self.send(acct, _as_new(order_event(acct, rec.sim, "NEW", ts)))
        event = algo_event(acct, rec, ts)
        event["o"]["X"] = "TRIGGERED"
        self.send(acct, event)

    def _filled(self, acct: Account, ev: OrderFilled) -> None:
        if ev.order_id not in acct.algos and not self.listened(acct):
            return  # as in _finished
        sim = acct.exchange.get_order(ev.symbol, order_id=ev.order_id)
        rec = acct.algos.get(sim.order_id) if sim.is_algo else None
        if rec is not None:
            self.triggered(acct, rec, ev.ts_event)
        x = "CALCULATED" if ev.liquidation else "TRADE"
        if self.listened(acct):
            self.send(acct, forced(order_event(
                acct, sim, x, ev.ts_event, last_qty=ev.quantity, last_price=ev.price, commission=ev.commission,
                trade_id=ev.trade_id, maker=ev.is_maker, realized=ev.realized_pnl,
            )))
        if rec is not None and not sim.is_open:
            self.send(acct, algo_event(acct, rec, ev.ts_event))

    def _finished(self, acct: Account, ev: OrderCanceled | OrderExpired, x: str) -> None:
        if ev.order_id not in acct.algos and not self.listened(acct):
            return  # no algo record to update, nobody to tell: not even the look-up (a cancel through REST alone)
        sim = acct.exchange.get_order(ev.symbol, order_id=ev.order_id)
        if sim.is_algo:
            rec = acct.algos.get(sim.order_id)
            if rec is None:
                return
            if rec.triggered:
                self.send(acct, order_event(acct, sim, x, ev.ts_event))
            rec.update_time = ev.ts_event
            self.send(acct, algo_event(acct, rec, ev.ts_event))
            return
        if self.listened(acct):
            self.send(acct, order_event(acct, sim, x, ev.ts_event))

    def _balance(self, acct: Account, ev: BalanceChanged) -> None:
        symbols = self._pending.pop(id(acct), set())
        if not self.listened(acct):
            return
        reason = _REASONS.get(ev.reason, ev.reason.value)
        change = ev.change if reason not in ("ORDER",) else Decimal(0)
        wallet = money(ev.wallet_balance)
        data: dict[str, Any] = {"m": reason, "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": money(change)}],
                                "P": [self._view(acct, s).stream_row() for s in sorted(symbols)]}
        self.send(acct, {"e": "ACCOUNT_UPDATE", "E": ev.ts_event, "T": ev.ts_event, "a": data})

    def margin_call(self, acct: Account, ratio_limit: Decimal) -> None:
        """MARGIN_CALL once each time the maintenance/margin-balance ratio crosses ``ratio_limit``."""
        ex = acct.exchange
        symbols = [s for s in ex.symbols if ex.position(s)[0] != 0]
        if not symbols:
            acct.margin_call_sent = False
            return
        mb = ex.margin_balance()
        mm = sum((ex.maintenance_margin(s) for s in symbols), Decimal(0))
        if mb > 0 and mm / mb < ratio_limit:
            acct.margin_call_sent = False
            return
        if acct.margin_call_sent:
            return
        acct.margin_call_sent = True
        rows = []
        for s in symbols:
            v = self._view(acct, s)
            rows.append({"s": s, "ps": "BOTH", "pa": v.stream_row()["pa"], "mt": "CROSSED", "iw": "0",
                         "mp": money(v.mark), "up": money(v.upnl), "mm": money(v.mm)})
        self.send(acct, {"e": "MARGIN_CALL", "E": self._market(), "cw": money(ex.wallet), "p": rows})


def _as_new(event: dict[str, Any]) -> dict[str, Any]:
    """An ORDER_TRADE_UPDATE rewritten as the order's NEW (before any fill happened)."""
    o = event["o"]
    o["X"] = "NEW"
    o["z"] = o["l"] = "0"
    o["ap"] = o["L"] = "0"
    return event

