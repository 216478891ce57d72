"""trades.csv and orders.csv as a quant reads them: key columns first, ISO-8601 UTC times and durations
next to the millisecond columns, and numbers rounded to what the symbol can express.

Rounding (for reading only; the ledger keeps full Decimals and net PnL is computed before rounding):
- quantities: the symbol's quantity precision (its lot step);
- prices of orders and fills: the symbol's price precision (its tick); a trade's entry and exit prices
  are averages of fills, so they keep two more decimals than the tick;
- money (PnL, fees, funding) in the margin asset: 8 decimals, as Binance books USDT;
- return_pct: 4 decimals.
Trailing zeros are dropped. A symbol without rules (none given) keeps 10 decimals everywhere.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..core.rules import SymbolRules
from ._rows import cell

MONEY_PLACES = 8
RETURN_PLACES = 4
FALLBACK_PLACES = 10
AVERAGE_EXTRA_PLACES = 2

TRADE_COLUMNS = (
    "trade_id", "strategy_id", "symbol", "side", "entry_tag", "entry_time_utc", "exit_time_utc", "duration",
    "quantity", "entry_price", "exit_price", "net_pnl", "return_pct", "exit_reason", "exit_tag",
    "gross_pnl", "fees", "funding", "entry_time", "exit_time", "duration_ms",
)  # fmt: skip
"""trades.csv header: what a trade is and how it went first; the millisecond columns last."""

ORDER_COLUMNS = (
    "time_utc", "client_order_id", "strategy_id", "symbol", "side", "order_type", "quantity", "price",
    "status", "reason", "tag", "ts",
)  # fmt: skip
"""orders.csv header."""


def iso_time(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds: ``2023-08-03T14:00:00.000Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_duration(ms: int) -> str:
    """A duration as ISO-8601 in pandas' form (``P1DT2H30M0S``, ``P0DT0H0M0.5S``); ``pd.Timedelta`` parses it."""
    sign = "-" if ms < 0 else ""
    days, rest = divmod(abs(int(ms)), 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    secs = f"{seconds}.{millis:03d}".rstrip("0") if millis else str(seconds)
    return f"{sign}P{days}DT{hours}H{minutes}M{secs}S"


def rounded(value: Decimal | None, places: int) -> Decimal | None:
    """``value`` to ``places`` decimals (half-even), or None."""
    if value is None:
        return None
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


class Precision:
    """Decimals to show per symbol, from its exchange rules."""

    def __init__(self, rules: Mapping[str, SymbolRules] | None = None) -> None:
        self._rules = rules or {}

    def price(self, symbol: str) -> int:
        r = self._rules.get(symbol)
        return _places(r.tick_size) if r is not None else FALLBACK_PLACES

    def quantity(self, symbol: str) -> int:
        r = self._rules.get(symbol)
        return _places(r.step_size) if r is not None else FALLBACK_PLACES

    def average_price(self, symbol: str) -> int:
        return self.price(symbol) + AVERAGE_EXTRA_PLACES if symbol in self._rules else FALLBACK_PLACES


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else FALLBACK_PLACES


def trade_row(t: Any, precision: Precision) -> dict[str, Any]:
    """One trade as display values by column name (times and durations also in ISO-8601)."""
    sym = t.symbol
    return {
        "trade_id": t.trade_id,
        "strategy_id": t.strategy_id,
        "symbol": sym,
        "side": t.side,
        "entry_tag": getattr(t, "entry_tag", ""),
        "entry_time_utc": iso_time(t.entry_time),
        "exit_time_utc": iso_time(t.exit_time),
        "duration": iso_duration(t.duration_ms),
        "quantity": rounded(t.quantity, precision.quantity(sym)),
        "entry_price": rounded(t.entry_price, precision.average_price(sym)),
        "exit_price": rounded(t.exit_price, precision.average_price(sym)),
        "net_pnl": rounded(t.net_pnl, MONEY_PLACES),
        "return_pct": rounded(t.return_pct, RETURN_PLACES),
        "exit_reason": t.exit_reason,
        "exit_tag": getattr(t, "exit_tag", ""),
        "gross_pnl": rounded(t.gross_pnl, MONEY_PLACES),
        "fees": rounded(t.fees, MONEY_PLACES),
        "funding": rounded(t.funding, MONEY_PLACES),
        "entry_time": t.entry_time,
        "exit_time": t.exit_time,
        "duration_ms": t.duration_ms,
    }


def order_row(o: Any, precision: Precision) -> dict[str, Any]:
    sym = o.symbol
    return {
        "time_utc": iso_time(o.ts),
        "client_order_id": o.client_order_id,
        "strategy_id": o.strategy_id,
        "symbol": sym,
        "side": o.side,
        "order_type": o.order_type,
        "quantity": rounded(o.quantity, precision.quantity(sym)),
        "price": rounded(o.price, precision.price(sym)),
        "status": o.status,
        "reason": o.reason,
        "tag": getattr(o, "tag", ""),
        "ts": o.ts,
    }


def _csv(header: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([cell(r[name]) for name in header] for r in rows)
    return buf.getvalue().encode("utf-8")


def _rows(
    items: Sequence[Any], make: Callable[[Any, Precision], dict[str, Any]], precision: Precision
) -> list[dict[str, Any]]:
    return [make(item, precision) for item in items]


def trades_csv(trades: Sequence[Any], rules: Mapping[str, SymbolRules] | None = None) -> bytes:
    """trades.csv; the header is written even without trades."""
    return _csv(TRADE_COLUMNS, _rows(trades, trade_row, Precision(rules)))


def orders_csv(orders: Sequence[Any], rules: Mapping[str, SymbolRules] | None = None) -> bytes:
    """orders.csv; the header is written even without orders."""
    return _csv(ORDER_COLUMNS, _rows(orders, order_row, Precision(rules)))
