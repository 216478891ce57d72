"""Liquidation prices of every open position under cross margin (one-way mode, reference section 9.3); an
isolated position's from its own wallet alone (:mod:`.isolated`), and the cross pool is what is left.

The wallet backs every position, so each position's liquidation price depends on the others'
maintenance margin and unrealized PnL: one changes whenever any of them does. The formula is the shared
:func:`kinetic_empire.core.liquidation.liquidation_price`, in floats, because the result is compared with
every kline's high and low.

Re-solving on every kline while several positions are open was most of a multi-symbol backtest's time,
so the exchange re-solves only when it could matter. At each solve it keeps the account's *slack*
(margin balance minus total maintenance margin) and, per position, the weight ``(1 + highest maintenance
rate) * |quantity|``: between solves the slack can shrink by at most the sum of weight times each price's
largest move since the solve (unrealized PnL moves one for one, maintenance margin at most at its highest
rate). While that bound stays under half the slack no liquidation is possible, so no price needs re-solving;
past it, or when a kline reaches a stale watch level, the prices are solved again. Results are identical.
"""

from __future__ import annotations

from collections.abc import Collection

from ..core.enums import MarginType
from ..core.liquidation import liquidation_price, maintenance_margin
from .book import INF, Book


def solve_liquidation_prices(books: Collection[Book], wallet: float) -> tuple[int, float]:
    """Set every book's liquidation price, watch levels and drift baseline; returns how many positions are
    open and the account's slack (margin balance minus total maintenance margin)."""
    open_books = []
    for b in books:
        if b.pos.qty_f == 0.0:
            b.pos.liq_f = 0.0
            b.watch_low, b.watch_high = -INF, INF
        elif b.pos.margin_type is MarginType.ISOLATED:  # its own wallet backs it: other prices do not move it
            iso = float(b.pos.iso_wallet)
            wallet -= iso
            _set(b, liquidation_price(b.pos.qty_f, b.pos.entry_f, iso, b.tiers))
            b.liq_weight = 0.0
        else:
            open_books.append(b)
    if not open_books:
        return 0, INF
    mm_upnl: list[tuple[float, float]] = []
    for b in open_books:
        pos = b.pos
        price = b.mark or b.last or pos.entry_f  # the mark where one is replayed (exchange.marked)
        mm_upnl.append((maintenance_margin(b.tiers, abs(pos.qty_f) * price), pos.qty_f * (price - pos.entry_f)))
    total_mm = sum(m for m, _ in mm_upnl)
    total_upnl = sum(u for _, u in mm_upnl)
    for b, (mm, upnl) in zip(open_books, mm_upnl):
        pos = b.pos
        b.liq_base = b.last or pos.entry_f
        b.liq_move = 0.0
        b.liq_weight = (1.0 + max((rate for _, rate, _ in b.tiers), default=1.0)) * abs(pos.qty_f)
        _set(b, liquidation_price(pos.qty_f, pos.entry_f, wallet - (total_mm - mm) + (total_upnl - upnl), b.tiers))
    return len(open_books), wallet + total_upnl - total_mm


def _set(b: Book, liq: float) -> None:
    b.pos.liq_f = liq
    if b.pos.qty_f > 0:
        b.watch_low, b.watch_high = (liq if liq > 0 else -INF), INF
    else:
        b.watch_low, b.watch_high = -INF, (liq if liq > 0 else INF)
