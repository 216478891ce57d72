"""Rows the portfolio records for reports: frozen, slotted, Decimal for money.

They are plain dataclasses so the report layer can write any of them to CSV from ``dataclasses.fields``
without knowing the portfolio.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..core.enums import PositionSide

_PLACES = Decimal("1e-10")
_ONE = Decimal(1)


def tidy(value: Decimal) -> Decimal:
    """Round a derived amount (an average, a ratio) to 10 places and drop trailing zeros.

    Averages divide Decimals and would otherwise carry 28 digits of noise into every CSV.
    """
    if not value:
        return Decimal(0)
    out = value.quantize(_PLACES).normalize()
    # 4E+4 -> 40000: a normalized whole number (its exponent 0 or more) quantised to the units (the same digits when
    # the exponent is 0), without as_tuple (which builds a tuple of every digit)
    return out.quantize(_ONE) if out == out.to_integral_value() else out


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    """One row per order event (accepted, rejected, canceled, expired, each fill)."""

    ts: int
    client_order_id: str
    strategy_id: str
    symbol: str
    side: str  # "" when the order was never seen before the event (e.g. an exchange-side rejection)
    order_type: str
    quantity: Decimal | None  # order quantity, or the fill quantity for a fill row
    price: Decimal | None  # limit/trigger price, or the fill price for a fill row
    status: str  # NEW, REJECTED, CANCELED, EXPIRED, PARTIALLY_FILLED, FILLED
    reason: str  # the engine's tag (signal, stop_loss, ...) or the exchange's reason
    tag: str = ""  # the strategy's tag from buy()/sell()/close_position()/reduce(); "" for stops and targets


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRecord:
    """A round trip: from flat to flat (a flip closes one trade and opens the next).

    ``gross_pnl`` is the exchange's realized PnL of the reducing fills, ``fees`` the commissions of
    every fill in the trade, ``funding`` the signed funding booked while it was open (negative = paid),
    ``net_pnl = gross_pnl - fees + funding`` and ``return_pct`` is net PnL over the entry notional
    (sum of price x quantity of the fills that grew the position), in percent.
    """

    trade_id: int
    strategy_id: str
    symbol: str
    side: PositionSide  # LONG or SHORT
    quantity: Decimal  # largest absolute size reached
    entry_time: int
    entry_price: Decimal  # quantity-weighted average of the fills that grew the position
    exit_time: int
    exit_price: Decimal  # quantity-weighted average of the fills that shrank it
    gross_pnl: Decimal
    fees: Decimal
    funding: Decimal
    net_pnl: Decimal
    return_pct: Decimal
    exit_reason: str  # signal, stop_loss, take_profit, liquidation, ... or "open" for a still-open trade
    duration_ms: int
    entry_tag: str = ""  # the tag of the strategy action whose fill opened the trade
    exit_tag: str = ""  # the tag of the strategy action whose fill closed it ("" for stops, targets, liquidations)


@dataclass(frozen=True, slots=True, kw_only=True)
class DenialRecord:
    """An intent the risk manager refused."""

    ts: int
    intent_id: str
    strategy_id: str
    symbol: str
    code: str
    message: str
