"""The exchange's own order record, mutable, with Binance's field meanings."""

from __future__ import annotations

from decimal import Decimal

from ..core.enums import OrderStatus, OrderType, Side, TimeInForce, WorkingType

ZERO = Decimal(0)

STOP_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP})
TAKE_PROFIT_TYPES = frozenset({OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT})


class SimOrder:
    """An order inside the simulated exchange. Not an event: it changes as it fills."""

    __slots__ = (
        "avg_price",
        "client_order_id",
        "close_position",
        "cum_quote",
        "executed_qty",
        "good_till_date",
        "is_algo",
        "is_taker_on_arrival",
        "modifications",
        "order_id",
        "order_type",
        "orig_type",
        "price",
        "price_f",
        "quantity",
        "reduce_only",
        "side",
        "status",
        "symbol",
        "time",
        "time_in_force",
        "trigger_f",
        "trigger_price",
        "triggered",
        "update_time",
        "working_type",
    )

    def __init__(
        self,
        *,
        order_id: int,
        client_order_id: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        trigger_price: Decimal | None,
        time_in_force: TimeInForce | None,
        reduce_only: bool,
        close_position: bool,
        working_type: WorkingType,
        is_algo: bool,
        time: int,
        good_till_date: int = 0,
    ) -> None:
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.orig_type = order_type
        self.quantity = quantity
        self.price = price
        self.price_f = float(price) if price is not None else 0.0
        self.trigger_price = trigger_price
        self.trigger_f = float(trigger_price) if trigger_price is not None else 0.0
        self.time_in_force = time_in_force
        self.reduce_only = reduce_only
        self.close_position = close_position
        self.working_type = working_type
        self.is_algo = is_algo
        self.status = OrderStatus.NEW
        self.executed_qty = ZERO
        self.cum_quote = ZERO
        self.avg_price = ZERO
        self.time = time
        self.update_time = time
        self.triggered = False
        self.is_taker_on_arrival = False
        self.good_till_date = good_till_date
        self.modifications = 0  # modify-order count (Binance allows 10000)

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status is OrderStatus.NEW or self.status is OrderStatus.PARTIALLY_FILLED

    @property
    def is_stop(self) -> bool:
        return self.orig_type in STOP_TYPES

    @property
    def is_take_profit(self) -> bool:
        return self.orig_type in TAKE_PROFIT_TYPES

    def trigger_hit(self, high: float, low: float) -> bool:
        """Has the traded range reached the trigger? Direction follows Binance's stop semantics."""
        if self.is_stop:  # BUY stop fires on a rise, SELL stop on a fall
            return high >= self.trigger_f if self.side is Side.BUY else low <= self.trigger_f
        # take-profit: BUY fires on a fall, SELL on a rise
        return low <= self.trigger_f if self.side is Side.BUY else high >= self.trigger_f

    def __repr__(self) -> str:
        return (
            f"SimOrder({self.order_id} {self.client_order_id} {self.symbol} {self.side} {self.orig_type} "
            f"qty={self.quantity} price={self.price} trigger={self.trigger_price} {self.status})"
        )
