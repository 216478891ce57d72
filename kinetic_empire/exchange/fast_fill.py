"""The backtest's short way through the simulated exchange: accepting a MARKET order the risk gate checked,
and filling a book's one queued MARKET order at the next open.

These are the general steps of :meth:`Acceptance.submit` and of ``_fill_market_orders`` → ``_taker_price`` →
``_fill`` → ``_after_position_change``, written out for the one case a backtest meets on almost every order (a
cross-margin book, one market order queued, no fill cap), with the same Decimal expressions in the same order
and the same events; what they skip is only what cannot apply to that case (the branches for other order types,
the checks the gate's stamp vouches for, a re-rounding of a fill price already computed for the same open).
Anything else takes the general way (:func:`fill_queued_market` returns False before changing anything).

Where a value is already what a step would produce (a fill price already on a plain tick grid, the margin a
lone flat book leaves: the wallet, the levels a solve resets when the only book goes flat, a first fill's sums with
the order's Decimal(0) where they change no digit), the step is skipped with the same result; a flat entry's margin
check is judged in floats first, the Decimal check deciding whenever the bound cannot, and a filled order's average
price is divided when read (``SimOrder.avg_price``). The backtest may also take the ``OrderAccepted`` and
``BalanceChanged`` these make straight to their only readers (``FusedState.accepted`` / ``balance``,
:mod:`kinetic_empire.backtest.direct`).

What they remember across orders is a :class:`~.fused_state.FusedState`. Only a backtest turns them on
(``Ledger.fused_orders``): the sandbox keeps the general path, whose orders come over the wire unchecked.
tests/unit/test_fused_order_path.py and test_fused_fill_digits.py run both ways on the same inputs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from ..core.enums import BalanceReason, MarginType, OrderStatus, OrderType, Side, WorkingType
from ..core.errors import ExchangeError
from ..core.event_factories import new_balance_changed, new_order_accepted, new_order_filled, new_position_changed
from .book import _FEE_Q, INF, NEVER, ZERO, Book
from .cross_margin import _COVERED_LONG_SAFE, _alone, _set
from .fused_state import FusedState
from .orders import ZERO as _UNFILLED
from .orders import SimOrder

if TYPE_CHECKING:
    from .margin import Margin

_MARKET = OrderType.MARKET
_BUY = Side.BUY
_NEW, _FILLED, _PARTIAL = OrderStatus.NEW, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED
_CROSSED = MarginType.CROSSED
_CONTRACT = WorkingType.CONTRACT_PRICE
_ORDER = BalanceReason.ORDER
_ZERO_MONEY = ZERO.quantize(_FEE_Q)


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
    if not pos.qty and memo.flat_entry_fits(ex, book, qty, last, pos.leverage):
        return  # (a float bound: below the bracket's cap and the available balance, by far more than the error)
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
            flat = abs(old)  # (a zero; times the book's ZERO entry a flat book has: itself, +0 of its exponent + 0)
            pos.entry = ((flat if pos.entry is ZERO else flat * pos.entry) + notional) / abs(new)
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
    if realized is ZERO:
        realized = _ZERO_MONEY
        # (0E-8 - commission: the commission has exponent -8 (quantised), so the difference is exact at -8, digit for
        # digit its negation; a zero's sign is minus's too: positive unless rounding toward -inf, as the subtraction)
        change = -commission
    else:
        realized = realized.quantize(_FEE_Q)
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
        cover = ex._cover  # (Margin._update_liquidation_prices(book), its short way inlined: Cover.after_fill)
        if cover is not None and cover.terms is not None and ex.bounded_liquidation_solves \
                and (held := cover.after_fill(book, ex.wallet, ex._next_trade_id)) is not None:
            ex._cross_positions = held
        else:
            ex._update_liquidation_prices()  # (the full solve: the short way declined or does not apply)
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


__all__ = ["FusedState", "accept_market", "fill_queued_market", "new_market_order"]  # (FusedState: .fused_state's)
