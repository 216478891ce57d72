"""Matching in the simulated exchange: how a kline (or one price) fills and triggers orders.

Within one kline the unknown path is resolved by one conservative rule:

1. **At the open**: funding is settled if a settlement time has been reached (positions held at that
   instant pay or receive, at the open price used as mark); queued market orders fill at the open;
   resting stops and take-profits that the open has already passed fill at the open.
2. **In the range** (high/low), adverse events first: stop orders (stop-loss and stop entries), then
   liquidation, then take-profits and limit orders. When a stop-loss and a take-profit of the same
   position could both fire in one kline, the stop-loss wins. Orders placed while the open is processed
   (e.g. protective stops for an entry filled at the open) take part in the range; orders placed while
   the range is processed wait for the next kline. A trailing stop follows the kline's path instead, the same
   path the sandbox replays (open, low, high, close when the kline closed up; open, high, low, close when it
   closed down): its level moves with each favourable extreme and is tested at each adverse one and at the close.
3. **At the close**: the close becomes the last and mark price.

Fill prices: market and triggered stop/take-profit market orders fill at the open or at the trigger
price, moved by the slippage model, as takers; resting limits fill at their limit price as makers;
a limit that was marketable on arrival fills at the next price if it is still within the limit, as
a taker. The local sandbox, like Binance, fills a market order on arrival against its book instead
(:meth:`Matching.fill_market_on_arrival`); the backtest never does. Mark price is the last price (no
mark-price series is replayed).

A kline that can change nothing (no order waiting, no liquidation or funding level reached) costs a
few comparisons in :meth:`Matching.on_kline`: that is the backtest's hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from ..core.bus import InlineStep, source_digest
from ..core.enums import OrderStatus, OrderType, Side, TimeInForce
from ..core.events import KlineClosed
from .book import ONE, Book, dec
from .fast_fill import FusedState, fill_queued_market
from .funding import Funding
from .margin import Margin
from .orders import SimOrder

# ``Matching.on_kline`` as source, its book looked up once, for the replay feed's fused loop
# (``core.bus.InlineStep``); tests/unit/test_replay_inline.py checks the two agree.
_ON_KLINE_STEP = """\
if $book.busy or low <= $book.watch_low or high >= $book.watch_high or open_time >= $book.next_funding:
    @sync
    $process($book, open_time, open_, high, low, close)
else:
    $book.last = close
