"""The soak's read-only view of a run journal while the engine writes it (SQLite WAL, opened ``mode=ro``).

Only the rows the invariants need are read (orders, fills, final states, positions, wallet, reconciliation
notes), never the klines. A journal that does not exist yet, or is locked for a moment, reads as ``None``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from kinetic_empire.live.journal import decode

KINDS = ("OrderRequest", "OrderAccepted", "OrderFilled", "OrderCanceled", "OrderExpired", "OrderRejected",
         "PositionChanged", "BalanceChanged", "Note")


@dataclass
class JournalView:
    """What the journal held at one moment (``taken``: monotonic seconds)."""

    taken: float
    requests: dict[str, Any] = field(default_factory=dict)  # client id -> first OrderRequest
    repeated: list[str] = field(default_factory=list)  # client ids requested more than once
    fills: dict[tuple[int, int], int] = field(default_factory=dict)  # (order id, trade id) -> times recorded
    terminal: dict[str, str] = field(default_factory=dict)  # client id -> "canceled" / "expired" / "rejected ..."
    accepted: set[str] = field(default_factory=set)
    positions: dict[str, Decimal] = field(default_factory=dict)
    wallet: Decimal | None = None
    reconciles: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (seq, plan)
    rejections: list[tuple[str, int, str]] = field(default_factory=list)  # (client id, code, reason)

    @classmethod
    def read(cls, path: Path) -> JournalView | None:
        if not path.is_file():
            return None
        view = cls(time.monotonic())
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
            try:
                rows = db.execute(f"SELECT seq, kind, payload FROM events WHERE kind IN ({','.join('?' * len(KINDS))})"
                                  " ORDER BY seq", KINDS).fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            return None
        for seq, kind, payload in rows:
            view._add(seq, kind, decode(kind, json.loads(payload)))
        return view

    def _add(self, seq: int, kind: str, e: Any) -> None:
        if kind == "OrderRequest":
            if e.client_order_id in self.requests:
                self.repeated.append(e.client_order_id)
            else:
                self.requests[e.client_order_id] = e
        elif kind == "OrderAccepted":
            self.accepted.add(e.client_order_id)
        elif kind == "OrderFilled":
            key = (e.order_id, e.trade_id)
            self.fills[key] = self.fills.get(key, 0) + 1
        elif kind in ("OrderCanceled", "OrderExpired"):
            self.terminal[e.client_order_id] = kind[5:].lower()
        elif kind == "OrderRejected":
            self.terminal[e.client_order_id] = f"rejected {e.code}"
            self.rejections.append((e.client_order_id, e.code, e.reason))
        elif kind == "PositionChanged":
            self.positions[e.symbol] = e.quantity
        elif kind == "BalanceChanged" and e.asset == "USDT":
            self.wallet = e.wallet_balance
        elif kind == "Note" and e.topic == "reconcile":
            self.reconciles.append((seq, dict(e.data)))


__all__ = ["JournalView"]
