"""Estimated liquidation price, Binance's formula for one-way mode (reference section 9.3).

Used by the liquidation-distance guard on the position an entry would leave behind. Cross margin:
the wallet balance backs every position, so the other positions' maintenance margin and unrealized
PnL enter the formula; isolated margin is the same call with the isolated wallet and zero for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from ..core.account import PositionView
from ..core.rules import LeverageBrackets

ZERO = Decimal(0)


def liquidation_price(
    *,
    quantity: Decimal,
    entry_price: Decimal,
    wallet_balance: Decimal,
    brackets: LeverageBrackets,
    other_maintenance: Decimal = ZERO,
    other_upnl: Decimal = ZERO,
) -> Decimal:
    """LP for a signed position; 0 when it can never be liquidated (LP <= 0).

    The maintenance bracket is the one of the notional *at the liquidation price*: start from the
    notional at entry and repeat with the bracket the result falls in until it is stable.
    """
    if quantity == 0:
        return ZERO
    side = 1 if quantity > 0 else -1
    q = abs(quantity)
    bracket = brackets.bracket_for(q * entry_price)
    base = wallet_balance - other_maintenance + other_upnl - side * q * entry_price
    lp = ZERO
    for _ in range(len(brackets.brackets) + 1):
        lp = (base + bracket.cum) / (q * bracket.maint_margin_ratio - side * q)
        if lp <= 0:
            return ZERO
        again = brackets.bracket_for(q * lp)
        if again == bracket:
            break
        bracket = again
    return lp


def other_positions_terms(
    positions: Iterable[PositionView],
    exclude: str,
    brackets: Mapping[str, LeverageBrackets],
    price_of: Callable[[str], float],
) -> tuple[Decimal, Decimal]:
    """(maintenance margin, unrealized PnL) of every open position except ``exclude``, at latest prices.

    A position whose brackets are unknown counts with no maintenance margin; a position without a
    price yet is valued at its entry.
    """
    mm = ZERO
    upnl = ZERO
    for p in positions:
        if p.symbol == exclude or p.quantity == 0:
            continue
        last = price_of(p.symbol)
        price = Decimal(str(last)) if last > 0 else p.entry_price
        b = brackets.get(p.symbol)
        if b is not None:
            mm += b.maintenance_margin(abs(p.quantity) * price)
        upnl += p.quantity * (price - p.entry_price)
    return mm, upnl
