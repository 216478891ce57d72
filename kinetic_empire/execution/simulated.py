"""The backtest execution port: order requests from the bus go to the in-process simulated exchange.

Its twin for live runs is the Binance adapter; both take :class:`OrderRequest` / :class:`CancelRequest`
from the bus and put the exchange's answers back on it, so nothing above them can tell them apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable

from ..core.bus import EventBus
from ..core.clock import Clock
from ..core.errors import ExchangeError
from ..core.events import CancelRequest, KlineClosed, OrderRejected, OrderRequest
from ..exchange.simulated import SimulatedExchange


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
        for topic in price_topics:
            bus.subscribe(KlineClosed, exchange.on_kline, topic=topic)

    def on_request(self, r: OrderRequest) -> None:
        try:
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
            )
        except ExchangeError as exc:
            now = self._clock.now_ms()
            self._bus.publish(
                OrderRejected(
                    client_order_id=r.client_order_id,
                    symbol=r.symbol,
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
