"""Execution quality of a live run: slippage per order and in total, latency percentiles, rejections by code.

Fed by bus events in order (live from the bus, or replayed from the journal), it pairs each order with the
price it was meant to get and the time it was sent:

- **reference price**: a stop or take-profit's trigger price; otherwise the close the strategy (or the
  operator) decided on, the intent's ``reference_price``;
- **slippage** in basis points of the reference, signed so that positive is worse for us (paid more on a
  buy, got less on a sell), per fill and quantity-weighted per order; the total is also in quote currency;
- **latency**: request to venue acknowledgement and request to first fill, from the events' stamps (the
  venue's market clock). On an accelerated sandbox replay market time runs ``speed`` times wall time, so
  the figures are divided by it; a run can also pass wall-clock samples it measured (``wall_latency_ms``).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from ..core.enums import Side
from ..core.events import OrderAccepted, OrderFilled, OrderIntent, OrderRejected, OrderRequest

_BPS = Decimal(10_000)
_TRIGGERED = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET")
_ZERO = Decimal(0)


@dataclass(slots=True)
class OrderQuality:
    client_order_id: str
    symbol: str
    strategy_id: str
    side: str
    order_type: str
    intent_id: str
    reference_price: Decimal | None  # the trigger price, else found from the intent at the first fill
    sent_ms: int
    ack_ms: int | None = None
    first_fill_ms: int | None = None
    filled_qty: Decimal = _ZERO
    notional: Decimal = _ZERO  # sum of fill price x quantity
    slippage_quote: Decimal = _ZERO  # signed cost against the reference, in quote currency
    rejected_code: int | None = None

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled_qty if self.filled_qty else None

    @property
    def slippage_bps(self) -> float | None:
        if not self.filled_qty or not self.reference_price:
            return None
        return float(self.slippage_quote / (self.reference_price * self.filled_qty) * _BPS)


class ExecutionQuality:
    """Order-by-order execution figures from the bus events of a run."""

    def __init__(self, *, speed: float | None = None) -> None:
        self.speed = speed if speed and speed > 0 else None
        self.references: dict[str, float] = {}  # intent id -> reference price
        self.orders: dict[str, OrderQuality] = {}
        self.rejections: Counter[int] = Counter()
        self.rejection_reasons: dict[int, str] = {}
        self.fill_slippage_bps: list[float] = []

    def on_event(self, e: Any) -> float | None:
        """Take one event; returns a fill's slippage in bps (None for anything else)."""
        kind = type(e)
        if kind is OrderIntent:
            self.references[e.intent_id] = e.reference_price
        elif kind is OrderRequest:  # live, the bus may deliver it before its intent reaches us
            self.orders[e.client_order_id] = OrderQuality(
                e.client_order_id, e.symbol, e.strategy_id, e.side.value, e.order_type.value, e.intent_id,
                e.trigger_price if e.trigger_price is not None else e.price, e.ts_init)
        elif kind is OrderAccepted:
            q = self.orders.get(e.client_order_id)
            if q is not None and q.ack_ms is None:
                q.ack_ms = e.ts_event
        elif kind is OrderRejected:
            self.rejections[e.code] += 1
            self.rejection_reasons.setdefault(e.code, e.reason)
            q = self.orders.get(e.client_order_id)
            if q is not None:
                q.rejected_code = e.code
        elif kind is OrderFilled:
            return self._fill(e)
        return None

    def _fill(self, f: OrderFilled) -> float | None:
        q = self.orders.get(f.client_order_id)
        if q is None:
            return None
        if q.first_fill_ms is None:
            q.first_fill_ms = f.ts_event
            price = self.references.get(q.intent_id)
            if price and q.order_type not in _TRIGGERED:
                q.reference_price = Decimal(repr(price))
        q.filled_qty += f.quantity
        q.notional += f.price * f.quantity
        if not q.reference_price:
            return None
        sign = 1 if f.side is Side.BUY else -1
        cost = (f.price - q.reference_price) * f.quantity * sign
        q.slippage_quote += cost
        bps = float((f.price - q.reference_price) / q.reference_price * _BPS) * sign
        self.fill_slippage_bps.append(bps)
        return bps

    # ------------------------------------------------------------------------------ figures
    def _ms(self, start: int, end: int | None) -> float | None:
        if end is None:
            return None
        delta = max(0, end - start)
        return delta / self.speed if self.speed else float(delta)

    def latencies(self) -> dict[str, list[float]]:
        ack = [v for q in self.orders.values() if (v := self._ms(q.sent_ms, q.ack_ms)) is not None]
        fill = [v for q in self.orders.values() if (v := self._ms(q.sent_ms, q.first_fill_ms)) is not None]
        return {"ack": ack, "first_fill": fill}

    def summary(self, wall_latency_ms: dict[str, list[float]] | None = None) -> dict[str, Any]:
        filled = [q for q in self.orders.values() if q.filled_qty]
        total_quote = sum((q.slippage_quote for q in filled), _ZERO)
        notional = sum((q.reference_price * q.filled_qty for q in filled if q.reference_price), _ZERO)
        out: dict[str, Any] = {
            "orders": len(self.orders),
            "filled_orders": len(filled),
            "fill_rate": round(len(filled) / len(self.orders), 4) if self.orders else None,
            "rejected_orders": sum(self.rejections.values()),
            "rejections_by_code": {str(c): {"count": n, "reason": self.rejection_reasons.get(c, "")}
                                   for c, n in sorted(self.rejections.items())},
            "slippage_total_quote": format(total_quote, "f"),
            "slippage_total_bps": round(float(total_quote / notional * _BPS), 3) if notional else None,
            "slippage_fill_bps": percentiles(self.fill_slippage_bps),
            "latency_basis": (f"venue market time / replay speed {self.speed:g}" if self.speed else
                              "venue market time"),
            "latency_ms": {k: percentiles(v) for k, v in self.latencies().items()},
        }
        if wall_latency_ms:
            out["wall_latency_ms"] = {k: percentiles(v) for k, v in wall_latency_ms.items()}
        return out

    def per_order_csv(self) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["client_order_id", "strategy_id", "symbol", "side", "order_type", "reference_price",
                    "filled_qty", "avg_price", "slippage_bps", "slippage_quote", "ack_ms", "first_fill_ms",
                    "rejected_code"])
        for q in self.orders.values():
            avg = q.avg_price
            bps = q.slippage_bps
            ack, fill = self._ms(q.sent_ms, q.ack_ms), self._ms(q.sent_ms, q.first_fill_ms)
            w.writerow([q.client_order_id, q.strategy_id, q.symbol, q.side, q.order_type,
                        "" if q.reference_price is None else format(q.reference_price, "f"),
                        format(q.filled_qty, "f"), "" if avg is None else format(avg.normalize(), "f"),
                        "" if bps is None else f"{bps:.3f}", format(q.slippage_quote.normalize(), "f"),
                        "" if ack is None else f"{ack:.3f}", "" if fill is None else f"{fill:.3f}",
                        "" if q.rejected_code is None else q.rejected_code])
        return buf.getvalue().encode("utf-8")


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    a = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"n": len(values), "p50": round(float(p50), 3), "p90": round(float(p90), 3),
            "p99": round(float(p99), 3), "max": round(float(a.max()), 3), "mean": round(float(a.mean()), 3)}


