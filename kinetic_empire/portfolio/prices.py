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


#: a bound's slack per term past the base 1e-12 of the summed sizes (the float sum's rounding, see CoverBound)
_PER_TERM = 3e-16
#: the smallest magnitude a record's float (a quantity, an entry, a close) may have: below, a float's rounding is no
#: longer relative (subnormals, or a Decimal whose float is zero); at the other end, sizes are held under 1e15
_TINY = 1e-300
#: above an amount by 1e-12 of it (the float comparison's own rounding, as the summed sizes')
_ABOVE = 1.0 + 1e-12

#: a position's record: (its close store, a = q - |q|/lev, q*entry, 2|q|, |q*entry|, entry), floats of the Decimals
Record = tuple[LatestClose, float, float, float, float, float]


def _record(p: PositionView, store: LatestClose | None, lev: object) -> Record | None:
    """``p``'s record, or None where the bound cannot judge it: no close store, a leverage not an int in 1..1e6, a
    quantity or entry whose float is not within 1e-300..1e300 (or a negative or not finite entry, or an entry of
    zero that is not the Decimal zero)."""
    if store is None or not isinstance(lev, int) or not 1 <= lev <= 1_000_000:
        return None
    q, e = float(p.quantity), float(p.entry_price)
    aq = abs(q)
    if not _TINY <= aq <= 1e300 or not (_TINY <= e <= 1e300 or (e == 0.0 and not p.entry_price)):
        return None
    qe = q * e
    return store, q - aq / lev, qe, aq + aq, abs(qe), e


class CoverBound:
    """The portfolio's float bound on :func:`available_balance`: :meth:`covers` says True only when the exact
    Decimal is certainly above an amount (and above zero); False when unsure, then compute it.

    The risk gate asks on every entry order, with a position open on most symbols of a multi-symbol run: a record
    per open position, made again only when its position, leverage or close store changes (the portfolio names
    the symbol in :attr:`stale`: ``PositionChanged``, ``set_leverage``, a new store), and read by :meth:`covers`
    with a few float operations each: ``q*(mark-entry) - |q|*mark/lev`` as ``a*mark - q*entry``, ``a = q - |q|/lev``.

    Why the bound holds. Let ``u = 2**-53``. The record's floats ``q, entry`` are within ``u`` (relative) of the
    Decimals (1e-300 and up: normal floats), a close ``m`` within ``u`` of its mark ``Decimal(repr(m))`` (held
    at 1e-300 and up too; 0.0: the entry), the wallet's float within ``u`` of the wallet (or 1e-323 absolute).
    ``a`` is ``Q - |Q|/L`` within about ``5u |Q|`` (``|a| <= 2|Q|``), ``a*m`` the term within ``9u |Q| m``,
    ``q*entry`` within ``3u |Q| entry``; each of the ``1 + 2n`` additions adds at most ``u`` of the running sum,
    itself within the summed sizes ``size = |wallet| + sum |Q| (2m + entry)``. The Decimal sums round at the 28th
    digit (``prec >= 28``): under 1e-26 of ``size`` for a few operations per position. So the float estimate is
    within ``(13 + 2n + 1) u size`` (plus 1e-320 or so for products of normal floats that underflow) of the exact
    balance, and the bound takes ``(1e-12 + 3e-16 (1 + 2n)) size + 1e-290`` off it, 100 times more. No sum is
    kept from call to call: each call sums the records anew.
    """

    __slots__ = ("_closes", "_default", "_leverage", "_positions", "_records", "_slack", "_unsure", "_wallet",
                 "_wallet_abs", "_wallet_f", "stale")  # fmt: skip

    def __init__(self, positions: Mapping[str, PositionView], closes: Mapping[str, LatestClose],
                 leverage: Mapping[str, int], default: int) -> None:
        """``positions``, ``closes``, ``leverage``: the portfolio's own tables, read when a record is made."""
        self._positions = positions
        self._closes = closes
        self._leverage = leverage
        self._default = default
        self._records: dict[str, Record] = {}  # open positions the bound can judge, by symbol
        self._unsure: set[str] = set()  # open positions it cannot: every call says False while any is
        self.stale: dict[str, None] = {}
        """The symbols whose record must be made again before the next call (the portfolio adds to it)."""
        self._slack = 1e-12 + _PER_TERM
        self._wallet: Decimal | None = None  # the last wallet seen, its float and that float's size
        self._wallet_f = self._wallet_abs = 0.0

    def _renew(self) -> None:
        records, unsure, positions = self._records, self._unsure, self._positions
        for sym in self.stale:
            records.pop(sym, None)
            unsure.discard(sym)
            p = positions.get(sym)
            if p is None or not p.quantity:  # (a zero quantity adds exactly zero to the Decimal sums)
                continue
            made = _record(p, self._closes.get(sym), self._leverage.get(sym, self._default))
            if made is None:
                unsure.add(sym)
            else:
                records[sym] = made
        self.stale.clear()
        self._slack = 1e-12 + _PER_TERM * (1 + 2 * len(records))

    def covers(self, wallet: Decimal, amount: float) -> bool:
        """True when :func:`available_balance` of these positions and ``wallet`` is certainly above ``amount`` and
        above zero."""
        if self.stale:
            self._renew()
        if self._unsure or getcontext().prec < 28:
            return False
        if wallet is not self._wallet:  # (a Decimal's float costs more than the rest for a few positions)
            w = float(wallet)
            self._wallet, self._wallet_f, self._wallet_abs = wallet, w, abs(w)
        est = self._wallet_f
        size = self._wallet_abs
        for store, a, qe, aq2, aqe, entry in self._records.values():
            m = store.close
            if m < _TINY:  # (not a number: passes, and makes the answer False)
                if m:  # negative, or too small for the bound
                    return False
                m = entry  # (no close yet: marked at the entry)
            est += a * m - qe
            size += aq2 * m + aqe
        if not size < 1e15:  # (also NaN)
            return False
        return est - (self._slack * size + 1e-290) > (0.0 if amount <= 0.0 else amount * _ABOVE)