"""
# source_digest(Matching.on_kline) when _ON_KLINE_STEP was last checked against it
_ON_KLINE_STEP_MIRRORS = "faa4eb545f3dd17e"


class Matching(Margin, Funding):
    """Price updates: the intrabar rule, triggers and fills."""

    _fused: FusedState | None = None  # see use_fused_orders

    def use_fused_orders(self) -> None:
        """Backtests: accept gate-checked MARKET orders and fill a book's one queued MARKET order the short way
        (:mod:`.fast_fill`), with the same results; the sandbox never calls it."""
        self._fused = FusedState(self._slip, self._clock)

    @property
    def fused_orders(self) -> bool:
        return self._fused is not None

    # --------------------------------------------------------------------------------- prices
    def on_bar(self, symbol: str, ts: int, o: float, h: float, low: float, c: float) -> None:
        """A kline (or the part of one since the last update): see the module docstring for the rule."""
        book = self._books[symbol]
        if book.busy or low <= book.watch_low or h >= book.watch_high or ts >= book.next_funding:
            self._process(book, ts, o, h, low, c)
        else:
            book.last = c

    def on_kline(self, k: KlineClosed) -> None:
        """Bus handler form of :meth:`on_bar` (one call less on the backtest's hot path)."""
        book = self._books[k.symbol]
        if book.busy or k.low <= book.watch_low or k.high >= book.watch_high or k.open_time >= book.next_funding:
            self._process(book, k.open_time, k.open, k.high, k.low, k.close)
        else:  # inside every level, and with several cross positions inside its band (exchange.cross_margin)
            book.last = k.close

    def inline_step(self, handler: Callable[[Any], None], topic: Hashable | None) -> InlineStep | None:
        """:meth:`on_kline` for one symbol as source (the feed runs it in place of the call; keep them alike)."""
        book = self._books.get(topic[0]) if isinstance(topic, tuple) and topic else None
        if (handler != self.on_kline or book is None or type(self).on_kline is not Matching.on_kline
                or source_digest(Matching.on_kline) != _ON_KLINE_STEP_MIRRORS):  # on_kline edited alone
            return None
        return InlineStep(_ON_KLINE_STEP, {"book": book, "process": self._process}, reads_kline=False)

    def on_tick(self, symbol: str, ts: int, price: float) -> None:
        self.on_bar(symbol, ts, price, price, price, price)

    # ------------------------------------------------------------------------------- internals
    def _process(self, book: Book, ts: int, o: float, h: float, low: float, c: float) -> None:
        if self._cross_positions > 1 and (low <= book.watch_low or h >= book.watch_high):
            self._band_reached()
        # 1. at the open
        if ts >= book.next_funding:
            self._settle_funding(book, ts, o)
        if book.market:  # (_fill_market_orders, its fused attempt inlined: the one call of a backtest's fill)
            fused = self._fused
            if fused is None or not fill_queued_market(self, fused, book, o, ts):
                self._fill_market_general(book, o, ts)
        if book.resting:
            self._trigger_at_open(book, ts, o)
        # 2. in the range: stops, liquidation, then take-profits and limits
        if book.resting:
            snapshot = list(book.resting)
            for order in snapshot:
                if order.is_open and order.is_stop and (
                    order.trail_path(o, h, low, c) if order.callback_f else order.trigger_hit(h, low)
                ):
                    self._fire_conditional(book, order, order.trigger_f, ts)
        if low <= book.watch_low or h >= book.watch_high:
            self._liquidate_if_reached(book, ts, o, h, low)
        if book.resting:
            for order in snapshot:
                if not order.is_open:
                    continue
                if order.is_take_profit and order.trigger_hit(h, low):
                    self._fire_conditional(book, order, order.trigger_f, ts)
                elif order.order_type is OrderType.LIMIT and (
                    (order.side is Side.BUY and low <= order.price_f)
                    or (order.side is Side.SELL and h >= order.price_f)
                ):
                    self._fill(book, order, order.remaining, order.price, True, ts)  # type: ignore[arg-type]
        book.last = c
        if self._cross_positions > 1 and not book.watch_low < c < book.watch_high:  # (_follow_price, inlined)
            self._update_liquidation_prices()

    def _trigger_at_open(self, book: Book, ts: int, o: float) -> None:
        for order in list(book.resting):
            if not order.is_open:
                continue
            if order.order_type is OrderType.LIMIT:
                crosses = (order.side is Side.BUY and o <= order.price_f) or (
                    order.side is Side.SELL and o >= order.price_f
                )
                if order.is_taker_on_arrival:
                    order.is_taker_on_arrival = False
                    if crosses:
                        self._fill(book, order, order.remaining, self._taker_price(book, order.side, o), False, ts)
                    elif order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                        self._finish(order, OrderStatus.EXPIRED, "IOC/FOK leftover")
                elif order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                    self._finish(order, OrderStatus.EXPIRED, "IOC/FOK not marketable")
            elif not order.triggered and order.trigger_hit(o, o):
                self._fire_conditional(book, order, o, ts)
            if order.is_open and order.good_till_date and ts >= order.good_till_date:
                self._finish(order, OrderStatus.EXPIRED, "GTD expired")

    def _fire_conditional(self, book: Book, order: SimOrder, at: float, ts: int) -> None:
        order.triggered = True
        if order.close_position:
            qty = abs(book.pos.qty)
            closing = (book.pos.qty > 0 and order.side is Side.SELL) or (book.pos.qty < 0 and order.side is Side.BUY)
            if qty == 0 or not closing:
                self._finish(order, OrderStatus.EXPIRED, "closePosition with no position to close")
                return
            order.quantity = qty
        if order.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT):
            # becomes a LIMIT at its price; fills now if the trigger price is within the limit
            order.order_type = OrderType.LIMIT
            within = (order.side is Side.BUY and at <= order.price_f) or (
                order.side is Side.SELL and at >= order.price_f
            )
            if within:
                self._fill(book, order, order.remaining, order.price, False, ts)  # type: ignore[arg-type]
            return
        order.order_type = OrderType.MARKET
        self._fill(book, order, order.remaining, self._taker_price(book, order.side, at), False, ts)

    def _taker_price(self, book: Book, side: Side, at: float) -> Decimal:
        price = dec(at)
        rules = book.rules
        if self._slip:
            price = price * (ONE + self._slip) if side is Side.BUY else price * (ONE - self._slip)
            tick = rules.tick_size
            if tick > 0:
                rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
                return ((price / tick).to_integral_value(rounding=rounding) * tick).quantize(tick)
            return price
        return rules.round_price_nearest(price)

    def fill_market_on_arrival(self, order: SimOrder, levels: Iterable[tuple[Decimal, Decimal]]) -> None:
        """Fill a just-accepted MARKET order at once against a book side (best level first), as Binance
        does; each level taken is one taker trade at that level's price. What the levels (or the per-tick
        fill cap) leave open waits in the queue for the next price update, as before."""
        book = self._books[order.symbol]
        if not order.is_open or order not in book.market:
            return
        ts = self._clock.now_ms()
        for price, qty in levels:
            take = min(order.remaining, qty)
            before = order.executed_qty
            self._fill(book, order, take, price, False, ts)
            if not order.is_open or order.executed_qty - before < take:
                break  # filled, expired, or capped: nothing more now
        if not order.is_open and order in book.market:  # (an expired one has left already)
            book.market.remove(order)
        book.refresh()

    def _fill_market_orders(self, book: Book, price: float, ts: int) -> None:
        fused = self._fused
        if fused is not None and fill_queued_market(self, fused, book, price, ts):
            return
        self._fill_market_general(book, price, ts)

    def _fill_market_general(self, book: Book, price: float, ts: int) -> None:
        """Fill the book's queued MARKET orders at ``price`` (what the fused fill does not take)."""
        orders, book.market = book.market, []
        for order in orders:
            if order.is_open:
                self._fill(book, order, order.remaining, self._taker_price(book, order.side, price), False, ts)
                if order.is_open:  # partially filled by the per-tick cap: wait for the next price
                    book.market.append(order)
        book.refresh()
