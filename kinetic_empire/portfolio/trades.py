"""Round-trip bookkeeping from fills: one open trade per symbol, closed when the position is flat again.

Trades are built from fills rather than from ``PositionChanged`` because only fills carry the price,
realized PnL and commission of each step. A fill that flips the position (long 1 -> short 1) is split:
the closing part (with all its realized PnL and a pro-rata share of the commission) ends the old
trade, the rest opens the new one.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from ..core.enums import PositionSide
from .records import TradeRecord, tidy

_ZERO = Decimal(0)
_LONG, _SHORT = PositionSide.LONG, PositionSide.SHORT


class _WritableTrade:
    """A writable class with exactly :class:`TradeRecord`'s slots, re-labelled once filled (a run books thousands)."""

    __slots__ = tuple(f.name for f in fields(TradeRecord))


if len(_WritableTrade.__slots__) != 18:
    raise TypeError("TradeRecord's fields changed: update OpenTrade.record")


class OpenTrade:
    """Mutable accumulator for the trade currently open on one symbol."""

    __slots__ = (
        "close_notional",
        "closed_qty",
        "entry_tag",
        "entry_time",
        "fees",
        "funding",
        "gross",
        "long",
        "max_abs",
        "open_notional",
        "opened_qty",
        "qty",
        "strategy_id",
        "symbol",
        "trade_id",
    )

    def __init__(self, trade_id: int, symbol: str, strategy_id: str, ts: int, long: bool, tag: str = "") -> None:
        self.trade_id = trade_id
        self.entry_tag = tag
        self.symbol = symbol
        self.strategy_id = strategy_id
        self.entry_time = ts
        self.long = long
        self.qty = _ZERO  # signed
        self.max_abs = _ZERO
        self.opened_qty = _ZERO
        self.open_notional = _ZERO
        self.closed_qty = _ZERO
        self.close_notional = _ZERO
        self.gross = _ZERO
        self.fees = _ZERO
        self.funding = _ZERO

    def grow(self, signed_qty: Decimal, price: Decimal, fee: Decimal) -> None:
        self.qty += signed_qty
        size = abs(signed_qty)
        self.opened_qty += size
        self.open_notional += size * price
        self.fees += fee
        self.max_abs = max(self.max_abs, abs(self.qty))

    def shrink(self, size: Decimal, price: Decimal, realized: Decimal, fee: Decimal) -> None:
        self.qty -= size if self.long else -size
        self.closed_qty += size
        self.close_notional += size * price
        self.gross += realized
        self.fees += fee

    def record(
        self,
        exit_time: int,
        exit_reason: str,
        exit_price: Decimal | None = None,
        extra_gross: Decimal = _ZERO,
        exit_tag: str = "",
    ) -> TradeRecord:
        """Freeze into a :class:`TradeRecord`; ``exit_price``/``extra_gross`` mark a still-open trade."""
        entry = self.open_notional / self.opened_qty if self.opened_qty else _ZERO
        if exit_price is None:
            exit_price = self.close_notional / self.closed_qty if self.closed_qty else _ZERO
        gross = self.gross + extra_gross
        net = gross - self.fees + self.funding
        ret = net / self.open_notional * 100 if self.open_notional else _ZERO
        # TradeRecord(...), field by field: its frozen __init__ stores each field through object.__setattr__
        r: Any = _WritableTrade()
        r.trade_id = self.trade_id
        r.strategy_id = self.strategy_id
        r.symbol = self.symbol
        r.side = _LONG if self.long else _SHORT
        r.quantity = self.max_abs
        r.entry_time = self.entry_time
        r.entry_price = tidy(entry)
        r.exit_time = exit_time
        r.exit_price = tidy(exit_price)
        r.gross_pnl = gross
        r.fees = self.fees
        r.funding = self.funding
        r.net_pnl = net
        r.return_pct = tidy(ret)
        r.exit_reason = exit_reason
        r.duration_ms = exit_time - self.entry_time
        r.entry_tag = self.entry_tag
        r.exit_tag = exit_tag
        r.__class__ = TradeRecord
        return r


Fill = tuple[str, Decimal, Decimal, Decimal, Decimal, int, str, str, str]
""":meth:`TradeBook.apply_fill`'s arguments, in its order: what :attr:`TradeBook.pending` holds (with, between
them, ``(symbol, amount)`` for a funding settlement booked while fills were pending)."""

