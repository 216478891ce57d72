"""Liquidation prices of every open position under cross margin (one-way mode, reference section 9.3).

The wallet backs every position, so each position's liquidation price depends on the others'
maintenance margin and unrealized PnL: one changes whenever any of them does. The formula is the shared
:func:`kinetic_empire.core.liquidation.liquidation_price`, in floats, because the result is compared with
every kline's high and low.
"""

from __future__ import annotations

from collections.abc import Collection

from ..core.liquidation import liquidation_price, maintenance_margin
from .book import INF, Book


def solve_liquidation_prices(books: Collection[Book], wallet: float) -> int:
    """Set every book's liquidation price and watch levels; returns how many positions are open."""
    open_books = [b for b in books if b.pos.qty_f != 0.0]
    for b in books:
        if b.pos.qty_f == 0.0:
            b.pos.liq_f = 0.0
            b.watch_low, b.watch_high = -INF, INF
    if not open_books:
        return 0
    mm_upnl: list[tuple[float, float]] = []
    for b in open_books:
        pos = b.pos
        price = b.last or pos.entry_f
        mm_upnl.append((maintenance_margin(b.tiers, abs(pos.qty_f) * price), pos.qty_f * (price - pos.entry_f)))
    total_mm = sum(m for m, _ in mm_upnl)
    total_upnl = sum(u for _, u in mm_upnl)
    for b, (mm, upnl) in zip(open_books, mm_upnl):
        pos = b.pos
        liq = liquidation_price(pos.qty_f, pos.entry_f, wallet - (total_mm - mm) + (total_upnl - upnl), b.tiers)
        pos.liq_f = liq
        if pos.qty_f > 0:
            b.watch_low, b.watch_high = (liq if liq > 0 else -INF), INF
        else:
            b.watch_low, b.watch_high = -INF, (liq if liq > 0 else INF)
    return len(open_books)
