"""The backtest execution port: order requests from the bus go to the in-process simulated exchange.

Its twin for live runs is the Binance adapter; both take :class:`OrderRequest` / :class:`CancelRequest` /
:class:`CancelAllRequest` from the bus and put the exchange's answers back on it, so nothing above them
can tell them apart. Both implement :class:`~kinetic_empire.core.ports.ExecutionPort`; one contract suite
holds them to the same behaviour.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable
from decimal import Decimal

from ..core.bus import EventBus
from ..core.clock import Clock
from ..core.enums import OrderType, Side, WorkingType
from ..core.errors import ExchangeError
from ..core.events import CancelAllRequest, CancelRequest, KlineClosed, OrderRejected, OrderRequest
from ..core.ports import VenueBalance, VenueOrder, VenuePosition
from .fast_fill import accept_market
from .orders import SimOrder
from .simulated import SimulatedExchange

_MARKET, _CONTRACT = OrderType.MARKET, WorkingType.CONTRACT_PRICE
DUPLICATE_CLIENT_ID = -4116
UNKNOWN_ORDER = -2013


class SimulatedBroker:
    """Routes requests to a :class:`SimulatedExchange` and drives it with the execution klines."""

    def __init__(
        self, bus: EventBus, exchange: SimulatedExchange, clock: Clock, price_topics: Iterable[Hashable]
    ) -> None:
        self._bus = bus
        self._exchange = exchange
        self._clock = clock
        bus.subscribe(OrderRequest, self.on_request)
        bus.subscribe(CancelRequest, self.on_cancel)
        bus.subscribe(CancelAllRequest, self.on_cancel_all)
        for topic in price_topics:
            bus.subscribe(KlineClosed, exchange.on_kline, topic=topic)

    # ------------------------------------------------------------------------------ bus handlers
    def on_request(self, r: OrderRequest) -> None:
        try:
            fused = self._exchange._fused
            if fused is not None and r.order_type is _MARKET and r.rules_checked and r.price is None \
                    and r.trigger_price is None and r.quantity is not None and not r.close_position \
                    and r.time_in_force is None and r.working_type is _CONTRACT:  # (backtests: exchange.fast_fill)
                accept_market(self._exchange, fused, r.symbol, r.side, r.quantity, r.reduce_only, r.client_order_id)
                return
            self._exchange.submit(
                symbol=r.symbol,
                side=r.side,
                order_type=r.order_type,
                quantity=r.quantity,
                price=r.price,
                trigger_price=r.trigger_price,
                time_in_force=r.time_in_force,
                reduce_only=r.reduce_only,
                close_position=r.close_position,
                working_type=r.working_type,
                client_order_id=r.client_order_id,
                algo=r.order_type.is_conditional,
                callback_rate=r.callback_rate,
                activation_price=r.activation_price,
                rules_checked=r.rules_checked,  # the gate checked the filters against these same rules
            )
        except ExchangeError as exc:
            self._refused(exc, r.client_order_id, r.symbol)

    def market_request(self, symbol: str, side: Side, quantity: Decimal, reduce_only: bool,
                       client_order_id: str) -> None:
        """:meth:`on_request` of a plain MARKET request the risk gate checked (``rules_checked``, no price, trigger,
        time in force or close-position, the contract price) on an exchange with the fused path (a backtest's
        direct delivery: :mod:`kinetic_empire.backtest.direct`)."""
        try:
            fused = self._exchange._fused
            assert fused is not None, "market_request needs the exchange's fused order path (use_fused_orders)"
            accept_market(self._exchange, fused, symbol, side, quantity, reduce_only, client_order_id)
        except ExchangeError as exc:
            self._refused(exc, client_order_id, symbol)

    def _refused(self, exc: ExchangeError, client_order_id: str, symbol: str) -> None:
        if exc.code == DUPLICATE_CLIENT_ID:
            return  # the order with this id is open: the request was placed already (as Binance's port says)
        now = self._clock.now_ms()
        self._bus.publish(
            OrderRejected(
                client_order_id=client_order_id,
                symbol=symbol,
                code=exc.code,
                reason=exc.msg,
                ts_event=now,
                ts_init=now,
            )
        )

    def on_cancel(self, r: CancelRequest) -> None:
        # already filled, canceled or expired: the exchange has said so with its own event
        with contextlib.suppress(ExchangeError):
            self._exchange.cancel(r.symbol, client_order_id=r.client_order_id)

    def on_cancel_all(self, r: CancelAllRequest) -> None:
        self._exchange.cancel_all(r.symbol)

    # ------------------------------------------------------------------------------ the port's verbs
    async def submit(self, r: OrderRequest) -> None:
        self.on_request(r)

    async def cancel(self, symbol: str, client_id: str) -> bool:
        try:
            self._exchange.cancel(symbol, client_order_id=client_id)
        except ExchangeError:
            return False
        return True

    async def cancel_all(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            self._exchange.cancel_all(symbol)

    async def query_order(self, symbol: str, client_id: str) -> VenueOrder | None:
        try:
            order = self._exchange.get_order(symbol, client_order_id=client_id)
        except ExchangeError as exc:
            if exc.code in (UNKNOWN_ORDER, -1121):
                return None
            raise
        return venue_order(order)

    async def positions(self) -> list[VenuePosition]:
        out = []
        for symbol in self._exchange.symbols:
            qty, entry, leverage = self._exchange.position(symbol)
            if qty != 0:
                out.append(VenuePosition(symbol=symbol, quantity=qty, entry_price=entry, leverage=leverage))
        return out

    async def balances(self) -> list[VenueBalance]:
        ex = self._exchange
        return [VenueBalance(asset="USDT", wallet=ex.wallet, available=ex.available_balance())]


def venue_order(order: SimOrder) -> VenueOrder:
    return VenueOrder(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        order_type=order.orig_type,
        status=order.status,
        quantity=order.quantity,
        filled=order.executed_qty,
        price=order.price,
        trigger_price=order.trigger_price,
    )


__all__ = ["SimulatedBroker", "venue_order"]
