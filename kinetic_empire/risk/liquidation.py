"""Estimated liquidation price of the position an entry would leave behind, for the liquidation-distance guard.

The formula itself is :func:`kinetic_empire.core.liquidation.liquidation_price`, the one the simulated
exchange liquidates at; this module feeds it the risk manager's view of the account. Cross margin: the
wallet balance backs every position, so the other positions' maintenance margin and unrealized PnL enter
the formula; isolated margin is the same call with the isolated wallet and zero for both (Binance's FAQ:
``TMM1 = 0, UPNL1 = 0``), so the account's other positions and wallet do not move an isolated LP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from ..core import liquidation as formula
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
    """LP for a signed position; 0 when it can never be liquidated (LP <= 0)."""
    margin = wallet_balance - other_maintenance + other_upnl
    return formula.liquidation_price(quantity, entry_price, margin, formula.tiers(brackets))


def isolated_wallet_after(position: PositionView, added: Decimal, price: Decimal, leverage: int) -> Decimal:
    """The isolated wallet an entry of ``added`` at ``price`` leaves behind: its initial margin
    (notional / leverage), plus, when it adds to a same-side position, that position's initial margin at
    entry (the exchange moved exactly that in; funding and margin moved by hand since are not known here)."""
    wallet = abs(added) * price / leverage
    if position.quantity != 0 and (position.quantity > 0) == (added > 0):
        wallet += abs(position.quantity) * position.entry_price / max(position.leverage, 1)
    return wallet


def isolated_liquidation_price(
    *, quantity: Decimal, entry_price: Decimal, isolated_wallet: Decimal, brackets: LeverageBrackets
) -> Decimal:
    """LP of an isolated position: its own wallet is all that backs it; 0 when it can never be liquidated."""
    return liquidation_price(quantity=quantity, entry_price=entry_price, wallet_balance=isolated_wallet,
                             brackets=brackets)


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
            mm += formula.maintenance_margin(formula.tiers(b), abs(p.quantity) * price)
        upnl += p.quantity * (price - p.entry_price)
    return mm, upnl
