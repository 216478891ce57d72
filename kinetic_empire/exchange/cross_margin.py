"""Liquidation prices of every open position under cross margin (one-way mode, reference section 9.3); an
isolated position's from its own wallet alone (:mod:`.isolated`), and the cross pool is what is left.

The wallet backs every cross position, so each one's liquidation price depends on the others' maintenance
margin and unrealized PnL: one changes whenever any price does. The formula is the shared
:func:`kinetic_empire.core.liquidation.liquidation_price`, in floats, because the result is compared with
every kline's high and low.

Re-solving after every kline while several cross positions are open was most of a multi-symbol backtest's
time, and so was tracking, kline by kline, how far prices had drifted since the last solve. So a solve also
hands every open cross book a *band* folded into its watch levels: a kline that stays inside its book's band
costs the single-symbol comparison against high and low, and nothing is re-solved.

The band: at a solve the cross pool has a *slack* (cross margin balance minus cross maintenance margin) and
each position a weight ``(1 + highest maintenance rate) * |quantity|``: if its price (the mark where one is
replayed, else the last price) moves by ``d`` from its value at the solve, the slack shrinks by at most
``weight * d`` (unrealized PnL moves one for one; maintenance margin is continuous and grows at most at the
highest rate). Every price may move by less than the same fraction ``r`` of itself, with
``r = slack / (2 * sum(weight * price))``: while every current price is inside its band the slack is more than
half what it was, so no position can be liquidated whatever its (stale) liquidation price says. The exchange
keeps that true: a kline whose range reaches its band (or a liquidation level) has the prices re-solved on the
prices before it, exactly what re-solving after every kline would have given, and the liquidation check uses
those exact prices; a price that ends outside its band is re-solved on at once. Results are identical to
re-solving after every kline (tests/unit/test_cross_margin_bound.py compares both, trade by trade).

Before any of that, a solve asks a cheaper question (:func:`covered_longs`): when every cross position is a
long and the wallet covers their entry notionals, no price can liquidate any of them, so there is nothing to
solve or watch until the wallet or a position changes (tests/unit/test_cross_margin_covered.py).
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from math import ceil

from ..core.enums import MarginType
from ..core.liquidation import liquidation_price, maintenance_margin
from .book import INF, Book

#: watch levels that send every kline of a book to the exchange's slow path (re-solving after every kline)
ALWAYS = (INF, -INF)
#: a cross position's liquidation price not solved yet (liquidation_of solves it from ``Book.liq_margin``)
UNSOLVED = -1.0
_NEG_INF = -INF
_ISOLATED = MarginType.ISOLATED  # (an enum member read from its class costs a descriptor call)


def solve_liquidation_prices(books: Collection[Book], wallet: float | Decimal, *, banded: bool = True,
                             cover: Cover | None = None) -> int:
    """Set every book's liquidation price and watch levels; returns how many cross positions are open.

    With several open cross positions each book's watch levels are its band (module docstring) and its
    liquidation price is left to :func:`liquidation_of`, which solves it when asked (a kline reaching the band);
    without ``banded`` every book's are set so that each kline is processed and followed by a solve (the
    behaviour the band must reproduce). An isolated position's level is its own liquidation price.

    ``wallet`` may be the exchange's Decimal: it is made a float only when a position is open, so the solve
    after a fill that leaves every position flat (half of a backtest's fills) is one pass resetting levels.
    ``cover`` (the exchange's :class:`Cover`) is told whether the result is the covered longs' and on what sum.
    """
    if cover is not None:
        cover.terms = None
    held: list[Book] = []
    plain = banded  # so far every open position a cross long (the covered short cut's first condition)
    safe = True  # so far every held long's tier table safe for covered_longs
    notional = 0.0  # the held longs' entry notional, summed in book order as covered_longs sums it
    for b in books:
        pos = b.pos
        qty = pos.qty_f
        if qty == 0.0:
            pos.liq_f = 0.0
            b.watch_low = _NEG_INF
            b.watch_high = INF
        else:
            held.append(b)
            if not plain:
                continue
            if qty < 0.0 or pos.margin_type is _ISOLATED:
                plain = False
                continue
            tiers = b.tiers  # (covered_longs' loop, inlined: the same tables accepted, the same sum)
            known = _COVERED_LONG_SAFE.get(id(tiers))
            if not (known[2] if known is not None and known[0] is tiers else _safe_table(tiers, True)):
                safe = False
            notional += qty * pos.entry_f
    if not held:
        return 0
    wallet = float(wallet)
    # none can ever be liquidated (covered_longs): nothing to watch
    if plain and safe and len(held) > 1 and wallet - notional >= COVER_GAP * (wallet + notional):
        for b in held:
            b.pos.liq_f = 0.0
            b.watch_low = _NEG_INF
            b.watch_high = INF
        if cover is not None:
            cover.covered(held, notional)
        return len(held)
    cross: list[Book] = []
    for b in held:
        pos = b.pos
        if pos.margin_type is _ISOLATED:  # its own wallet backs it: other prices do not move it
            iso = float(pos.iso_wallet)
            wallet -= iso
            _set(b, _alone(pos.qty_f, pos.entry_f, iso, b.tiers))
        else:
            cross.append(b)
    if not cross:
        return 0
    n = len(cross)
    if n == 1:  # the wallet alone backs it
        b = cross[0]
        _set(b, _alone(b.pos.qty_f, b.pos.entry_f, wallet, b.tiers))
        return 1
    prices: list[float] = []
    mms: list[float] = []
    upnls: list[float] = []
    for b in cross:
        pos = b.pos
        price = b.mark or b.last or pos.entry_f  # the mark where one is replayed (exchange.marked)
        prices.append(price)
        mms.append(maintenance_margin(b.tiers, abs(pos.qty_f) * price))
        upnls.append(pos.qty_f * (price - pos.entry_f))
    # what backs each position is the wallet with the *others'* maintenance margin and PnL, summed without
    # its own terms (prefix plus suffix, not total minus own): a position's liquidation price then depends on
    # the others alone, to the last bit, whenever within its own kline it is solved
    after_mm = [0.0] * (n + 1)
    after_upnl = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):
        after_mm[i] = after_mm[i + 1] + mms[i]
        after_upnl[i] = after_upnl[i + 1] + upnls[i]
    before_mm = before_upnl = 0.0
    for i, b in enumerate(cross):
        b.liq_margin = wallet - (before_mm + after_mm[i + 1]) + (before_upnl + after_upnl[i + 1])
        b.pos.liq_f = UNSOLVED
        before_mm += mms[i]
        before_upnl += upnls[i]
    if not banded:  # every book's every kline, flat and isolated ones too, is followed by a solve
        for b in cross:
            liquidation_of(b)
        for b in books:
            b.watch_low, b.watch_high = ALWAYS
        return n
    # the band alone is the watch level: it lies inside the liquidation price (at its edge the slack keeps
    # half), so the price itself is solved only when a kline reaches the band (liquidation_of)
    slack = wallet + before_upnl - before_mm
    exposure = 0.0
    for b, price in zip(cross, prices):
        exposure += (1.0 + b.top_rate) * abs(b.pos.qty_f) * price
    fraction = slack / (2.0 * exposure) if slack > 0.0 and exposure > 0.0 else 0.0
    for b, price in zip(cross, prices):
        move = price * fraction
        b.watch_low, b.watch_high = price - move, price + move
    return n


class Cover:
    """The covered longs the exchange's last solve found (:func:`covered_longs`: no liquidation price, no band), so
    that the solve after a fill of one book is a sum updated, not a pass over every book: while the positions are
    covered cross longs, a fill changes only its own book's term of the entry notional (the wallet by its fee and
    PnL), and every other book's levels stay reset. :meth:`after_fill` answers only when the updated sum, with a
    bound on how far it may lie from the solve's own float sum, shows the solve would find the longs covered again;
    else the exchange solves in full. Results are the full solve's (tests/unit/test_cross_margin_cover.py)."""

    __slots__ = ("err", "notional", "terms", "trade", "unit")

    def __init__(self) -> None:
        self.terms: dict[Book, float] | None = None  # each held book's qty * entry at the solve; None: not covered
        self.notional = 0.0  # their sum, kept up to date
        self.err = 0.0  # how far ``notional`` may be from the sum the full solve makes now
        self.unit = False  # every held long at leverage 1 with an entry not below 0 (Margin.covers_float)
        self.trade = -1  # the exchange's next trade id when the exchange last solved (the terms are its positions')

    def covered(self, held: list[Book], notional: float) -> None:
        """The full solve found ``held`` covered, their entry notional summed to ``notional``."""
        self.terms = {b: b.pos.qty_f * b.pos.entry_f for b in held}
        self.notional = notional
        self.err = 0.0
        self.unit = all(b.pos.leverage == 1 and b.pos.entry_f >= 0.0 for b in held)

    def after_fill(self, book: Book, wallet: Decimal, trade: int) -> int | None:
        """The solve after a fill of ``book`` (the only change since the last solve but the wallet) when the longs
        are still covered: ``book``'s levels reset, the cover stamped with the exchange's next trade id ``trade``,
        the count of open positions returned; None: solve in full."""
        terms = self.terms
        if terms is None:
            return None
        pos = book.pos
        qty = pos.qty_f
        if qty < 0.0 or pos.margin_type is _ISOLATED:
            return None
        if qty:  # a long (or NaN: declined below)
            tiers = book.tiers  # (_safe_table(tiers, cover=True), inlined as in covered_longs)
            known = _COVERED_LONG_SAFE.get(id(tiers))
            if not (known[2] if known is not None and known[0] is tiers else _safe_table(tiers, True)):
                return None
            entry = pos.entry_f
            if pos.leverage != 1 or entry < 0.0:
                self.unit = False
            new = qty * entry
            old = terms.get(book, 0.0)
            terms[book] = new
        else:
            new = 0.0
            old = terms.pop(book, 0.0)
        rest = self.notional - old
        notional = rest + new
        # each of the two operations rounds by at most half an ulp of its result (a sum declined below when negative);
        # the full solve's own sum of the held terms (the same floats) by at most one ulp of the sum a term
        err = self.err + 2.3e-16 * ((rest if rest >= 0.0 else -rest) + notional)
        held = len(terms)
        self.notional, self.err = notional, err
        top = (notional + err) * (1.0 + (held + 1) * 2.3e-16)  # the most the solve's sum can be
        if held < 2 or not (notional >= 0.0 and top < 1e15) or err > 1e-9 * top or not wallet > ceil(top * _FACTOR):
            self.terms = None
            return None
        pos.liq_f = 0.0
        book.watch_low = _NEG_INF
        book.watch_high = INF
        self.trade = trade
        return held


#: how much the cross wallet must exceed the longs' entry notional, relative to both, for
#: :func:`covered_longs`: far above the rounding of the float sums the full solve makes (about 1e-16 a term)
COVER_GAP = 1e-9
#: what :meth:`Cover.after_fill` asks of the wallet over the most the longs' entry notional can be: the full solve's
#: ``COVER_GAP``, and 1e-12 of it to spare for the roundings of the floats either side compares
_FACTOR = (1.0 + COVER_GAP) / (1.0 - COVER_GAP) * (1.0 + 1e-12)
#: the highest maintenance rate :func:`covered_longs` accepts: a rising price then adds at least a tenth of
#: its notional change to the margin, far above the rounding it adds (Binance's highest rate is 0.5)
COVER_MAX_RATE = 0.9


def covered_longs(cross: list[Book], wallet: float) -> bool:
    """True when every cross position is a long, every tier table is safe (rates at most 0.9, cums not negative)
    and the cross wallet exceeds the sum of their entry notionals (with :data:`COVER_GAP` to spare): then no
    price can liquidate any of them, and the full solve gives each liquidation price 0.0 whatever the prices.

    Why: what backs position ``i`` is ``wallet - sum(mm_j) + sum(q_j * (p_j - e_j))`` over the others, and
    ``mm_j = q_j * p_j * rate - cum <= q_j * p_j``, so it is at least ``wallet - sum(q_j * e_j)`` over the
    others, which is at least ``q_i * e_i``: a long its margin covers at entry (:func:`_alone`'s short path).
    So the liquidation prices are not solved and no band is watched until the wallet or a position changes
    (the solve after it decides again); the usual backtest at leverage 1 with a balance that covers its
    positions never pays for a cross solve while several positions are open.
    """
    notional = 0.0
    for b in cross:
        pos = b.pos
        qty = pos.qty_f
        tiers = b.tiers
        known = _COVERED_LONG_SAFE.get(id(tiers))  # (_safe_table(tiers, cover=True) inlined: once per book a solve)
        if qty < 0.0 or not (known[2] if known is not None and known[0] is tiers else _safe_table(tiers, True)):
            return False
        notional += qty * pos.entry_f
    return wallet - notional >= COVER_GAP * (wallet + notional)


def _safe_table(tiers: tuple[tuple[float, float, float], ...], cover: bool = False) -> bool:
    """Every tier's rate below 1 (``cover``: at most :data:`COVER_MAX_RATE`) and cum not negative (per table)."""
    known = _COVERED_LONG_SAFE.get(id(tiers))
    if known is None or known[0] is not tiers:
        alone = all(rate < 1.0 and cum >= 0.0 for _, rate, cum in tiers)
        known = _COVERED_LONG_SAFE[id(tiers)] = (
            tiers, alone, alone and all(rate <= COVER_MAX_RATE for _, rate, _ in tiers))
    return known[2] if cover else known[1]


#: tier tables (by id, with the table kept to rule out a reused id) whose every tier has a rate below 1 and a
#: cum of at least 0: for them a long position its margin covers at entry can never be liquidated
_COVERED_LONG_SAFE: dict[int, tuple[tuple[tuple[float, float, float], ...], bool, bool]] = {}


def _alone(qty: float, entry: float, margin: float, tiers: tuple[tuple[float, float, float], ...]) -> float:
    """:func:`liquidation_price` of a position one margin backs alone, with a short path for the usual long
    backtest position (leverage 1): a long whose margin is at least its entry notional has none (0.0).

    Exactly what the full solve returns: with ``rate < 1`` and ``cum >= 0`` in every tier, the first
    iteration's numerator ``margin + cum - q * entry`` is not negative (floats round monotonically) over a
    negative denominator, so it returns 0.0 whatever tier it starts in.
    """
    if qty > 0.0 and margin >= qty * entry and _safe_table(tiers):
        return 0.0
    return liquidation_price(qty, entry, margin, tiers)


def liquidation_of(b: Book) -> float:
    """The book's liquidation price (0: none), solved from the margin its last solve left it if not yet."""
    pos = b.pos
    liq = pos.liq_f
    if liq < 0.0:
        liq = pos.liq_f = liquidation_price(pos.qty_f, pos.entry_f, b.liq_margin, b.tiers)
    return liq


def _set(b: Book, liq: float) -> None:
    b.pos.liq_f = liq
    if b.pos.qty_f > 0:
        b.watch_low, b.watch_high = (liq if liq > 0 else -INF), INF
    else:
        b.watch_low, b.watch_high = -INF, (liq if liq > 0 else INF)
