"""What the backtest's fused order path (:mod:`.fast_fill`) remembers across orders: :class:`FusedState`, the fill
prices per open, the Decimals of float prices, the brackets' caps, the callbacks that hand its events to their
readers, and the float bound that judges a flat entry's margin check before the Decimal one."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, getcontext
from typing import TYPE_CHECKING, cast

from ..core.clock import ReplayClock
from ..core.enums import MarginType, OrderStatus, Side
from .book import ONE, ZERO, Book, dec
from .orders import SimOrder

if TYPE_CHECKING:
    from ..core.rules import SymbolRules
    from .book import BookPosition
    from .margin import Margin

_MEMO_LIMIT = 1 << 16
_CROSSED = MarginType.CROSSED
_UNSEEN_GRID: tuple[int, Decimal] = (0, ZERO)  # (a symbol's grid not looked at yet: known by identity)

# (client id, order id, symbol, side, quantity, reduce only, ts) -> delivered without the event
Accepted = Callable[[str, int, str, Side, Decimal, bool, int], bool]
# (the order, trade id, quantity, price, commission, realized PnL, status, ts_event, ts_init) -> delivered
Filled = Callable[[SimOrder, int, Decimal, Decimal, Decimal, Decimal, OrderStatus, int, int], bool]
# (symbol, the position, ts_event, ts_init) -> delivered
Positioned = Callable[[str, "BookPosition", int, int], bool]
Balanced = Callable[[Decimal, Decimal, int, int], bool]
Settled = Callable[[str, "BookPosition", Decimal, int, int], bool]


class FusedState:
    """What the short ways remember: pure functions of values a run meets again and again (fill prices per
    open, a float price's Decimal, a symbol's bracket cap per leverage), so each is
    computed once per distinct value. The rules, brackets and slippage are the run's and do not change."""

    __slots__ = ("_caps", "_context", "_decs", "_fee", "_grids", "_prices", "_qty", "_replay", "_sizes", "_slip",
                 "_ticks", "accepted", "balance", "filled", "position", "settled")  # fmt: skip

    def __init__(self, slip: Decimal, clock: object = None) -> None:
        self._slip = slip
        self._replay = clock if type(clock) is ReplayClock else None
        """The exchange's clock when it is a plain :class:`ReplayClock` (``now_ms`` is its ``time_ms``), else None."""
        self._context = getcontext().copy()
        """The decimal context the run computes in, as it is when the exchange turns the fused path on (the memos
        here assume it does not change during the run): a filled order's average price is divided in it when read
        (``SimOrder.avg_price``), whatever the context is then."""
        self._grids: dict[str, tuple[int, Decimal] | None] = {}  # symbol -> _plain_grid(its rules)
        self._ticks: dict[str, bool] = {}  # symbol -> its tick's exponent is at most 0 (_whole_tick)
        self.accepted: Accepted | None = None
        """Set by the backtest: hands an accepted MARKET order's ``OrderAccepted`` to its readers directly when it
        can (True), else False and the event is published; None: always published."""
        self.balance: Balanced | None = None
        """Likewise for a fill's ``BalanceChanged`` (``wallet, change, ts_event, ts_init``)."""
        self.filled: Filled | None = None
        """Likewise for its ``OrderFilled`` (a MARKET order's taker fill, no liquidation)."""
        self.position: Positioned | None = None
        """Likewise for its ``PositionChanged`` (the book's position as it is when the event is due)."""
        self.settled: Settled | None = None
        """Its ``PositionChanged`` and then its ``BalanceChanged`` in one call (``symbol, position, change, ts_event,
        ts_init``; the wallet read when the balance is due): True when both were delivered, False when neither was
        (then ``position`` and ``balance`` are asked in turn)."""
        self._prices: dict[tuple[str, bool, float], tuple[Decimal, float, bool]] = {}  # -> _priced(fill price, ...)
        self._sizes: tuple[Decimal, float] = (ZERO, 0.0)  # the last position size converted to float, and its float
        self._decs: dict[float, Decimal] = {}
        self._caps: dict[tuple[str, int], tuple[Decimal, float]] = {}  # -> the bracket's cap, its float
        self._fee: tuple[Decimal | None, float] = (None, 0.0)  # the taker fee last read, its float
        self._qty: tuple[Decimal | None, float] = (None, 0.0)  # the quantity last checked, its float

    def taker_price(self, book: Book, buy: bool, at: float) -> Decimal:
        """``Matching._taker_price(book, side, at)``."""
        return self.taker(book, buy, at)[0]

    def taker(self, book: Book, buy: bool, at: float) -> tuple[Decimal, float, bool]:
        """:meth:`taker_price`, its float (``float(price)``) and whether its exponent is at most 0 (finite; see
        :func:`_priced`), remembered per symbol, side and price."""
        if not at:  # (0.0 and -0.0 are one key but two Decimals)
            return self._compute(book, buy, at)
        key = (book.symbol, buy, at)
        found = self._prices.get(key)
        if found is None:
            if len(self._prices) >= _MEMO_LIMIT:
                self._prices.clear()
            found = self._prices[key] = self._compute(book, buy, at)
        return found

    def _compute(self, book: Book, buy: bool, at: float) -> tuple[Decimal, float, bool]:
        price = self._decs.get(at) or self.dec(at)  # (dec(at); a zero is not kept: converted again, the same)
        rules = book.rules
        slip = self._slip
        if slip:
            price = price * (ONE + slip) if buy else price * (ONE - slip)
            tick = rules.tick_size
            if tick > 0:
                rounding = ROUND_CEILING if buy else ROUND_FLOOR
                price = ((price / tick).to_integral_value(rounding=rounding) * tick).quantize(tick)
                return price, float(price), self._whole_tick(rules) and price.is_finite()
            return _priced(price, float(price))
        grid = self._grids.get(book.symbol, _UNSEEN_GRID)
        if grid is _UNSEEN_GRID:
            grid = self._grids[book.symbol] = _plain_grid(rules)
        if grid is not None and price.adjusted() < grid[0]:
            unit = grid[1]
            on = price.quantize(unit)
            if on == price:  # already on the grid: what round_price_nearest gives for it (see _plain_grid)
                if unit is not rules.tick_size:
                    on = on.quantize(rules.tick_size)  # (a tick with trailing zeros: its exponent, the same value)
                # (of the same value as the float's own Decimal: its float is the float, a zero's sign aside)
                return on, at if at else float(on), self._whole_tick(rules)  # (equal to a price: finite)
        tick = rules.tick_size
        price = rules.round_price_nearest(price)
        if tick > 0:
            return price, float(price), self._whole_tick(rules) and price.is_finite()
        return _priced(price, float(price))

    def _whole_tick(self, rules: SymbolRules) -> bool:
        """Whether the symbol's tick (positive) has an exponent of at most 0: a price quantised to it (what the
        rounding of every fill price ends with, when the tick is positive) has that exponent when it is finite, so
        ``_priced``'s test is this one, without taking the price apart (``as_tuple`` costs five multiplications)."""
        found = self._ticks.get(rules.symbol)
        if found is None:
            found = self._ticks[rules.symbol] = cast(int, rules.tick_size.as_tuple().exponent) <= 0
        return found

    def dec(self, x: float) -> Decimal:
        """``book.dec(x)``. Only finite, non-zero ones are kept: the table may be shared with the risk gate's fast
        path (``FastIntents.share_prices``), which converts floats the same way and keeps only finite ones."""
        if not x:
            return dec(x)
        found = self._decs.get(x)
        if found is None:
            found = dec(x)
            if found.is_finite():
                if len(self._decs) >= _MEMO_LIMIT:
                    self._decs.clear()
                self._decs[x] = found
        return found

    @property
    def prices(self) -> dict[float, Decimal]:
        """The table of float prices' Decimals (``dec``), to share with the risk gate's fast path."""
        return self._decs

    def cap(self, book: Book, leverage: int) -> Decimal:
        """``book.brackets.max_notional(leverage)`` (a book with brackets)."""
        return self._cap(book, leverage)[0]

    def _cap(self, book: Book, leverage: int) -> tuple[Decimal, float]:
        """:meth:`cap` and its float."""
        key = (book.symbol, leverage)
        found = self._caps.get(key)
        if found is None:
            cap = book.brackets.max_notional(leverage)  # type: ignore[union-attr]
            found = self._caps[key] = (cap, float(cap))
        return found

    def flat_entry_fits(self, ex: Margin, book: Book, qty: Decimal, last: float, leverage: int) -> bool:
        """True when an order of ``qty`` on a flat book certainly passes :func:`_check_margin` at the last price
        ``last``: its notional ``qty * dec(last)`` below the bracket's cap (``abs(0 + qty) * ref``: the same value to
        28 digits) and ``cost / leverage + cost * taker_fee`` (``needed``) not above the available balance. On the
        exchange's one book, cross, with no order queued, that balance is the wallet; else the float bound of
        ``needed`` is handed to ``Margin.covers_float``, the float bound of the balance over every book. False: not
        sure, the Decimal check decides.

        In floats: each Decimal result is within 5e-28 of its value relatively (28 digits), each float within 2**-53
        of its operands' exact result and a float of a Decimal within 2**-53 of it, so the estimates lie within 1e-14
        of the sizes they sum; the bound allows 1e-12 of them and of the wallet, and 1e-290 absolutely (below which
        floats lose relative precision)."""
        known = self._qty
        if known[0] is qty:  # (the gate's sizing hands the same Decimal for the same size: its float kept)
            n = known[1]
        else:
            n = float(qty)
            self._qty = (qty, n)
        if not (n > 0.0 and last > 0.0 and leverage > 0):  # (also NaN)
            return False
        n *= last
        if book.brackets is not None:
            cap = self._caps.get((book.symbol, leverage)) or self._cap(book, leverage)
            if not n * (1.0 + 1e-12) + 1e-290 < cap[1] * (1.0 - 1e-12):
                return False
        fee = ex.config.taker_fee
        rate = self._fee
        if rate[0] is not fee:
            rate = self._fee = (fee, float(fee))
        margin = n / leverage
        charge = n * rate[1]
        wallet_f = float(ex.wallet)
        bound = margin + charge + 1e-12 * (margin + abs(charge)) + 1e-290  # (at least ``needed``)
        if len(ex._books) == 1 and book.pos.margin_type is _CROSSED and not book.market and not book.resting:
            return bound < wallet_f - 1e-12 * abs(wallet_f)
        return ex.covers_float(bound, wallet_f)

    def float(self, d: Decimal) -> float:
        """``float(d)``, zeros without their string. Not remembered: a Decimal made by the fill is new, and hashing
        it to look it up costs about twice what ``float`` does."""
        if not d:
            return -0.0 if d.is_signed() else 0.0
        return float(d)


