"""The latest close of one symbol's klines, kept for the portfolio's marks, as a store the replay runs inline.

A multi-symbol replay that builds no kline per event (``backtest.lockstep_lazy``) would otherwise have to bring
every symbol's one-slot latest-kline store up to date, with a kline built for each, before every call out
(an order, a fill): ten symbols, ten klines each time, more than the rest of the replay. The portfolio reads
only the close, so it keeps the close: the handler stores one float, and as an inline step (``InlineStep``)
the replay's loop stores it with no call and no kline; a single-stream replay stores it only where it can be
read (``InlineStep.latest_only``: before a call out, at the end), from the columns.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, MutableMapping
from decimal import Decimal, getcontext
from typing import Any

from ..core.account import PositionView
from ..core.bus import InlineStep
from ..core.events import KlineClosed

# ``LatestClose.on_kline`` as source (the two must do the same: tests/unit/test_latest_close.py runs both)
_STEP = "$store.close = close\n"


class LatestClose:
    """The close of the latest kline delivered to :meth:`on_kline` (0.0 before the first)."""

    __slots__ = ("close",)

    def __init__(self) -> None:
        self.close = 0.0

    def on_kline(self, k: KlineClosed) -> None:
        self.close = k.close

    def inline_step(self, handler: Callable[[Any], None], topic: Hashable | None) -> InlineStep | None:
        """:meth:`on_kline` as source for the replay's fused loop: it reads no kline, only its close."""
        if handler != self.on_kline or type(self).on_kline is not LatestClose.on_kline:
            return None
        return InlineStep(_STEP, {"store": self}, reads_kline=False, latest_only=True)


#: float close -> ``Decimal(repr(close))`` (non-zero closes: 0.0 and -0.0 are one key but two Decimals); prices
#: on a tick grid come back again and again, and a repr and a parse cost more than the look-up
_DECIMALS: dict[float, Decimal] = {}
_DECIMALS_LIMIT = 1 << 16


def available_balance(wallet: Decimal, positions: Mapping[str, PositionView], closes: Mapping[str, LatestClose],
                      marks: MutableMapping[str, tuple[float, Decimal]], leverage: Mapping[str, int], default: int,
                      mark_of: Callable[[PositionView], Decimal]) -> Decimal:
    """The portfolio's available balance: equity minus initial margin, each position marked at its symbol's
    latest close (``mark_of``, the portfolio's ``_mark``, for a symbol with no :class:`LatestClose`).

    The risk gate asks on every entry, with a position per symbol of a multi-symbol run: the same sums as the
    plain loop, in its order, so the same Decimal, without a call per position (``_mark`` inlined: the Decimal
    of a close made once, kept in ``marks``; the margin at leverage 1 not divided by 1: the quotient would be
    the same Decimal, digits and exponent)."""
    upnl = margin = Decimal(0)
    for sym, p in positions.items():
        store = closes.get(sym)
        if store is None:
            mark = mark_of(p)
        elif not (last := store.close):
            mark = p.entry_price
        elif (cached := marks.get(sym)) is not None and cached[0] == last:
            mark = cached[1]
        else:
            known = _DECIMALS.get(last)  # (a close seen before, on any symbol: its Decimal made once)
            if known is None:
                if len(_DECIMALS) >= _DECIMALS_LIMIT:
                    _DECIMALS.clear()
                known = _DECIMALS[last] = Decimal(repr(float(last)))
            mark = known
            marks[sym] = (last, mark)
        q = p.quantity
        upnl += q * (mark - p.entry_price)
        lev = leverage.get(sym, default)
        margin += abs(q) * mark if lev == 1 else abs(q) * mark / lev
    return (wallet + upnl) - margin


#: id of a position view -> (the view, float(quantity), float(entry price)): views are frozen, replaced on change
_FLOATS: dict[int, tuple[PositionView, float, float]] = {}


def available_covers(wallet: Decimal, positions: Mapping[str, PositionView], closes: Mapping[str, LatestClose],
                     leverage: Mapping[str, int], default: int, amount: float) -> bool:
    """True when :func:`available_balance` is certainly above ``amount`` (and above zero); False when unsure (a
    symbol with no :class:`LatestClose`, sizes beyond what the bound judges): then compute it. The risk gate's
    entry asks; this is a pass of float products over the open positions, not Decimal ones and their marks.

    The estimate sums the same terms from the nearest floats of the Decimals and the float closes the marks are
    made of; the Decimal sums round at the 28th digit, the floats within about 1e-15 of each term's size, so
    1e-12 of the summed sizes (and a little more per term) bounds how far the exact balance can lie below it
    (tests/unit/test_latest_close.py compares both on random accounts)."""
    if getcontext().prec < 28:
        return False
    est = float(wallet)
    size = abs(est)
    terms = 1
    for sym, p in positions.items():
        store = closes.get(sym)
        if store is None:
            return False
        known = _FLOATS.get(id(p))
        if known is None or known[0] is not p:
            if len(_FLOATS) >= _DECIMALS_LIMIT:
                _FLOATS.clear()
            known = _FLOATS[id(p)] = (p, float(p.quantity), float(p.entry_price))
        _, q, entry = known
        mark = store.close or entry
        est += q * (mark - entry) - abs(q) * mark / leverage.get(sym, default)
        size += abs(q) * (abs(mark) * 2.0 + abs(entry))
        terms += 2
    if not size < 1e15:  # (also NaN)
        return False
    bound = max(amount, 0.0)
    return est - (1e-12 + 3e-16 * terms) * size > bound + 1e-12 * abs(bound)