_DIGITS = 28
"""A product of two Decimals whose ``str`` lengths sum to at most this has at most as many digits: exact at the
default precision (``str`` shows every digit of the coefficient, and more characters)."""


def _round_trip(opening: Fill, closing: Fill) -> tuple[str, str, bool] | None:
    """The ``str`` of both prices when these two fills of one symbol, booked with nothing open, are a round trip the
    general booking would make exactly from them (see :func:`_pair_record`): the second undoes the first, every
    amount finite, and ``quantity * price`` exact for both. Else None (booked the general way). With them, whether
    the opening quantity's exponent is at most 0 (no ``E`` in its ``str``, which shows a positive one as ``1E+1``):
    then ``0 + q`` is ``q``, digit for digit."""
    q1, p1, q2, p2 = opening[1], opening[2], closing[1], closing[2]
    if not (q1.is_finite() and p1.is_finite() and q2.is_finite() and p2.is_finite() and opening[4].is_finite()
            and closing[3].is_finite() and closing[4].is_finite()):
        return None
    s1, s2, t1 = str(p1), str(p2), str(q1)
    if len(t1) + len(s1) > _DIGITS or len(str(q2)) + len(s2) > _DIGITS or not q1 or q2 != -q1:
        return None
    return s1, s2, "E" not in t1


def _pair_record(found: tuple[Any, ...], tidied: dict[str, Decimal]) -> TradeRecord:
    """``OpenTrade`` started by the opening fill, grown by it, shrunk to flat by the closing one and recorded
    (``found``: the trade id, both fills and what :func:`_round_trip` said of them): the same record, with the same
    Decimal operations where a field keeps a result as it is (its digits and exponent), and fewer where only a value
    is kept. With ``quantity * price`` exact (:func:`_round_trip`), the average price ``(0 + |q| * p) / (0 + |q|)``
    is ``p`` by value, and :func:`tidy` depends on the value only: ``tidy(p)``, made once per price (``tidied``, by
    its ``str``). The return divides by ``0 + |q1| * p1``, which equals ``|q1| * p1`` (a result of at most the
    precision's digits), so the quotient is the same. ``(0 + realized) + 0`` is ``0 + realized``: its exponent is
    at most 0, or it was rounded to the precision's digits and adding 0 rounds it back the same."""
    trade_id, opening, closing, s1, s2, plain = found
    symbol, q1, p1, _realized, c1, entry_time, strategy_id, _reason, entry_tag = opening
    _symbol, _q2, p2, realized, c2, exit_time, _strategy, reason, exit_tag = closing
    entry = tidied.get(s1)
    if entry is None:
        entry = tidied[s1] = tidy(p1)
    exit_price = tidied.get(s2)
    if exit_price is None:
        exit_price = tidied[s2] = tidy(p2)
    gross = _ZERO + realized  # OpenTrade.shrink, then record's extra_gross (adding 0 again changes nothing)
    fees = (_ZERO + c1) + c2
    net = gross - fees + _ZERO  # (no funding: a settlement between the fills makes it no pair)
    size = abs(q1)
    notional = size * p1
    r: Any = _WritableTrade()  # (as OpenTrade.record)
    r.trade_id = trade_id
    r.strategy_id = strategy_id
    r.symbol = symbol
    r.side = _LONG if q1 > _ZERO else _SHORT
    r.quantity = size if plain else abs(_ZERO + q1)  # max(0, |0 + q1|), q1 not 0 (0 + q1 is q1 when plain)
    r.entry_time = entry_time
    r.entry_price = entry
    r.exit_time = exit_time
    r.exit_price = exit_price
    r.gross_pnl = gross
    r.fees = fees
    r.funding = _ZERO
    r.net_pnl = net
    r.return_pct = tidy(net / notional * 100 if notional else _ZERO)
    r.exit_reason = reason
    r.duration_ms = exit_time - entry_time
    r.entry_tag = entry_tag
    r.exit_tag = exit_tag
    r.__class__ = TradeRecord
    return r


