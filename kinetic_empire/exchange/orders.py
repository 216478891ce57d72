"""The exchange's own order record, mutable, with Binance's field meanings."""

from __future__ import annotations

from decimal import Context, Decimal

from ..core.enums import OrderStatus, OrderType, Side, TimeInForce, WorkingType

ZERO = Decimal(0)

STOP_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP, OrderType.TRAILING_STOP_MARKET})
TAKE_PROFIT_TYPES = frozenset({OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT})


class SimOrder:
    """An order inside the simulated exchange. Not an event: it changes as it fills."""

    __slots__ = (
        "_avg",
        "activated",
        "activation_price",
        "callback_f",
        "callback_rate",
        "client_order_id",
        "close_position",
        "cum_quote",
        "executed_qty",
        "extreme_f",
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
        callback_rate: Decimal | None = None,
        activation_price: Decimal | None = None,
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
        self._avg: Decimal | Context = ZERO
        self.time = time
        self.update_time = time
        self.triggered = False
        self.is_taker_on_arrival = False
        self.good_till_date = good_till_date
        self.modifications = 0  # modify-order count (Binance allows 10000)
        # TRAILING_STOP_MARKET: callback rate (percent), activation price, and once armed the best price since
        self.callback_rate = callback_rate
        self.callback_f = float(callback_rate) / 100.0 if callback_rate is not None else 0.0
        self.activation_price = activation_price
        self.activated = False
        self.extreme_f = 0.0

    @property
    def avg_price(self) -> Decimal:
        """The average fill price, ``cum_quote / executed_qty`` after a fill (zero before any). The backtest's fused
        fill (:mod:`.fast_fill`) leaves that division to the first read: it stores the decimal context the run
        computes in (a copy, made with the exchange's fused state), and the quotient is made in it when asked."""
        avg = self._avg
        if type(avg) is Context:
            avg = self._avg = avg.divide(self.cum_quote, self.executed_qty)
        return avg  # type: ignore[return-value]

    @avg_price.setter
    def avg_price(self, value: Decimal) -> None:
        self._avg = value

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
        if self.callback_f:
            return self._trail(high, low)
        if self.is_stop:  # BUY stop fires on a rise, SELL stop on a fall
            return high >= self.trigger_f if self.side is Side.BUY else low <= self.trigger_f
        # take-profit: BUY fires on a fall, SELL on a rise
        return low <= self.trigger_f if self.side is Side.BUY else high >= self.trigger_f

    def arm_trailing(self, last: float) -> None:
        """At placement: armed at once when the last price is already at the activation price (Binance's
        default activation price is the last price), with the last price as the best price so far."""
        act = float(self.activation_price) if self.activation_price is not None else last
        if last and ((last >= act) if self.side is Side.SELL else (last <= act)):
            self.activated = True
            self.extreme_f = last
            self.trigger_f = self._level()

    def _level(self) -> float:
        return self.extreme_f * (1.0 - self.callback_f) if self.side is Side.SELL else self.extreme_f * (
            1.0 + self.callback_f)

    def _trail(self, high: float, low: float) -> bool:
        """One price range, adverse side first (at the open both are the open): the range is tested against the
        level from before it, then its favourable extreme (reached after the activation, if that happens in it)
        moves the level. A hit leaves the fire price in ``trigger_f``."""
        sell = self.side is Side.SELL
        if self.activated and (low <= self.trigger_f if sell else high >= self.trigger_f):
            return True
        self._follow(high if sell else low)
        return False

    def _follow(self, best: float) -> None:
        """A favourable price: arms the order when it reaches the activation price, moves the best price."""
        sell = self.side is Side.SELL
        if not self.activated:
            act = float(self.activation_price) if self.activation_price is not None else best
            if not ((best >= act) if sell else (best <= act)):
                return
            self.activated = True
            self.extreme_f = best
        elif (best > self.extreme_f) if sell else (best < self.extreme_f):
            self.extreme_f = best
        self.trigger_f = self._level()

    def trail_path(self, o: float, high: float, low: float, c: float) -> bool:
        """A trailing stop over one kline (or sandbox segment) along the replay path: low then high when it
        closed up, high then low when it closed down, then the close. Favourable extremes move the level,
        adverse ones and the close are tested against it (a hit fires at the level, ``trigger_f``). Walking
        a kline in one step or in the sandbox's segments gives the same result."""
        sell = self.side is Side.SELL
        for p in ((low, high, c) if c >= o else (high, low, c)):
            if sell:
                if self.activated and p <= self.trigger_f:
                    return True
                if p == high:
                    self._follow(p)
            else:
                if self.activated and p >= self.trigger_f:
                    return True
                if p == low:
                    self._follow(p)
        return False

    def __repr__(self) -> str:
        return (
            f"SimOrder({self.order_id} {self.client_order_id} {self.symbol} {self.side} {self.orig_type} "
            f"qty={self.quantity} price={self.price} trigger={self.trigger_price} {self.status})"
        )
