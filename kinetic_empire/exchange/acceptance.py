"""Order acceptance in the simulated exchange: Binance's checks on a new order, in Binance's order, and
cancellation.

An accepted order is queued on its symbol's book (market orders wait for the next price, the rest
rest); a refused one raises :class:`~kinetic_empire.core.errors.ExchangeError` with Binance's code and
message, which the sandbox returns on the wire and the backtest broker turns into ``OrderRejected``.
"""

from __future__ import annotations

from decimal import Decimal

from ..core.enums import OrderStatus, OrderType, Side, TimeInForce, WorkingType
from ..core.errors import ExchangeError
from ..core.event_factories import new_order_accepted
from ..core.events import OrderAmended
from .book import ZERO, dec
from .matching import Matching
from .orders import SimOrder

_LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT)


class Acceptance(Matching):
    """Submit and cancel."""

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
        callback_rate: Decimal | None = None,
        activation_price: Decimal | None = None,
        rules_checked: bool = False,
    ) -> SimOrder:
        """Validate an order as Binance does and accept it, or raise :class:`ExchangeError`.

        ``rules_checked``: the caller (the backtest's broker, for an order the risk gate stamped) has run
        this symbol's ``SymbolRules.check_order`` on exactly these values, so the filter check is not
        repeated; every check of the account's state (duplicate id, reduce-only, open orders, margin) still
        runs. The sandbox's endpoints never pass it: what comes over the wire is always checked.
        """
        book = self._books.get(symbol) or self.book(symbol)
        rules = book.rules
        now = self._clock.now_ms()
        conditional = order_type.is_conditional
        trailing = order_type is OrderType.TRAILING_STOP_MARKET
        if trailing:
            check_trailing(callback_rate, close_position)
            trigger_price = None
        if conditional and not algo:
            raise ExchangeError(
                -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
            )
        if close_position:
            if quantity is not None or reduce_only:
                raise ExchangeError(-4137, "Quantity must be zero with closePosition equals true.")
            if order_type is not OrderType.STOP_MARKET and order_type is not OrderType.TAKE_PROFIT_MARKET:
                raise ExchangeError(-1106, "Parameter 'closePosition' sent when not required.")
        elif quantity is None:
            raise ExchangeError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        if order_type is not OrderType.MARKET:
            if order_type in _LIMIT_TYPES and price is None:
                raise ExchangeError(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
            if conditional and trigger_price is None and not trailing:
                raise ExchangeError(
                    -1102, "Mandatory parameter 'triggerPrice' was not sent, was empty/null, or malformed."
                )
            if order_type in _LIMIT_TYPES and time_in_force is None:
                time_in_force = TimeInForce.GTC
        # Binance rejects reuse of an id while the order is open; a finished id may be reused.
        previous = self._by_client.get((symbol, client_order_id)) if client_order_id is not None else None
        if previous is not None and previous.is_open:
            raise ExchangeError(-4116, "ClientOrderId is duplicated.")
        if rules_checked:
            pass
        elif order_type is OrderType.MARKET and price is None and trigger_price is None and not close_position:
            # check_order's checks for such an order, without the ones that cannot apply (the same answer)
            violation = rules.check_market_order(
                quantity, ZERO if reduce_only else dec(book.last) if book.last else ZERO, reduce_only  # type: ignore[arg-type]
            )
            if violation is not None:
                raise ExchangeError(violation.binance_code, violation.message)
        else:
            mark = dec(book.last) if book.last else (price or trigger_price or ZERO)
            violation = rules.check_order(
                side=side,
                order_type=order_type,
                quantity=quantity,
                price=price,
                trigger_price=activation_price if trailing else trigger_price,
                mark_price=mark,
                reduce_only=reduce_only or close_position,
                close_position=close_position,
            )
            if violation is not None:
                raise ExchangeError(violation.binance_code, violation.message)
        if reduce_only and not conditional:
            pos_qty = book.pos.qty
            if pos_qty == 0 or (pos_qty > 0) == (side is Side.BUY):  # nothing to reduce
                raise ExchangeError(-2022, "ReduceOnly Order is rejected.")
        max_orders = rules.max_num_orders
        if max_orders is not None and sum(1 for o in (*book.market, *book.resting) if o.is_open) >= max_orders:
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
            callback_rate=callback_rate if trailing else None,
            activation_price=activation_price if trailing else None,
        )
        if trailing:
            order.arm_trailing(book.last)
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
        self._emit(new_order_accepted(order.client_order_id, order.order_id, symbol, side, order_type, quantity, price,
                                      trigger_price, reduce_only, close_position, now, now))
        if order_type is OrderType.MARKET and self.config.fill_market_immediately and book.last:
            self._fill_market_orders(book, book.last, now)
        return order

    def amend(self, symbol: str, *, side: Side, quantity: Decimal, price: Decimal, order_id: int | None = None,
              client_order_id: str | None = None) -> SimOrder:
        """Binance's modify order: a resting LIMIT order gets a new price and quantity, keeping its ids.

        Refusals leave the order as it was (-2013 unknown or finished, -5025 not a LIMIT, -5027 nothing
        changes, -5026 after 10000 modifications, the filters' codes, -5029 under the minimum notional).
        As on Binance, the order is canceled instead when the new quantity is not above what has already
        filled, or when a post-only (GTX) order's new price would trade at once.
        """
        order = self._find(symbol, order_id, client_order_id)
        if order is None or not order.is_open:
            raise ExchangeError(-2013, "Order does not exist.")
        if order.order_type is not OrderType.LIMIT or order.is_algo:
            raise ExchangeError(-5025, "Only limit order is supported.")
        if side is not order.side:
            raise ExchangeError(-1130, "Data sent for parameter 'side' is not valid.")
        if quantity == order.quantity and price == order.price:
            raise ExchangeError(-5027, "No need to modify the order.")
        if order.modifications >= 10_000:
            raise ExchangeError(-5026, "Exceed maximum modify order limit.")
        book = self.book(symbol)
        mark = dec(book.last) if book.last else price
        violation = book.rules.check_order(side=side, order_type=OrderType.LIMIT, quantity=quantity, price=price,
                                           trigger_price=None, mark_price=mark, reduce_only=order.reduce_only,
                                           close_position=False)
        if violation is not None:
            if violation.binance_code == -4164:
                raise ExchangeError(-5029, f"Order's notional must be no smaller than {book.rules.min_notional}")
            raise ExchangeError(violation.binance_code, violation.message)
        now = self._clock.now_ms()
        marketable = bool(book.last) and ((side is Side.BUY and float(price) >= book.last)
                                          or (side is Side.SELL and float(price) <= book.last))
        if quantity <= order.executed_qty or (marketable and order.time_in_force is TimeInForce.GTX):
            self._finish(order, OrderStatus.CANCELED, "modified below the executed quantity or into a taker")
            return order
        if not order.reduce_only and quantity > order.quantity:
            self._check_margin(book, side, quantity - order.quantity, price)
        order.quantity = quantity
        order.price = price
        order.price_f = float(price)
        order.is_taker_on_arrival = marketable
        order.update_time = now
        order.modifications += 1
        book.busy = True
        self._emit(OrderAmended(client_order_id=order.client_order_id, order_id=order.order_id, symbol=symbol,
                                quantity=quantity, price=price, ts_event=now, ts_init=now))
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


_CALLBACK_MIN, _CALLBACK_MAX, _CALLBACK_STEP = Decimal("0.1"), Decimal("10"), Decimal("0.1")


def check_trailing(callback_rate: Decimal | None, close_position: bool) -> None:
    """Binance's TRAILING_STOP_MARKET parameters: a callback rate from 0.1 to 10 percent in steps of 0.1
    (-2007 otherwise), a quantity (no closePosition)."""
    if callback_rate is None:
        raise ExchangeError(-1102, "Mandatory parameter 'callbackRate' was not sent, was empty/null, or malformed.")
    if not _CALLBACK_MIN <= callback_rate <= _CALLBACK_MAX or callback_rate % _CALLBACK_STEP:
        raise ExchangeError(-2007, "Invalid callBack rate.")
    if close_position:
        raise ExchangeError(-1106, "Parameter 'closePosition' sent when not required.")
