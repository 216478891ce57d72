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
from typing import Any, Protocol

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


#: the bound's slack, a share of the summed sizes: above what the roundings can reach with up to _MOST records
_SLACK = 2e-12
_MOST = 1000
#: a leverage the bound judges -> ``1/lev + 2s``: a record's factor is ``q - |q| (1/lev + 2s)``, ``a - 2s|q|``
_BY_LEVERAGE = {lev: 1 / lev + 2 * _SLACK for lev in range(1, 126)}

#: a position's record: (its close store, a - s*2|q|, q*entry + s*|q*entry|, entry), ``a = q - |q|/lev``, ``s``
#: the slack: the position's term of the bound is ``record[1] * mark - record[2]``
Record = tuple[LatestClose, float, float, float]
_NAN = float("nan")
_NOWHERE = LatestClose()
_NOWHERE.close = _NAN
#: the record of a position the bound cannot judge: it makes the sum not a number, so every answer False
_UNSURE: Record = (_NOWHERE, _NAN, _NAN, _NAN)


class _Account(Protocol):
    """What :class:`CoverBound` reads of its portfolio (the portfolio's own tables, kept current by its handlers)."""

    _wallet: Decimal
    _positions: dict[str, PositionView]
    _closes: dict[str, LatestClose]
    _leverage: dict[str, int]
    _leverage_default: int


class CoverBound:
    """The portfolio's float bound on its :func:`available_balance`: :meth:`covers` says True only when the exact
    Decimal is certainly above an amount (and above zero); False when unsure, then compute it.

    The risk gate asks on every entry order, with a position open on most symbols of a multi-symbol run: a record
    per open position, made again only when its position, leverage or close store changes (the portfolio names
    the symbol in :attr:`stale`: ``PositionChanged``, ``set_leverage``, a new store; it drops a closed position's
    record at once), read by :meth:`covers` with one product and two sums each. A position's term of the balance,
    ``q*(mark-entry) - |q|*mark/lev``, is ``a*mark - q*entry`` with ``a = q - |q|/lev``; its size (what the
    roundings are a share of) ``2|q|*mark + |q*entry|``; the bound sums ``term - s*size`` with the slack ``s`` put
    in the record's two factors: ``(a - 2s|q|) * mark - (q*entry + s|q*entry|)``, and the wallet's ``w - s|w|``.

    Why it holds. Let ``u = 2**-53``, ``S`` the summed sizes ``|wallet| + sum 2|q| mark + |q entry|``. The floats
    ``q, entry`` are within ``u`` (relative) of the Decimals, a close ``m`` within ``u`` of its mark
    ``Decimal(repr(m))`` (0.0: the entry), the wallet's float within ``u`` of it (or 1e-323 absolute): each judged
    from 1e-100 to 1e100 (a close from 1e-100), so their products are normal floats (or, a factor with the slack
    in it cancelling, within 1e-323, nothing next to ``s S >= 4e-212``). With a leverage 1..125 (Binance's; the
    factor is ``q - |q| (1/lev + 2s)``, that sum made once per leverage) the factor is ``a - 2s|Q|`` within
    ``5u|Q|``, the part within ``4u`` of its size, each product and difference within ``u`` of its size, and
    each of the ``n`` sums within ``u`` of the running sum (itself under ``(1 + s) S``): the float sum is within
    ``(2n + 14) u (1 + s) S`` of the exact ``balance - s S``, and the Decimal sums (``prec >= 28``) round within
    1e-26 S. With ``n <= 1000`` records that is under ``2.3e-13 S``, ``s = 2e-12`` nine times more (a hundred
    times for ``n <= 50``): a float sum above the amount is an exact
    balance above it (with no position: the wallet's float above a float is the wallet above it, roundings being
    monotone). A sum that overflows is infinite or NaN: no answer. A position it cannot judge (no close store, a
    leverage, quantity or entry out of range) has the record ``_UNSURE``, NaNs: the sum is NaN, the answer False;
    more than 1000 stores (so possibly records): False. No sum is kept from call to call.

    The records are made inline in :meth:`covers` (the gate's next entry after a fill makes one): calls are spelled
    as operators there (``in`` and ``[]``, not ``get``), a call costing more than the rest of a record.
    """

    __slots__ = ("_crowded", "_owner", "_wallet", "_wallet_base", "records", "stale")

    def __init__(self, owner: _Account) -> None:
        self._owner = owner
        self.records: dict[str, Record] = {}
        """Open positions' records by symbol (:data:`_UNSURE`: one the bound cannot judge). The portfolio drops a
        closed position's at once (and its symbol from :attr:`stale`)."""
        self.stale: dict[str, None] = dict.fromkeys(owner._positions)
        """The symbols whose record must be made again before the next call (the portfolio adds to it)."""
        self._crowded = len(owner._closes) > _MOST  # more stores (so records, one per store at most) than the slack
        # is made for; the portfolio's stores only grow, and tell (store_made)
        self._wallet: Decimal | None = None  # the last wallet seen and its ``w - s|w|``
        self._wallet_base = 0.0

    def store_made(self, symbol: str) -> None:
        """The portfolio made ``symbol``'s close store."""
        self.stale[symbol] = None
        self._crowded = len(self._owner._closes) > _MOST

    def covers(self, amount: float) -> bool:
        """True when the portfolio's :func:`available_balance` is certainly above ``amount`` and above zero."""
        stale = self.stale
        if stale:  # the stale symbols' records made again
            self.stale = {}
            owner, records = self._owner, self.records
            positions, closes, leverage = owner._positions, owner._closes, owner._leverage
            for sym in stale:
                if sym not in positions:
                    if sym in records:
                        del records[sym]
                    continue
                p = positions[sym]
                lev = leverage[sym] if sym in leverage else owner._leverage_default  # noqa: SIM401
                q, e = float(p.quantity), float(p.entry_price)
                aq = q if q >= 0.0 else -q
                # judged: a store, a leverage 1..125, a quantity and an entry (or the Decimal zero) from 1e-100 to
                # 1e100 (their floats normal, their products too)
                if sym in closes and lev in _BY_LEVERAGE and 1e-100 <= aq <= 1e100 \
                        and (1e-100 <= e <= 1e100 or (e == 0.0 and not p.entry_price)):
                    qe = q * e
                    records[sym] = (closes[sym], q - aq * _BY_LEVERAGE[lev], qe + _SLACK * (qe if qe >= 0.0 else -qe),
                                    e)  # fmt: skip
                elif not p.quantity:  # (a flat view adds exactly zero to the Decimal sums)
                    if sym in records:
                        del records[sym]
                else:
                    records[sym] = _UNSURE
        if self._crowded or getcontext().prec < 28:
            return False
        wallet = self._owner._wallet
        if wallet is not self._wallet:  # (a Decimal's float costs more than the rest for a few positions)
            w = float(wallet)
            self._wallet, self._wallet_base = wallet, w - _SLACK * (w if w >= 0.0 else -w)
        bound = self._wallet_base
        for store, factor, part, entry in self.records.values():
            m = store.close
            if m < 1e-100:  # (not a number: passes, and makes the sum NaN)
                if m:  # negative, or too small for the bound
                    return False
                m = entry  # (no close yet: marked at the entry)
            bound += factor * m - part
        return (0.0 if amount <= 0.0 else amount) < bound < 1e308  # (not infinite, not NaN)
