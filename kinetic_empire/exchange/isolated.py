"""Isolated margin bookkeeping of the simulated exchange (reference section 9.2 and 9.3).

An isolated position has its own wallet: opening or adding moves the fill's initial margin (notional /
leverage) from the cross wallet into it; reducing moves the reduced share back (realized PnL goes to the
account's wallet as for any fill); funding is booked to it; adding or removing margin moves USDT between it and
the cross wallet. Its liquidation price is Binance's formula with the isolated wallet as the only margin, and
its unrealized PnL does not count for the cross positions nor for the available balance. The account's
``wallet`` stays the total wallet balance (cross wallet plus every isolated wallet).
"""

from __future__ import annotations

from decimal import Decimal

from .book import ZERO, BookPosition, money


def after_fill(pos: BookPosition, old: Decimal, new: Decimal, price: Decimal) -> None:
    """Move margin into or out of ``pos``'s isolated wallet for a fill that took the quantity from ``old``
    to ``new`` at ``price`` (before ``pos.qty`` is updated)."""
    if new == 0:
        pos.iso_wallet = ZERO
        return
    if old != 0 and (old > 0) == (new > 0) and abs(new) < abs(old):  # reduced: the reduced share goes back
        pos.iso_wallet = money(pos.iso_wallet * abs(new) / abs(old))
        return
    if old != 0 and (old > 0) != (new > 0):  # flipped: the old side's margin goes back, the new side's comes in
        pos.iso_wallet = ZERO
        opened = abs(new)
    else:
        opened = abs(new) - abs(old)
    pos.iso_wallet += money(opened * price / pos.leverage)


def max_removable(pos: BookPosition, mark: Decimal) -> Decimal:
    """What can leave the isolated wallet: what exceeds the position's initial margin at the mark, counting
    a loss but not a profit (Binance)."""
    upnl = pos.qty * (mark - pos.entry)
    return max(ZERO, money(pos.iso_wallet + min(upnl, ZERO) - abs(pos.qty) * mark / pos.leverage))


__all__ = ["after_fill", "max_removable"]
