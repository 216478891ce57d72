"""The backtest's short way through the simulated exchange: accepting a MARKET order the risk gate checked,
and filling a book's one queued MARKET order at the next open.

These are the general steps of :meth:`Acceptance.submit` and of ``_fill_market_orders`` → ``_taker_price`` →
``_fill`` → ``_after_position_change``, written out for the one case a backtest meets on almost every order (a
cross-margin book, one market order queued, no fill cap), with the same Decimal expressions in the same order
and the same events; what they skip is only what cannot apply to that case (the branches for other order types,
the checks the gate's stamp vouches for, a re-rounding of a fill price already computed for the same open).
Anything else takes the general way (:func:`fill_queued_market` returns False before changing anything).

Where a value is already what a step would produce (a fill price already on a plain tick grid, the margin a
lone flat book leaves: the wallet, the levels a solve resets when the only book goes flat), the step is skipped
with the same result. The backtest may also take the ``OrderAccepted`` and ``BalanceChanged`` these make
straight to their only readers (``FusedState.accepted`` / ``balance``, :mod:`kinetic_empire.backtest.direct`).

Only a backtest turns them on (``Ledger.fused_orders``): the sandbox keeps the general path, whose orders
come over the wire unchecked. tests/unit/test_fused_order_path.py runs both ways on the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, getcontext
from typing import TYPE_CHECKING, Any, cast

from ..core.clock import ReplayClock
from ..core.enums import BalanceReason, MarginType, OrderStatus, OrderType, Side, WorkingType
from ..core.errors import ExchangeError
from ..core.event_factories import new_balance_changed, new_order_accepted, new_order_filled, new_position_changed
from .book import _FEE_Q, INF, NEVER, ONE, ZERO, Book, dec
from .cross_margin import _COVERED_LONG_SAFE, _alone, _set
from .orders import ZERO as _UNFILLED
from .orders import SimOrder

if TYPE_CHECKING:
    from ..core.rules import SymbolRules
    from .book import BookPosition
    from .margin import Margin

_MARKET = OrderType.MARKET
_BUY = Side.BUY
_NEW, _FILLED, _PARTIAL = OrderStatus.NEW, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED
_CROSSED = MarginType.CROSSED
_CONTRACT = WorkingType.CONTRACT_PRICE
_ORDER = BalanceReason.ORDER
_ZERO_MONEY = ZERO.quantize(_FEE_Q)
_MEMO_LIMIT = 1 << 16
_UNSEEN_GRID = -(1 << 62)  # (a bound no price's adjusted exponent is below)

# (client id, order id, symbol, side, quantity, reduce only, ts) -> delivered without the event
Accepted = Callable[[str, int, str, Side, Decimal, bool, int], bool]
# (the order, trade id, quantity, price, commission, realized PnL, status, ts_event, ts_init) -> delivered
Filled = Callable[[SimOrder, int, Decimal, Decimal, Decimal, Decimal, OrderStatus, int, int], bool]
# (symbol, the position, ts_event, ts_init) -> delivered
Positioned = Callable[[str, "BookPosition", int, int], bool]
Balanced = Callable[[Decimal, Decimal, int, int], bool]
Settled = Callable[[str, "BookPosition", Decimal, int, int], bool]


def new_market_order(order_id: int, client_order_id: str, symbol: str, side: Side, quantity: Decimal,
                     reduce_only: bool, now: int) -> SimOrder:
    """``SimOrder(...)`` of a plain MARKET order, field by field (the tests compare every slot)."""
    o = SimOrder.__new__(SimOrder)
    o.order_id = order_id
    o.client_order_id = client_order_id
    o.symbol = symbol
    o.side = side
    o.order_type = _MARKET
    o.orig_type = _MARKET
    o.quantity = quantity
    o.price = None
    o.price_f = 0.0
    o.trigger_price = None
    o.trigger_f = 0.0
    o.time_in_force = None
    o.reduce_only = reduce_only
    o.close_position = False
    o.working_type = _CONTRACT
    o.is_algo = False
    o.status = _NEW
    o.executed_qty = _UNFILLED  # (the Decimal(0) SimOrder's __init__ stores: fill_queued_market knows it by identity)
    o.cum_quote = _UNFILLED
    o._avg = _UNFILLED
    o.time = now
    o.update_time = now
    o.triggered = False
    o.is_taker_on_arrival = False
    o.good_till_date = 0
    o.modifications = 0
    o.callback_rate = None
    o.callback_f = 0.0
    o.activation_price = None
    o.activated = False
    o.extreme_f = 0.0
    return o


def accept_market(ex: Margin, memo: FusedState, symbol: str, side: Side, quantity: Decimal, reduce_only: bool,
                  client_order_id: str | None, now: int | None = None) -> SimOrder:
    """``ex.submit(symbol=, side=, order_type=MARKET, quantity=, reduce_only=, client_order_id=,
    rules_checked=True)``: the same checks of the account's state, in the same order, and the same event. ``now``:
    the exchange clock's time when the caller has just read the same clock (a replay clock stands still meanwhile)."""
    book = ex._books.get(symbol) or ex.book(symbol)
    rules = book.rules
    if now is None:
        now = ex._clock.now_ms()
    if client_order_id is not None:
        key = (symbol, client_order_id)  # (made once: looked up here, stored below)
        previous = ex._by_client.get(key)
        if previous is not None and (previous.status is _NEW or previous.status is _PARTIAL):  # still open
            raise ExchangeError(-4116, "ClientOrderId is duplicated.")
    if reduce_only:
        pos_qty = book.pos.qty
        if not pos_qty or (pos_qty > ZERO) == (side is _BUY):  # nothing to reduce
            raise ExchangeError(-2022, "ReduceOnly Order is rejected.")
    max_orders = rules.max_num_orders
    if max_orders is not None and (max_orders <= 0 or ((book.market or book.resting) and sum(
            1 for o in (*book.market, *book.resting) if o.is_open) >= max_orders)):
        raise ExchangeError(-2025, "Reach max open order limit.")
    if not reduce_only:
        _check_margin(ex, memo, book, side, quantity)
    order_id = ex._next_order_id
    if client_order_id is None:
        client_order_id = f"sim-{order_id}"
        key = (symbol, client_order_id)
    order = new_market_order(order_id, client_order_id, symbol, side, quantity, reduce_only, now)
    ex._next_order_id = order_id + 1
    ex._orders[order_id] = order
    ex._by_client[key] = order
    book.market.append(order)
    book.busy = True
    accepted = memo.accepted
    if accepted is None or not accepted(client_order_id, order_id, symbol, side, quantity, reduce_only, now):
        ex._emit(new_order_accepted(client_order_id, order_id, symbol, side, _MARKET, quantity, None, None,
                                    reduce_only, False, now, now))  # fmt: skip
    if ex.config.fill_market_immediately and book.last:
        cast(Any, ex)._fill_market_orders(book, book.last, now)  # (Matching's: its module imports this one)
    return order


