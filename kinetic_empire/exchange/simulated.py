"""A USD-M perpetual futures exchange in one object: orders, matching, margin, fees, funding, liquidation.

It knows nothing about backtests or HTTP. It takes orders and price updates and emits events through
the ``emit`` callable it is given (the bus in a backtest, the wire translator in the local sandbox).
Account model: one-way position mode, cross margin, USDT as the only margin asset, as in section 9 of
the Binance reference. Money is ``Decimal``; triggers are precomputed floats so the per-kline check
is a comparison.

Price updates come as klines (:meth:`on_bar`) or single prices (:meth:`on_tick`, a kline of one
price). Within one kline the unknown path is resolved by one conservative rule:

1. **At the open**: funding is settled if a settlement time has been reached (positions held at that
   instant pay or receive, at the open price used as mark); queued market orders fill at the open;
   resting stops and take-profits that the open has already passed fill at the open.
2. **In the range** (high/low), adverse events first: stop orders (stop-loss and stop entries), then
   liquidation, then take-profits and limit orders. When a stop-loss and a take-profit of the same
   position could both fire in one kline, the stop-loss wins. Orders placed while the open is processed
   (e.g. protective stops for an entry filled at the open) take part in the range; orders placed while
   the range is processed wait for the next kline.
3. **At the close**: the close becomes the last and mark price.

Fill prices: market and triggered stop/take-profit market orders fill at the open or at the trigger
price, moved by the slippage model, as takers; resting limits fill at their limit price as makers;
a limit that was marketable on arrival fills at the next price if it is still within the limit, as
a taker. Mark price is the last price (no mark-price series is replayed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from ..core.clock import Clock
from ..core.enums import (
    BalanceReason,
    MarginType,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    WorkingType,
)
from ..core.errors import ExchangeError
from ..core.events import (
    BalanceChanged,
    FundingApplied,
    KlineClosed,
    Liquidated,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    PositionChanged,
)
from ..core.rules import LeverageBrackets, SymbolRules
from .config import ExchangeConfig
from .orders import SimOrder

ZERO = Decimal(0)
ONE = Decimal(1)
_FEE_Q = Decimal("0.00000001")
_BPS = Decimal("0.0001")
_LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT)
_INF = float("inf")
_NEVER = 2**62


class _Position:
    __slots__ = ("entry", "entry_f", "leverage", "liq_f", "margin_type", "qty", "qty_f")

    def __init__(self, leverage: int) -> None:
        self.qty = ZERO
        self.entry = ZERO
        self.qty_f = 0.0
        self.entry_f = 0.0
        self.liq_f = 0.0  # 0: none
        self.leverage = leverage
        self.margin_type = MarginType.CROSSED


class _Book:
    """Everything the exchange keeps per symbol."""

    __slots__ = (
        "brackets", "busy", "last", "market", "next_funding", "pos", "resting", "rules", "symbol", "tiers",
        "watch_high", "watch_low",
    )  # fmt: skip

    def __init__(self, rules: SymbolRules, brackets: LeverageBrackets | None, leverage: int) -> None:
        self.symbol = rules.symbol
        self.rules = rules
        self.brackets = brackets
        self.last = 0.0
        self.market: list[SimOrder] = []  # waiting for the next price
        self.resting: list[SimOrder] = []  # limits and conditional orders
        self.pos = _Position(leverage)
        self.busy = False  # has orders waiting for a price
        # a kline needs processing only when it reaches one of these (liquidation, funding time)
        self.watch_low = -_INF
        self.watch_high = _INF
        self.next_funding = _NEVER
        # (notional cap, maintenance margin rate, cum) as floats, for the per-kline liquidation maths
        self.tiers: tuple[tuple[float, float, float], ...] = (
            tuple((float(b.notional_cap), float(b.maint_margin_ratio), float(b.cum)) for b in brackets.brackets)
            if brackets is not None
            else ((float("inf"), 0.005, 0.0),)
        )


def _dec(x: float) -> Decimal:
    """Exact decimal of a float price (``repr`` gives the shortest round-tripping digits)."""
    return Decimal(repr(float(x)))


def _money(x: Decimal) -> Decimal:
    return x.quantize(_FEE_Q)


class SimulatedExchange:
    """The futures account and matching model shared by backtests, the sandbox and tests."""

    def __init__(
        self,
        rules: Mapping[str, SymbolRules],
        brackets: Mapping[str, LeverageBrackets],
        *,
        clock: Clock,
        emit: Callable[[Any], None],
        config: ExchangeConfig | None = None,
        symbols: Iterable[str] | None = None,
    ) -> None:
        self.config = config or ExchangeConfig()
        self._clock = clock
        self._emit = emit
        self._rules = rules
        self._brackets = brackets
        self.wallet = self.config.initial_balance
        self._books: dict[str, _Book] = {}
        self._orders: dict[int, SimOrder] = {}
        self._by_client: dict[tuple[str, str], SimOrder] = {}
        self._next_order_id = 1_000_001
        self._next_trade_id = 1
        self.trades: list[dict[str, Any]] = []  # userTrades-shaped history
        self.income: list[dict[str, Any]] = []  # income-history-shaped records
        self._slip = self.config.slippage_bps * _BPS
        self._cross_positions = 0  # open positions sharing the cross wallet
        for symbol in symbols or ():
            self.book(symbol)

    # ------------------------------------------------------------------------------------ symbols
    def book(self, symbol: str) -> _Book:
        book = self._books.get(symbol)
        if book is None:
            rules = self._rules.get(symbol)
            if rules is None:
                raise ExchangeError(-1121, "Invalid symbol.")
            book = _Book(rules, self._brackets.get(symbol), self.config.default_leverage)
            self._books[symbol] = book
        return book

    @property
    def symbols(self) -> list[str]:
        return list(self._books)

    def rules(self, symbol: str) -> SymbolRules:
        return self.book(symbol).rules

    # --------------------------------------------------------------------------------- settings
    def set_leverage(self, symbol: str, leverage: int) -> Decimal:
        """Set a symbol's leverage; returns the max position notional it allows (-4028 if invalid)."""
        book = self.book(symbol)
        max_lev = book.brackets.max_leverage() if book.brackets else 125
        if not 1 <= leverage <= max_lev:
            raise ExchangeError(-4028, f"Leverage {leverage} is not valid")
        if book.brackets is not None:
            notional = abs(book.pos.qty) * Decimal(str(book.last or 0))
            cap = book.brackets.max_notional(leverage)
            if notional > cap:
                raise ExchangeError(-2027, "Exceeded the maximum allowable position at current leverage.")
        book.pos.leverage = leverage
        self._update_liquidation_prices()
        return book.brackets.max_notional(leverage) if book.brackets else Decimal("1000000000")

    def set_margin_type(self, symbol: str, margin_type: MarginType) -> None:
        book = self.book(symbol)
        if book.pos.margin_type is margin_type:
            raise ExchangeError(-4046, "No need to change margin type.")
        if margin_type is MarginType.ISOLATED:
            raise ExchangeError(-1130, "Isolated margin is not supported by the simulated exchange yet.")
        book.pos.margin_type = margin_type

    # --------------------------------------------------------------------------------- queries
    def get_order(self, symbol: str, order_id: int | None = None, client_order_id: str | None = None) -> SimOrder:
        order = self._find(symbol, order_id, client_order_id)
        if order is None:
            raise ExchangeError(-2013, "Order does not exist.")
        return order

    def open_orders(self, symbol: str | None = None, algo: bool | None = None) -> list[SimOrder]:
        books = [self.book(symbol)] if symbol else list(self._books.values())
        found = [o for b in books for o in (*b.market, *b.resting) if o.is_open]
        if algo is not None:  # a triggered conditional order has become a plain order
            found = [o for o in found if (o.is_algo and not o.triggered) == algo]
        return sorted(found, key=lambda o: o.order_id)

    def all_orders(self, symbol: str) -> list[SimOrder]:
        return [o for o in self._orders.values() if o.symbol == symbol]

    def position(self, symbol: str) -> tuple[Decimal, Decimal, int]:
        """(signed quantity, entry price, leverage)."""
        pos = self.book(symbol).pos
        return pos.qty, pos.entry, pos.leverage

    def last_price_float(self, symbol: str) -> float:
        """The latest price as a float (0.0 before the first); cheap, for account views."""
        book = self._books.get(symbol)
        return book.last if book is not None else 0.0

    def last_price(self, symbol: str) -> Decimal:
        book = self.book(symbol)
        return book.rules.round_price_nearest(_dec(book.last)) if book.last else ZERO

    def unrealized_pnl(self, symbol: str) -> Decimal:
        book = self.book(symbol)
        if book.pos.qty == 0 or not book.last:
            return ZERO
        return _money(book.pos.qty * (_dec(book.last) - book.pos.entry))

    def position_initial_margin(self, symbol: str) -> Decimal:
        book = self.book(symbol)
        return _money(abs(book.pos.qty) * _dec(book.last or 0) / book.pos.leverage)

    def maintenance_margin(self, symbol: str) -> Decimal:
        book = self.book(symbol)
        if book.pos.qty == 0:
            return ZERO
        notional = abs(book.pos.qty) * _dec(book.last or 0)
        if book.brackets is None:
            return _money(notional * Decimal("0.005"))
        return _money(max(ZERO, book.brackets.maintenance_margin(notional)))

    def open_order_initial_margin(self, symbol: str | None = None) -> Decimal:
        total = ZERO
        for order in self.open_orders(symbol):
            if (
                order.reduce_only
                or order.close_position
                or order.orig_type
                not in (
                    OrderType.LIMIT,
                    OrderType.MARKET,
                )
            ):
                continue
            book = self._books[order.symbol]
            price = order.price if order.price is not None else _dec(book.last or 0)
            total += price * order.remaining / book.pos.leverage
        return _money(total)

    def total_unrealized_pnl(self) -> Decimal:
        return sum((self.unrealized_pnl(s) for s in self._books), ZERO)

    def margin_balance(self) -> Decimal:
        return self.wallet + self.total_unrealized_pnl()

    def available_balance(self) -> Decimal:
        """Margin balance minus the initial margin of positions and of orders that add exposure."""
        available = self.wallet
        for b in self._books.values():
            pos = b.pos
            if pos.qty_f != 0.0 and b.last:
                last = _dec(b.last)
                available += _money(pos.qty * (last - pos.entry)) - _money(abs(pos.qty) * last / pos.leverage)
            for order in b.market or ():
                if order.is_open and not (order.reduce_only or order.close_position):
                    available -= _money(_dec(b.last or 0) * order.remaining / pos.leverage)
            for order in b.resting or ():
                if order.is_open and order.orig_type is OrderType.LIMIT and not order.reduce_only:
                    available -= _money(order.price * order.remaining / pos.leverage)  # type: ignore[operator]
        return available

    def liquidation_price(self, symbol: str) -> Decimal:
        liq = self.book(symbol).pos.liq_f
        return _dec(liq) if liq > 0 else ZERO

    # --------------------------------------------------------------------------------- orders
    def submit(
        self,
        *,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        trigger_price: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        reduce_only: bool = False,
        close_position: bool = False,
        working_type: WorkingType = WorkingType.CONTRACT_PRICE,
        client_order_id: str | None = None,
        algo: bool = False,
        good_till_date: int = 0,
    ) -> SimOrder:
        """Validate an order as Binance does and accept it, or raise :class:`ExchangeError`."""
        book = self.book(symbol)
        rules = book.rules
        now = self._clock.now_ms()
        if order_type is OrderType.TRAILING_STOP_MARKET:
            raise ExchangeError(-1116, "Invalid orderType.")  # not simulated: refused rather than never firing
        if order_type.is_conditional and not algo:
            raise ExchangeError(
                -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
            )
        if close_position and (quantity is not None or reduce_only):
            raise ExchangeError(-4137, "Quantity must be zero with closePosition equals true.")
        if close_position and order_type not in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
            raise ExchangeError(-1106, "Parameter 'closePosition' sent when not required.")
        if quantity is None and not close_position:
            raise ExchangeError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        if order_type in _LIMIT_TYPES and price is None:
            raise ExchangeError(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        if order_type.is_conditional and trigger_price is None:
            raise ExchangeError(-1102, "Mandatory parameter 'triggerPrice' was not sent, was empty/null, or malformed.")
        if order_type in _LIMIT_TYPES and time_in_force is None:
            time_in_force = TimeInForce.GTC
        # Binance rejects reuse of an id while the order is open; a finished id may be reused.
        previous = self._by_client.get((symbol, client_order_id)) if client_order_id is not None else None
        if previous is not None and previous.is_open:
            raise ExchangeError(-4116, "ClientOrderId is duplicated.")
        mark = _dec(book.last) if book.last else (price or trigger_price or ZERO)
        violation = rules.check_order(
            side=side,
            order_type=order_type,
            quantity=quantity,
            price=price,
            trigger_price=trigger_price,
            mark_price=mark,
            reduce_only=reduce_only or close_position,
            close_position=close_position,
        )
        if violation is not None:
            raise ExchangeError(violation.binance_code, violation.message)
        pos = book.pos
        nothing_to_reduce = pos.qty == 0 or (pos.qty > 0) == (side is Side.BUY)
        if reduce_only and not order_type.is_conditional and nothing_to_reduce:
            raise ExchangeError(-2022, "ReduceOnly Order is rejected.")
        open_count = sum(1 for o in (*book.market, *book.resting) if o.is_open)
        if rules.max_num_orders is not None and open_count >= rules.max_num_orders:
            raise ExchangeError(-2025, "Reach max open order limit.")
        assert quantity is not None or close_position
        if not (reduce_only or close_position) and quantity is not None:
            self._check_margin(book, side, quantity, price if order_type is OrderType.LIMIT else None)
        if client_order_id is None:
            client_order_id = f"sim-{self._next_order_id}"
        order = SimOrder(
            order_id=self._next_order_id,
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            order_type=order_type,
            quantity=quantity if quantity is not None else ZERO,
            price=price,
            trigger_price=trigger_price,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            close_position=close_position,
            working_type=working_type,
            is_algo=algo,
            time=now,
            good_till_date=good_till_date,
        )
        if order_type is OrderType.LIMIT and book.last:
            marketable = (side is Side.BUY and order.price_f >= book.last) or (
                side is Side.SELL and order.price_f <= book.last
            )
            if marketable and time_in_force is TimeInForce.GTX:
                raise ExchangeError(
                    -5022, "Due to the order could not be executed as maker, the Post Only order will be rejected."
                )
            if not marketable and time_in_force is TimeInForce.FOK:
                raise ExchangeError(
                    -5021, "Due to the order could not be filled immediately, the FOK order has been rejected."
                )
            order.is_taker_on_arrival = marketable
        self._next_order_id += 1
        self._orders[order.order_id] = order
        self._by_client[(symbol, client_order_id)] = order
        if order_type is OrderType.MARKET:
            book.market.append(order)
        else:
            book.resting.append(order)
        book.busy = True
        self._emit(
            OrderAccepted(
                client_order_id=order.client_order_id,
                order_id=order.order_id,
                symbol=symbol,
                side=side,
                order_type=order_type,
                quantity=quantity,
                price=price,
                trigger_price=trigger_price,
                reduce_only=reduce_only,
                close_position=close_position,
                ts_event=now,
                ts_init=now,
            )
        )
        if order_type is OrderType.MARKET and self.config.fill_market_immediately and book.last:
            self._fill_market_orders(book, book.last, now)
        return order

    def cancel(self, symbol: str, order_id: int | None = None, client_order_id: str | None = None) -> SimOrder:
        order = self._find(symbol, order_id, client_order_id)
        if order is None or not order.is_open:
            raise ExchangeError(-2011, "Unknown order sent.")
        self._finish(order, OrderStatus.CANCELED, "canceled by request")
        return order

    def cancel_all(self, symbol: str, algo: bool | None = None) -> list[SimOrder]:
        canceled = []
        for order in self.open_orders(symbol, algo):
            self._finish(order, OrderStatus.CANCELED, "cancel all")
            canceled.append(order)
        return canceled

    # --------------------------------------------------------------------------------- prices
    def on_bar(self, symbol: str, ts: int, o: float, h: float, low: float, c: float) -> None:
        """A kline (or the part of one since the last update): see the module docstring for the rule."""
        book = self._books[symbol]
        if book.busy or low <= book.watch_low or h >= book.watch_high or ts >= book.next_funding:
            self._process(book, ts, o, h, low)
        book.last = c
        if self._cross_positions > 1:
            self._update_liquidation_prices()

    def on_kline(self, k: KlineClosed) -> None:
        """Bus handler form of :meth:`on_bar` (one call less on the backtest's hot path)."""
        book = self._books[k.symbol]
        if book.busy or k.low <= book.watch_low or k.high >= book.watch_high or k.open_time >= book.next_funding:
            self._process(book, k.open_time, k.open, k.high, k.low)
        book.last = k.close
        if self._cross_positions > 1:  # other positions' PnL moves each one's liquidation price
            self._update_liquidation_prices()

    def on_tick(self, symbol: str, ts: int, price: float) -> None:
        self.on_bar(symbol, ts, price, price, price, price)

    # ------------------------------------------------------------------------------- internals
    def _find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> SimOrder | None:
        if order_id is not None:
            order = self._orders.get(order_id)
            return order if order is not None and order.symbol == symbol else None
        if client_order_id is not None:
            return self._by_client.get((symbol, client_order_id))
        raise ExchangeError(-1102, "Either orderId or origClientOrderId must be sent.")

    def _check_margin(self, book: _Book, side: Side, qty: Decimal, price: Decimal | None) -> None:
        ref = price if price is not None else _dec(book.last) if book.last else None
        if ref is None:
            return  # no price yet: nothing to measure against (only before the first kline)
        pos = book.pos
        signed = qty if side is Side.BUY else -qty
        # only the part that increases exposure needs margin
        after = pos.qty + signed
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            increase = qty
        else:
            increase = max(ZERO, qty - abs(pos.qty))
        if increase == 0:
            return
        if book.brackets is not None:
            cap = book.brackets.max_notional(pos.leverage)
            if abs(after) * ref > cap:
                raise ExchangeError(-2027, "Exceeded the maximum allowable position at current leverage.")
        needed = increase * ref / pos.leverage + increase * ref * self.config.taker_fee
        if needed > self.available_balance():
            raise ExchangeError(-2019, "Margin is insufficient.")

    def _process(self, book: _Book, ts: int, o: float, h: float, low: float) -> None:
        pos = book.pos
        # 1. at the open
        if ts >= book.next_funding:
            self._settle_funding(book, ts, o)
        if book.market:
            self._fill_market_orders(book, o, ts)
        if book.resting:
            self._trigger_at_open(book, ts, o)
        # 2. in the range: stops, liquidation, then take-profits and limits
        if book.resting:
            snapshot = list(book.resting)
            for order in snapshot:
                if order.is_open and order.is_stop and order.trigger_hit(h, low):
                    self._fire_conditional(book, order, order.trigger_f, ts)
        if low <= book.watch_low or h >= book.watch_high:
            self._liquidate(book, ts, min(o, pos.liq_f) if pos.qty_f > 0 else max(o, pos.liq_f))
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

    def _trigger_at_open(self, book: _Book, ts: int, o: float) -> None:
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

    def _fire_conditional(self, book: _Book, order: SimOrder, at: float, ts: int) -> None:
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

    def _taker_price(self, book: _Book, side: Side, at: float) -> Decimal:
        price = _dec(at)
        rules = book.rules
        if self._slip:
            price = price * (ONE + self._slip) if side is Side.BUY else price * (ONE - self._slip)
            tick = rules.tick_size
            if tick > 0:
                rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
                return ((price / tick).to_integral_value(rounding=rounding) * tick).quantize(tick)
            return price
        return rules.round_price_nearest(price)

    def _fill_market_orders(self, book: _Book, price: float, ts: int) -> None:
        orders, book.market = book.market, []
        for order in orders:
            if order.is_open:
                self._fill(book, order, order.remaining, self._taker_price(book, order.side, price), False, ts)
                if order.is_open:  # partially filled by the per-tick cap: wait for the next price
                    book.market.append(order)
        self._refresh(book)

    def _fill(self, book: _Book, order: SimOrder, qty: Decimal, price: Decimal, maker: bool, ts: int) -> None:
        pos = book.pos
        side_sign = 1 if order.side is Side.BUY else -1
        if order.reduce_only or order.close_position:
            reducible = abs(pos.qty) if (pos.qty > 0 and side_sign < 0) or (pos.qty < 0 and side_sign > 0) else ZERO
            if reducible == 0:
                self._finish(order, OrderStatus.EXPIRED, "reduce-only order with nothing to reduce")
                return
            qty = min(qty, reducible)
        cap = self.config.max_fill_qty.get(book.symbol)
        if cap is not None and qty > cap:
            qty = cap
        signed = qty if side_sign > 0 else -qty
        realized = ZERO
        old = pos.qty
        if old != 0 and (old > 0) != (signed > 0):
            closing = min(abs(old), qty)
            realized = (price - pos.entry) * closing if old > 0 else (pos.entry - price) * closing
        new = old + signed
        same_direction = old == 0 or (old > 0) == (signed > 0)
        if new == 0:
            pos.entry = ZERO
        elif same_direction:
            pos.entry = (abs(old) * pos.entry + qty * price) / abs(new)
        elif (old > 0) != (new > 0):
            pos.entry = price  # flipped: the remainder opened at this fill
        if old == 0 and new != 0:
            interval = self.config.funding_interval_ms
            book.next_funding = (ts // interval + 1) * interval
        elif new == 0:
            book.next_funding = _NEVER
        pos.qty = new
        pos.qty_f = float(new)
        pos.entry_f = float(pos.entry)
        rate = self.config.maker_fee if maker else self.config.taker_fee
        commission = _money(price * qty * rate)
        realized = _money(realized)
        self.wallet += realized - commission
        order.executed_qty += qty
        order.cum_quote += price * qty
        order.avg_price = order.cum_quote / order.executed_qty
        order.update_time = ts
        order.status = OrderStatus.FILLED if order.executed_qty >= order.quantity else OrderStatus.PARTIALLY_FILLED
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        self._record_trade(order, trade_id, qty, price, commission, realized, maker, ts)
        now = self._clock.now_ms()
        self._emit(
            OrderFilled(
                client_order_id=order.client_order_id,
                order_id=order.order_id,
                trade_id=trade_id,
                symbol=book.symbol,
                side=order.side,
                order_type=order.order_type,
                quantity=qty,
                price=price,
                commission=commission,
                realized_pnl=realized,
                is_maker=maker,
                status=order.status,
                reduce_only=order.reduce_only or order.close_position,
                liquidation=order.client_order_id.startswith("autoclose-"),
                ts_event=ts,
                ts_init=now,
            )
        )
        self._after_position_change(book, ts, realized - commission, BalanceReason.ORDER)
        if not order.is_open:
            self._remove(order)

    def _after_position_change(self, book: _Book, ts: int, change: Decimal, reason: BalanceReason) -> None:
        pos = book.pos
        now = self._clock.now_ms()
        self._update_liquidation_prices()
        self._emit(
            PositionChanged(
                symbol=book.symbol,
                quantity=pos.qty,
                entry_price=pos.entry,
                leverage=pos.leverage,
                ts_event=ts,
                ts_init=now,
            )
        )
        self._emit_balance(change, reason, ts, now)
        if pos.qty == 0:
            for order in list(book.resting):
                if order.is_open and (order.reduce_only or order.close_position):
                    self._finish(order, OrderStatus.EXPIRED, "position closed")
        elif pos.qty != 0:
            for order in list(book.resting) + list(book.market):
                if order.is_open and order.reduce_only and not order.close_position:
                    closing = (pos.qty > 0) == (order.side is Side.SELL)
                    if not closing:
                        self._finish(order, OrderStatus.EXPIRED, "reduce-only order would increase the position")
        self._refresh(book)

    def _emit_balance(self, change: Decimal, reason: BalanceReason, ts: int, now: int) -> None:
        self._emit(
            BalanceChanged(
                asset="USDT", wallet_balance=self.wallet, change=change, reason=reason, ts_event=ts, ts_init=now
            )
        )

    def _record_trade(
        self,
        order: SimOrder,
        trade_id: int,
        qty: Decimal,
        price: Decimal,
        fee: Decimal,
        rp: Decimal,
        maker: bool,
        ts: int,
    ) -> None:
        self.trades.append(
            {
                "id": trade_id,
                "orderId": order.order_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "price": price,
                "qty": qty,
                "quoteQty": price * qty,
                "commission": fee,
                "realizedPnl": rp,
                "maker": maker,
                "buyer": order.side is Side.BUY,
                "time": ts,
            }
        )
        if rp != 0:
            self._income(order.symbol, "REALIZED_PNL", rp, ts, str(trade_id))
        if fee != 0:
            self._income(order.symbol, "COMMISSION", -fee, ts, str(trade_id))

    def _income(self, symbol: str, kind: str, amount: Decimal, ts: int, info: str) -> None:
        self.income.append(
            {
                "symbol": symbol,
                "incomeType": kind,
                "income": amount,
                "asset": "USDT",
                "time": ts,
                "info": info,
                "tranId": len(self.income) + 1,
                "tradeId": info if kind != "FUNDING_FEE" else "",
            }
        )

    def _finish(self, order: SimOrder, status: OrderStatus, reason: str) -> None:
        order.status = status
        now = self._clock.now_ms()
        order.update_time = now
        self._remove(order)
        cls = OrderCanceled if status is OrderStatus.CANCELED else OrderExpired
        self._emit(
            cls(
                client_order_id=order.client_order_id,
                order_id=order.order_id,
                symbol=order.symbol,
                reason=reason,
                ts_event=now,
                ts_init=now,
            )
        )

    def _remove(self, order: SimOrder) -> None:
        book = self._books[order.symbol]
        for queue in (book.market, book.resting):
            if order in queue:
                queue.remove(order)
        self._refresh(book)

    @staticmethod
    def _refresh(book: _Book) -> None:
        book.busy = bool(book.market or book.resting)

    def _settle_funding(self, book: _Book, ts: int, mark: float) -> None:
        interval = self.config.funding_interval_ms
        funding_time = book.next_funding
        book.next_funding = (ts // interval + 1) * interval
        series = self.config.funding_rates.get(book.symbol)
        rate = series.get(funding_time, self.config.funding_rate) if series else self.config.funding_rate
        mark_d = book.rules.round_price_nearest(_dec(mark))
        amount = _money(-book.pos.qty * mark_d * rate)
        self.wallet += amount
        self._income(book.symbol, "FUNDING_FEE", amount, funding_time, "FUNDING_FEE")
        now = self._clock.now_ms()
        self._emit(
            FundingApplied(
                symbol=book.symbol,
                funding_rate=rate,
                mark_price=mark_d,
                position_quantity=book.pos.qty,
                amount=amount,
                ts_event=funding_time,
                ts_init=now,
            )
        )
        self._emit_balance(amount, BalanceReason.FUNDING_FEE, funding_time, now)
        self._update_liquidation_prices()

    def _liquidate(self, book: _Book, ts: int, at: float) -> None:
        pos = book.pos
        qty = pos.qty
        price = book.rules.round_price_nearest(_dec(at))
        order = SimOrder(
            order_id=self._next_order_id,
            client_order_id=f"autoclose-{self._next_order_id}",
            symbol=book.symbol,
            side=Side.SELL if qty > 0 else Side.BUY,
            order_type=OrderType.MARKET,
            quantity=abs(qty),
            price=None,
            trigger_price=None,
            time_in_force=TimeInForce.IOC,
            reduce_only=True,
            close_position=False,
            working_type=WorkingType.MARK_PRICE,
            is_algo=False,
            time=ts,
        )
        self._next_order_id += 1
        self._orders[order.order_id] = order
        wallet_before = self.wallet
        self._fill(book, order, abs(qty), price, False, ts)
        fee = _money(min(abs(qty) * price * book.rules.liquidation_fee, max(ZERO, self.wallet)))
        self.wallet -= fee
        if fee:
            self._income(book.symbol, "INSURANCE_CLEAR", -fee, ts, "liquidation")
        now = self._clock.now_ms()
        self._emit(
            Liquidated(
                symbol=book.symbol,
                quantity=qty,
                price=price,
                realized_pnl=self.wallet + fee - wallet_before,
                fee=fee,
                ts_event=ts,
                ts_init=now,
            )
        )
        self._emit_balance(-fee, BalanceReason.LIQUIDATION, ts, now)

    def _update_liquidation_prices(self) -> None:
        """Recompute every open position's liquidation price (cross margin, one-way; reference 9.3)."""
        books = self._books.values()
        open_books = [b for b in books if b.pos.qty_f != 0.0]
        self._cross_positions = len(open_books)
        for b in books:
            if b.pos.qty_f == 0.0:
                b.pos.liq_f = 0.0
                b.watch_low, b.watch_high = -_INF, _INF
        if not open_books:
            return
        wallet = float(self.wallet)
        mm_upnl: list[tuple[float, float]] = []
        for b in open_books:
            price = b.last or b.pos.entry_f
            mm_upnl.append((_mm(b.tiers, abs(b.pos.qty_f) * price), b.pos.qty_f * (price - b.pos.entry_f)))
        total_mm = sum(m for m, _ in mm_upnl)
        total_upnl = sum(u for _, u in mm_upnl)
        for b, (mm, upnl) in zip(open_books, mm_upnl):
            liq = _liquidation_price(b, wallet - (total_mm - mm) + (total_upnl - upnl))
            b.pos.liq_f = liq
            if b.pos.qty_f > 0:
                b.watch_low, b.watch_high = (liq if liq > 0 else -_INF), _INF
            else:
                b.watch_low, b.watch_high = -_INF, (liq if liq > 0 else _INF)


def _tier(tiers: tuple[tuple[float, float, float], ...], notional: float) -> tuple[float, float, float]:
    for tier in tiers:
        if notional < tier[0]:
            return tier
    return tiers[-1]


def _mm(tiers: tuple[tuple[float, float, float], ...], notional: float) -> float:
    _, rate, cum = _tier(tiers, notional)
    return notional * rate - cum


def _liquidation_price(book: _Book, margin: float) -> float:
    """Binance's one-way formula; the bracket is the one at the liquidation price (fixed point)."""
    pos = book.pos
    q = abs(pos.qty_f)
    side = 1.0 if pos.qty_f > 0 else -1.0
    _, mmr, cum = _tier(book.tiers, q * (book.last or pos.entry_f))
    lp = 0.0
    for _ in range(4):
        denom = q * mmr - side * q
        if denom == 0:
            return 0.0
        lp = (margin + cum - side * q * pos.entry_f) / denom
        if lp <= 0:
            break
        _, mmr2, cum2 = _tier(book.tiers, q * lp)
        if (mmr2, cum2) == (mmr, cum):
            break
        mmr, cum = mmr2, cum2
    return lp if lp > 0 else 0.0
