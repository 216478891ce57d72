"""The latest close of one symbol's klines, kept for the portfolio's marks, as a store the replay runs inline.

A multi-symbol replay that builds no kline per event (``backtest.lockstep_lazy``) would otherwise have to bring
every symbol's one-slot latest-kline store up to date, with a kline built for each, before every call out
(an order, a fill): ten symbols, ten klines each time, more than the rest of the replay. The portfolio reads
only the close, so it keeps the close: the handler stores one float, and as an inline step (``InlineStep``)
the replay's loop stores it with no call and no kline.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, MutableMapping
from decimal import Decimal
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
        return InlineStep(_STEP, {"store": self}, reads_kline=False)


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