_LEVERAGES: dict[int, Decimal] = {}


def _leverage(lev: int) -> Decimal:
    """``Decimal(lev)`` of an int leverage, kept (a Decimal divided by an int converts it exactly: the same value)."""
    made = Decimal(lev)
    if type(lev) is int and made and len(_LEVERAGES) < 256:
        _LEVERAGES[lev] = made
    return made


def _check_margin(ex: Margin, memo: FusedState, book: Book, side: Side, qty: Decimal) -> None:
    """``ex._check_margin(book, side, qty, None)``."""
    if not book.last:
        return  # no price yet: nothing to measure against (only before the first kline)
    last = book.last
    pos = book.pos
    if not pos.qty and len(ex._books) == 1 and pos.margin_type is _CROSSED and not book.market and not book.resting \
            and memo.flat_entry_fits(ex, book, qty, last, pos.leverage):
        return  # (a float bound: below the bracket's cap and the wallet, by far more than the estimate's error)
    ref = memo._decs.get(last) or memo.dec(last)  # (memo.dec, inlined for the prices seen before)
    signed = qty if side is _BUY else -qty
    after = pos.qty + signed
    if not pos.qty or (pos.qty > ZERO) == (signed > ZERO):
        increase = qty
    else:
        increase = max(ZERO, qty - abs(pos.qty))
    if not increase:
        return
    if book.brackets is not None and abs(after) * ref > memo.cap(book, pos.leverage):
        raise ExchangeError(-2027, "Exceeded the maximum allowable position at current leverage.")
    cost = increase * ref  # (the same product both terms compute)
    lev = pos.leverage  # (divided by as its Decimal, made once: what dividing by the int converts it to, each time)
    needed = cost / (_LEVERAGES.get(lev) or _leverage(lev)) + cost * ex.config.taker_fee
    if len(ex._books) == 1 and pos.qty_f == 0.0 and pos.margin_type is _CROSSED and not book.market \
            and not book.resting:
        available = ex.wallet  # what available_balance() sums for one flat cross book with no orders: the wallet
    elif ex.available_covers(needed):  # (a float bound: the balance is at least what is needed)
        return
    else:
        available = ex.available_balance()
    if needed > available:
        raise ExchangeError(-2019, "Margin is insufficient.")


