"""The order-state table the operator sees, fed only by bus events.

States are the operator-facing ones of the project's brief, mapped from Binance's statuses:

=================  ===================================  ==========================================
state              Binance status                        bus event
=================  ===================================  ==========================================
PENDING            (not answered yet)                    OrderRequest (journaled, sent or queued)
ACCEPTED           NEW                                   OrderAccepted
PARTIALLY_FILLED   PARTIALLY_FILLED                      OrderFilled with status PARTIALLY_FILLED
FILLED             FILLED                                OrderFilled with status FILLED
CANCELLED          CANCELED                              OrderCanceled
REJECTED           REJECTED, or a placement refused      OrderRejected (venue or journal refusal)
EXPIRED            EXPIRED, EXPIRED_IN_MATCH             OrderExpired
=================  ===================================  ==========================================

PENDING is the only state not in the brief: the time between the journal's commit and the venue's
answer. Terminal orders are kept (most recent ``keep_terminal``) so ``order_state`` answers after the fact.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..core.enums import OrderStatus
from ..core.events import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
)

PENDING = "PENDING"
ACCEPTED = "ACCEPTED"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELLED = "CANCELLED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
TERMINAL = frozenset({FILLED, CANCELLED, REJECTED, EXPIRED})

BINANCE_TO_STATE: dict[str, str] = {
    OrderStatus.NEW.value: ACCEPTED,
    OrderStatus.PARTIALLY_FILLED.value: PARTIALLY_FILLED,
    OrderStatus.FILLED.value: FILLED,
    OrderStatus.CANCELED.value: CANCELLED,
    OrderStatus.REJECTED.value: REJECTED,
    OrderStatus.EXPIRED.value: EXPIRED,
    OrderStatus.EXPIRED_IN_MATCH.value: EXPIRED,
}


@dataclass(slots=True)
class OrderRow:
    client_order_id: str
    symbol: str
    strategy_id: str = ""
    intent_id: str = ""
    side: str = ""
    order_type: str = ""
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    reduce_only: bool = False
    close_position: bool = False
    state: str = PENDING
    order_id: int = 0
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    reason: str = ""
    code: int | None = None
    created_ms: int = 0
    updated_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id, "order_id": self.order_id or None, "symbol": self.symbol,
            "strategy_id": self.strategy_id, "intent_id": self.intent_id, "side": self.side,
            "type": self.order_type, "quantity": _s(self.quantity), "price": _s(self.price),
            "stop_price": _s(self.trigger_price), "reduce_only": self.reduce_only,
            "close_position": self.close_position, "state": self.state, "filled_qty": _s(self.filled_qty),
            "avg_price": _s(self.avg_price), "reason": self.reason, "code": self.code,
            "created_ms": self.created_ms, "updated_ms": self.updated_ms,
        }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


class OrderTable:
    """Every order of the run by client id, updated from the bus; terminal ones bounded."""

    def __init__(self, keep_terminal: int = 5000) -> None:
        self.rows: OrderedDict[str, OrderRow] = OrderedDict()
        self.keep_terminal = keep_terminal
        self._terminal = 0

    def get(self, client_order_id: str) -> OrderRow | None:
        return self.rows.get(client_order_id)

    def open(self) -> list[OrderRow]:
        return [r for r in self.rows.values() if r.state not in TERMINAL]

    def _row(self, cid: str, symbol: str, ts: int) -> OrderRow:
        row = self.rows.get(cid)
        if row is None:
            row = self.rows[cid] = OrderRow(cid, symbol, created_ms=ts)
        return row

    def _finish(self, row: OrderRow, state: str) -> None:
        if row.state not in TERMINAL:
            self._terminal += 1
        row.state = state
        if self._terminal > self.keep_terminal:
            for cid, r in list(self.rows.items()):
                if r.state in TERMINAL:
                    del self.rows[cid]
                    self._terminal -= 1
                    if self._terminal <= self.keep_terminal // 2:
                        break

    # ------------------------------------------------------------------------------ bus handlers
    def on_event(self, e: Any) -> OrderRow | None:
        """Apply one order event; returns the row it changed (None for an unrelated event)."""
        if isinstance(e, OrderRequest):
            row = self._row(e.client_order_id, e.symbol, e.ts_event)
            row.strategy_id, row.intent_id, row.side = e.strategy_id, e.intent_id, e.side.value
            row.order_type, row.quantity, row.price = e.order_type.value, e.quantity, e.price
            row.trigger_price, row.reduce_only, row.close_position = e.trigger_price, e.reduce_only, e.close_position
        elif isinstance(e, OrderAccepted):
            row = self._row(e.client_order_id, e.symbol, e.ts_event)
            row.order_id = e.order_id
            row.side, row.order_type = row.side or e.side.value, row.order_type or e.order_type.value
            row.quantity = row.quantity if row.quantity is not None else e.quantity
            row.price = row.price if row.price is not None else e.price
            row.trigger_price = row.trigger_price if row.trigger_price is not None else e.trigger_price
            if row.state == PENDING:
                row.state = ACCEPTED
        elif isinstance(e, OrderFilled):
            row = self._row(e.client_order_id, e.symbol, e.ts_event)
            row.order_id = row.order_id or e.order_id
            total = row.filled_qty + e.quantity
            paid = (row.avg_price or Decimal(0)) * row.filled_qty + e.price * e.quantity
            row.filled_qty, row.avg_price = total, (paid / total if total else None)
            state = BINANCE_TO_STATE.get(e.status.value, PARTIALLY_FILLED)
            if state == FILLED:
                self._finish(row, FILLED)
            elif row.state not in TERMINAL:
                row.state = state
        elif isinstance(e, OrderCanceled | OrderExpired):
            row = self._row(e.client_order_id, e.symbol, e.ts_event)
            row.order_id = row.order_id or e.order_id
            row.reason = e.reason
            self._finish(row, CANCELLED if isinstance(e, OrderCanceled) else EXPIRED)
        elif isinstance(e, OrderRejected):
            row = self._row(e.client_order_id, e.symbol, e.ts_event)
            row.reason, row.code = e.reason, e.code
            self._finish(row, REJECTED)
        else:
            return None
        row.updated_ms = e.ts_event
        return row