def render_section(summary: dict[str, Any]) -> str:
    """The report's HTML section (inserted before ``</body>``)."""
    from html import escape

    def row(k: str, v: Any) -> str:
        return f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>"

    def pct(d: dict[str, Any]) -> str:
        if not d.get("n"):
            return "n/a"
        return f"p50 {d['p50']} · p90 {d['p90']} · p99 {d['p99']} · max {d['max']} (n={d['n']})"

    rows = [
        row("orders sent", summary["orders"]),
        row("orders filled", f"{summary['filled_orders']} (fill rate {summary['fill_rate']})"),
        row("orders rejected", summary["rejected_orders"]),
        row("slippage, total", f"{summary['slippage_total_quote']} quote ({summary['slippage_total_bps']} bps)"),
        row("slippage per fill, bps", pct(summary["slippage_fill_bps"])),
        row(f"latency to ack, ms ({summary['latency_basis']})", pct(summary["latency_ms"]["ack"])),
        row(f"latency to first fill, ms ({summary['latency_basis']})", pct(summary["latency_ms"]["first_fill"])),
    ]
    for k, v in (summary.get("wall_latency_ms") or {}).items():
        rows.append(row(f"wall-clock {k.replace('_', ' ')}, ms", pct(v)))
    rejections = "".join(row(f"code {c}", f"{d['count']} × {d['reason']}")
                         for c, d in summary["rejections_by_code"].items()) or row("none", "")
    return ('<section id="execution-quality"><h2>Execution quality</h2><table>' + "".join(rows) + "</table>"
            "<h3>Rejections by code</h3><table>" + rejections + "</table>"
            '<p class="muted">Slippage: fill price against the price the order was meant for (trigger price of '
            "a stop or take-profit, else the close the intent was made on); positive is worse. Per-order figures "
            "in execution_quality.csv.</p></section>")