def _priced(price: Decimal, price_f: float) -> tuple[Decimal, float, bool]:
    """A fill price as the memo keeps it: with its float, and whether it is finite with an exponent of at most 0. Then
    ``Decimal(0) + price * qty`` (a first fill's ``cum_quote``) is ``price * qty`` digit for digit when ``qty`` is an
    order's ``quantity - Decimal(0)``: that qty's exponent is at most 0 too, or its coefficient has the context's
    full precision (it was rounded), so the product's exponent is at most 0 or its coefficient full (it was rounded, or
    a full coefficient times another), and adding a zero of exponent 0 to such a number changes no digit."""
    return price, price_f, price.is_finite() and cast(int, price.as_tuple().exponent) <= 0


def _plain_grid(rules: SymbolRules) -> tuple[int, Decimal] | None:
    """Whether a price already on this symbol's tick grid can skip ``round_price_nearest``: up to which size (a bound
    on ``price.adjusted()``) and the grid's unit (the tick without its trailing zeros: the tick itself when it has
    none), or None. It can when the tick's value is a power of ten and the min price a multiple of it: then
    ``p.quantize(unit) == p`` holds exactly for the prices on the grid (a multiple of a power of ten has no digits
    below it), and for those ``round_price_nearest(p)``,
    ``(min + ((p - min) / tick).to_integral_value() * tick).quantize(tick)``, is ``(min + (p - min)).quantize(tick)``:
    the same value, quantised to the same exponent, ``p.quantize(unit).quantize(tick)`` (of which the second is
    needed only for a tick like 0.0010). The bound keeps every step of that formula within 27 digits, so each is
    exact in the default 28-digit context."""
    tick, low = rules.tick_size, rules.min_price
    if tick <= 0 or low < 0:
        return None
    unit = tick if tick.as_tuple().digits == (1,) else tick.normalize()
    if unit.as_tuple().digits != (1,) or low % unit != 0:
        return None
    limit = cast(int, tick.as_tuple().exponent) + 26
    return (limit, unit) if not low or low.adjusted() < limit else None


__all__ = ["Accepted", "Balanced", "Filled", "FusedState", "Positioned", "Settled"]