class FusedState:
    """What the short ways remember: pure functions of values a run meets again and again (fill prices per
    open, a float price's Decimal, a symbol's bracket cap per leverage), so each is
    computed once per distinct value. The rules, brackets and slippage are the run's and do not change."""

    __slots__ = ("_caps", "_context", "_decs", "_fee", "_grids", "_prices", "_qty", "_replay", "_sizes", "_slip",
                 "accepted", "balance", "filled", "position", "settled")  # fmt: skip

    def __init__(self, slip: Decimal, clock: object = None) -> None:
        self._slip = slip
        self._replay = clock if type(clock) is ReplayClock else None
        """The exchange's clock when it is a plain :class:`ReplayClock` (``now_ms`` is its ``time_ms``), else None."""
        self._context = getcontext().copy()
        """The decimal context the run computes in, as it is when the exchange turns the fused path on (the memos
        here assume it does not change during the run): a filled order's average price is divided in it when read
        (``SimOrder.avg_price``), whatever the context is then."""
        self._grids: dict[str, int | None] = {}  # symbol -> _plain_grid(its rules)
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
            return _priced(price, float(price))
        limit = self._grids.get(book.symbol, _UNSEEN_GRID)
        if limit is _UNSEEN_GRID:
            limit = self._grids[book.symbol] = _plain_grid(rules)
        if limit is not None and price.adjusted() < limit:
            on = price.quantize(rules.tick_size)
            if on == price:  # already on the grid: what round_price_nearest gives for it (see _plain_grid)
                # (of the same value as the float's own Decimal: its float is the float, a zero's sign aside)
                return _priced(on, at if at else float(on))
        price = rules.round_price_nearest(price)
        return _priced(price, float(price))

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
        """True when an order of ``qty`` on the exchange's one book, flat, cross, with no order queued, certainly
        passes :func:`_check_margin` at the last price ``last``: its notional ``qty * dec(last)`` below the bracket's
        cap (``abs(0 + qty) * ref``: the same value to 28 digits) and ``cost / leverage + cost * taker_fee`` not above
        the wallet (what that case compares with). False: not sure, the Decimal check decides.

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
        wallet = float(ex.wallet)
        return margin + charge + 1e-12 * (margin + abs(charge)) + 1e-290 < wallet - 1e-12 * abs(wallet)

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


def _plain_grid(rules: SymbolRules) -> int | None:
    """Whether a price already on this symbol's tick grid can skip ``round_price_nearest``, and up to which size
    (a bound on ``price.adjusted()``), or None. It can when the tick is a power of ten (coefficient 1) and the min
    price a multiple of it: then ``p.quantize(tick) == p`` holds exactly for the prices on the grid (a multiple of
    a power of ten has no digits below it), and for those ``round_price_nearest(p)``,
    ``(min + ((p - min) / tick).to_integral_value() * tick).quantize(tick)``, is ``(min + (p - min)).quantize(tick)``:
    the same value, quantised to the same exponent, ``p.quantize(tick)``. The bound keeps every step of that
    formula within 26 digits, so each is exact in the default 28-digit context."""
    tick, low = rules.tick_size, rules.min_price
    if tick <= 0 or tick.as_tuple().digits != (1,) or low < 0 or low % tick != 0:
        return None
    limit = tick.adjusted() + 26
    return limit if not low or low.adjusted() < limit else None


def fill_queued_market(ex: Margin, memo: FusedState, book: Book, at: float, ts: int) -> bool:
    """``ex._fill_market_orders(book, at, ts)`` when the book's queue is one open MARKET order on a cross-margin
    position and no fill cap applies; False (nothing changed) otherwise."""
    market = book.market
    if len(market) != 1:
        return False
    order = market[0]
    pos = book.pos
    status = order.status
    config = ex.config
    if (status is not _NEW and status is not _PARTIAL) or order.close_position or pos.margin_type is not _CROSSED \
            or config.max_fill_qty:  # (not open, or another shape: the general way)
        return False
    buy = order.side is _BUY
    old = pos.qty
    done = order.executed_qty
    qty = order.quantity - done
    # executed_qty + qty below is qty itself when nothing was filled yet (``done`` is the Decimal(0) an order starts
    # with) and qty is that difference: x + Decimal(0) for an x that is y - Decimal(0) is x, digit for digit (its
    # exponent is at most 0, or, rounded to the precision, what rounding the sum gives again)
    unfilled = done is _UNFILLED
    # (comparisons against the Decimal ZERO: the same answers as against the int 0, without converting it; ``not x``
    # for ``x == 0``)
    if order.reduce_only:
        reducible = abs(old) if (old > ZERO and not buy) or (old < ZERO and buy) else ZERO
        if not reducible:
            return False  # expires: the general way
        if reducible < qty:  # (min(qty, reducible))
            qty = reducible
            unfilled = False
    symbol = book.symbol
    price, price_f, plain = (at and memo._prices.get((symbol, buy, at))) or memo.taker(book, buy, at)  # (inlined hit)
    market.pop()  # (the queue emptied in place of a new one: nothing else holds it)
    # --- Ledger._fill, its branches taken apart by whether the position was flat (the same expressions)
    signed = qty if buy else -qty
    new = old + signed
    realized = ZERO
    notional = price * qty  # (qty * price in the entry's formula: the same product, its operands swapped)
    if not old:  # opening (old == 0: was_long False, no closing part)
        if not new:
            pos.entry = ZERO
            book.next_funding = NEVER
        else:
            pos.entry = (abs(old) * pos.entry + notional) / abs(new)
            interval = config.funding_interval_ms
            book.next_funding = (ts // interval + 1) * interval
    else:
        was_long = old > ZERO
        adds = signed > ZERO
        if was_long != adds:  # the fill closes (some of) the position
            closing = min(abs(old), qty)
            realized = (price - pos.entry) * closing if was_long else (pos.entry - price) * closing
        if not new:
            pos.entry = ZERO
            book.next_funding = NEVER
        elif was_long == adds:  # adding
            pos.entry = (abs(old) * pos.entry + notional) / abs(new)
        elif was_long != (new > ZERO):
            pos.entry = price  # flipped: the remainder opened at this fill
    pos.qty = new
    # (floats, as memo.float: a size's float remembered for the last size by value, an entry equal to the fill price
    # takes the price's; not looked up by hash: hashing a new Decimal costs twice its float())
    if new:
        sizes = memo._sizes
        if sizes[0] == new:  # (equal values: the same float)
            pos.qty_f = sizes[1]
        else:
            f = pos.qty_f = float(new)
            memo._sizes = (new, f)
    else:
        pos.qty_f = -0.0 if new.is_signed() else 0.0
    entry = pos.entry
    if not entry:
        pos.entry_f = -0.0 if entry.is_signed() else 0.0
    else:
        pos.entry_f = price_f if entry == price else float(entry)
    commission = (notional * config.taker_fee).quantize(_FEE_Q)
    realized = _ZERO_MONEY if realized is ZERO else realized.quantize(_FEE_Q)
    change = realized - commission
    ex.wallet += change
    executed = order.executed_qty = qty if unfilled else done + qty
    quote = order.cum_quote
    # (a first fill's Decimal(0) + notional: notional itself when qty is unfilled and the price's exponent at most 0)
    order.cum_quote = notional if unfilled and plain and quote is _UNFILLED else quote + notional
    order._avg = memo._context  # (avg_price: cum_quote / executed_qty in the run's context, divided when read)
    order.update_time = ts
    status = order.status = _FILLED if executed >= order.quantity else _PARTIAL
    trade_id = ex._next_trade_id
    ex._next_trade_id = trade_id + 1
    # --- Ledger._record_trade: the trade row into the rows directly (the tuple Rows.add appends); its income rows
    # are written from it when the income history is next touched (Rows._settle), in the same order
    row = (trade_id, order.order_id, symbol, order.side._value_, price, qty, notional, commission, realized, False, buy,
           ts)  # fmt: skip
    ex.trades._rows.append(row)
    ex.income._due.append(row)
    clock = ex._clock
    now = clock.time_ms if clock is memo._replay else clock.now_ms()  # (a ReplayClock's now_ms, read in place)
    filled = memo.filled
    if filled is None or not filled(order, trade_id, qty, price, commission, realized, status, ts, now):
        cid = order.client_order_id
        ex._emit(new_order_filled(cid, order.order_id, trade_id, symbol, order.side, order.order_type, qty, price,
                                  commission, realized, False, status, order.reduce_only, cid.startswith("autoclose-"),
                                  ts, now))  # fmt: skip
    # --- Ledger._after_position_change
    if len(ex._books) != 1:
        ex._update_liquidation_prices(book)
    elif pos.qty_f == 0.0:  # the solve with every book flat: levels and prices reset, none open
        pos.liq_f = 0.0
        book.watch_low = -INF
        book.watch_high = INF
        ex._cross_positions = 0
    else:  # the solve of one open cross position (banded or not): the wallet alone backs it
        size = pos.qty_f
        margin = float(ex.wallet)
        tiers = book.tiers
        known = _COVERED_LONG_SAFE.get(id(tiers))
        if size > 0.0 and known is not None and known[1] and known[0] is tiers and margin >= size * pos.entry_f:
            pos.liq_f = 0.0  # (_set(book, _alone(...)) of a long its margin covers, its tier table known safe: none)
            book.watch_low = -INF
            book.watch_high = INF
        else:
            _set(book, _alone(size, pos.entry_f, margin, tiers))
        ex._cross_positions = 1
    settled = memo.settled
    if settled is None or not settled(symbol, pos, change, ts, now):
        positioned = memo.position
        if positioned is None or not positioned(symbol, pos, ts, now):
            ex._emit(new_position_changed(symbol, pos.qty, pos.entry, pos.leverage, ts, now))
        balance = memo.balance
        if balance is None or not balance(ex.wallet, change, ts, now):
            ex._emit(new_balance_changed("USDT", ex.wallet, change, _ORDER, ts, now))
    if book.resting or book.market:  # (a handler may have placed orders)
        if pos.qty == ZERO:
            for o in list(book.resting):
                if o.is_open and (o.reduce_only or o.close_position):
                    ex._finish(o, OrderStatus.EXPIRED, "position closed")
        else:
            for o in list(book.resting) + list(book.market):
                if o.is_open and o.reduce_only and not o.close_position and (pos.qty > ZERO) != (o.side is Side.SELL):
                    ex._finish(o, OrderStatus.EXPIRED, "reduce-only order would increase the position")
        book.busy = bool(book.market or book.resting)
    else:
        book.busy = False
    # (a filled order leaves the queues: it is in neither, the queue it was in was replaced above, so
    # ``ex._remove(order)`` would only refresh ``book.busy``, as above)
    if status is not _FILLED and order.is_open:  # partially filled: waits for the next price
        book.market.append(order)
        book.busy = True
    return True


__all__ = ["FusedState", "accept_market", "fill_queued_market", "new_market_order"]