class TradeBook:
    """Open trades by symbol and the closed round trips, in the order they closed.

    Booking is lazy twice over. A fill is kept as the tuple of its :meth:`apply_fill` arguments in
    :attr:`pending` (the portfolio appends it there on the order path), a funding settlement arriving meanwhile
    joins them, and they are booked, in arrival order, by the first read or booking that needs the trades
    (:attr:`open`, :attr:`closed`, a late fee, a forced close, marking): the same calls in the same order, so
    the same trades. A closed trade is then kept as its
    accumulator and exit until read: a backtest closes thousands and reads them once, for the report, so
    :class:`TradeRecord` (with its Decimal divisions and rounding) is made only then, by :attr:`closed`.
    """

    __slots__ = ("_exits", "_last_closed", "_made", "_next_id", "_open", "_tidied", "pending")

    def __init__(self) -> None:
        self._open: dict[str, OpenTrade] = {}
        self.pending: list[Fill | tuple[str, Decimal]] = []  # fills (and funding) not booked yet, in arrival order
        # (trade, exit time, reason, exit tag), or a round trip of two fills kept as they came (see _book_pending):
        # (trade id, opening fill, closing fill, str of each price, whether 0 + the opening quantity is itself)
        self._exits: list[tuple[Any, ...]] = []
        self._made: list[TradeRecord] = []  # records of _exits[:len(_made)]
        self._last_closed: dict[str, int] = {}  # symbol -> index in _exits, for late fee bookings
        self._next_id = 1
        self._tidied: dict[str, Decimal] = {}  # str(price) -> tidy(price), for round trips' records

    def _book_pending(self) -> None:
        """Book the fills waiting in :attr:`pending`, in order (each exactly as :meth:`apply_fill` would).

        A fill that opens a trade followed at once by one that closes it exactly (the usual round trip of a
        backtest) is kept as the pair, and its record made from the two fills when read (:func:`_pair_record`):
        the same record, without the accumulator, its method calls and its Decimal operations whose results no
        field keeps (tests/unit/test_trade_book_pairs.py compares both on every kind of fill)."""
        pending = self.pending  # the same list throughout: the portfolio keeps a reference to it
        book, funding = self._apply_fill, self._add_funding
        opened, exits, last = self._open, self._exits, self._last_closed
        i, n = 0, len(pending)
        while i < n:
            item = pending[i]
            i += 1
            if len(item) == 2:  # a funding settlement booked while fills were pending
                funding(*item)
                continue
            if i < n and item[0] not in opened:
                after = pending[i]
                if len(after) == 9 and after[0] == item[0]:
                    found = _round_trip(item, after)  # type: ignore[arg-type]
                    if found is not None:
                        last[item[0]] = len(exits)
                        s1, s2, plain = found
                        exits.append((self._next_id, item, after, s1, s2, plain))
                        self._next_id += 1
                        i += 1
                        continue
            book(*item)
        pending.clear()

    def _exit(self, index: int) -> tuple[OpenTrade, int, str, str]:
        """``_exits[index]`` as (trade, exit time, reason, exit tag): a round trip kept as its two fills is booked
        the general way first (a late fee changes its trade)."""
        found = self._exits[index]
        if len(found) == 4:
            return found
        scratch = TradeBook()
        scratch._next_id = found[0]
        scratch._apply_fill(*found[1])
        scratch._apply_fill(*found[2])
        made = self._exits[index] = scratch._exits[0]
        return made

    @property
    def open(self) -> dict[str, OpenTrade]:
        """The open trade of each symbol that has one (the book's own dict)."""
        if self.pending:
            self._book_pending()
        return self._open

    @property
    def closed(self) -> list[TradeRecord]:
        """The closed round trips as records, made on first read (the list is the book's own: copy it)."""
        if self.pending:
            self._book_pending()
        made, exits = self._made, self._exits
        if len(made) < len(exits):
            tidied = self._tidied
            for e in exits[len(made) :]:
                made.append(_pair_record(e, tidied) if len(e) == 6 else e[0].record(e[1], e[2], exit_tag=e[3]))
        return made

    def _start(self, symbol: str, strategy_id: str, ts: int, long: bool, tag: str = "") -> OpenTrade:
        trade = OpenTrade(self._next_id, symbol, strategy_id, ts, long, tag)
        self._next_id += 1
        self._open[symbol] = trade
        return trade

    def _finish(self, trade: OpenTrade, ts: int, reason: str, tag: str = "") -> None:
        del self._open[trade.symbol]
        self._last_closed[trade.symbol] = len(self._exits)
        self._exits.append((trade, ts, reason, tag))

    def add_fee(self, symbol: str, fee: Decimal, ts: int) -> None:
        """Book a fee that arrives after the fill it belongs to (the liquidation clearance fee).

        It goes to the trade the fill closed at ``ts``, or else to the symbol's open trade.
        """
        if self.pending:
            self._book_pending()
        idx = self._last_closed.get(symbol)
        if idx is not None and self._exit(idx)[1] == ts:
            trade, _ts, reason, tag = self._exits[idx]
            trade.fees += fee
            if idx < len(self._made):  # already read: make its record again
                self._made[idx] = trade.record(ts, reason, exit_tag=tag)
        elif symbol in self._open:
            self._open[symbol].fees += fee

    def apply_fill(
        self,
        symbol: str,
        signed_qty: Decimal,
        price: Decimal,
        realized: Decimal,
        commission: Decimal,
        ts: int,
        strategy_id: str,
        reason: str,
        tag: str = "",
    ) -> None:
        """Book one fill (after the fills still pending, so in arrival order); see :meth:`_apply_fill`."""
        if self.pending:
            self._book_pending()
        self._apply_fill(symbol, signed_qty, price, realized, commission, ts, strategy_id, reason, tag)

    def _apply_fill(
        self,
        symbol: str,
        signed_qty: Decimal,
        price: Decimal,
        realized: Decimal,
        commission: Decimal,
        ts: int,
        strategy_id: str,
        reason: str,
        tag: str = "",
    ) -> None:
        """Book one fill; closes (and possibly reopens) the symbol's trade when it crosses flat.

        ``tag`` is the strategy's tag of the order: it names the trade's entry when the fill opens
        one and its exit when the fill closes one.
        """
        if not signed_qty:
            return
        trade = self._open.get(symbol)
        if trade is None:
            self._start(symbol, strategy_id, ts, signed_qty > 0, tag).grow(signed_qty, price, commission)
            return
        if trade.long == (signed_qty > 0):
            trade.grow(signed_qty, price, commission)
            return
        size = abs(signed_qty)
        closing = min(size, abs(trade.qty))
        fee_close = commission if closing == size else commission * closing / size
        trade.shrink(closing, price, realized, fee_close)
        if trade.qty:
            return
        self._finish(trade, ts, reason, tag)
        rest = size - closing
        if rest:
            reopened = self._start(symbol, strategy_id, ts, signed_qty > 0, tag)
            reopened.grow(rest if signed_qty > 0 else -rest, price, commission - fee_close)

    def add_funding(self, symbol: str, amount: Decimal) -> None:
        """Book a funding settlement to the symbol's open trade, if any (after the fills before it: pending)."""
        if self.pending:
            self.pending.append((symbol, amount))
        else:
            self._add_funding(symbol, amount)

    def _add_funding(self, symbol: str, amount: Decimal) -> None:
        trade = self._open.get(symbol)
        if trade is not None:
            trade.funding += amount

    def force_close(self, symbol: str, price: Decimal, realized: Decimal, fee: Decimal, ts: int) -> bool:
        """Close the symbol's trade from a ``Liquidated`` event; False when none was open."""
        if self.pending:
            self._book_pending()
        trade = self._open.get(symbol)
        if trade is None:
            return False
        trade.shrink(abs(trade.qty), price, realized, fee)
        self._finish(trade, ts, "liquidation")
        return True

    def marked(self, ts: int, marks: dict[str, tuple[Decimal, Decimal, Decimal]]) -> list[TradeRecord]:
        """Still-open trades as records marked at ``marks[symbol] = (mark, qty, entry)``.

        The position's unrealized PnL at the mark is added to ``gross_pnl`` and ``exit_reason`` is
        ``"open"``; a symbol without a mark is marked at its entry (zero unrealized).
        """
        if self.pending:
            self._book_pending()
        out = []
        for symbol in sorted(self._open):
            trade = self._open[symbol]
            mark, qty, entry = marks.get(symbol, (_ZERO, _ZERO, _ZERO))
            unrealized = qty * (mark - entry) if mark else _ZERO
            out.append(trade.record(ts, "open", mark if mark else (entry or None), unrealized))
        return out
