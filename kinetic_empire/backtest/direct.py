"""The backtest's order path handing three events straight to their only readers.

An order on the backtest's fused path (:mod:`kinetic_empire.risk.fast_path`, :mod:`kinetic_empire.exchange.fast_fill`)
publishes an ``OrderRequest`` that only the portfolio and the simulated broker read, an ``OrderAccepted`` that only
the portfolio and the risk gate read (and the gate only while a moved stop waits for it), and, per fill, a
``BalanceChanged`` that only the portfolio reads. Building each event and running the bus's delivery loop for
two readers cost more than what the readers do with it. So while the bus's subscribers of such an event are
exactly those readers, in that order, :class:`DirectFeeds` calls them itself, in the bus's order, with what
the event would carry (the portfolio's ``market_accepted`` and ``wallet_changed`` are its handlers' own steps
for that shape of event). The check is against the bus itself: whenever its subscriptions change (a strategy,
a recorder or a report subscribing to one of these events), the routes are looked at again, and anything
else subscribed means the event is published as before. Only a backtest wires it; the results are the same
either way (tests/unit/test_fused_order_path.py runs with and without an extra subscriber).
"""

from __future__ import annotations

from decimal import Decimal

from ..core.bus import EventBus
from ..core.enums import OrderType, Side
from ..core.event_factories import new_order_accepted
from ..core.events import BalanceChanged, OrderAccepted, OrderRequest
from ..exchange.broker import SimulatedBroker
from ..exchange.simulated import SimulatedExchange
from ..portfolio import Portfolio
from ..risk import RiskManager

_MARKET = OrderType.MARKET


class DirectFeeds:
    """Delivers order requests, market acceptances and fill balances without the bus while it may (see above)."""

    __slots__ = (
        "_accepted_ok",
        "_balance_ok",
        "_broker",
        "_bus",
        "_changes",
        "_portfolio",
        "_publish",
        "_request_ok",
        "_risk",
        "_routes",
        "_seen",
    )  # fmt: skip

    def __init__(self, bus: EventBus, portfolio: Portfolio, risk: RiskManager, broker: SimulatedBroker) -> None:
        self._bus = bus
        self._publish = bus.publish
        self._changes = bus.changes
        self._seen = -1
        self._portfolio = portfolio
        self._risk = risk
        self._broker = broker
        # what each route must be, exactly, for the direct call to be what the bus would do
        self._routes = ((portfolio._on_request, broker.on_request), (portfolio._on_accepted, risk.accepted_handler),
                        (portfolio._on_balance,))  # fmt: skip
        self._request_ok = self._accepted_ok = self._balance_ok = False

    def attach(self, exchange: SimulatedExchange) -> None:
        """Wire into the risk gate and the exchange's fused path (``use_fused_orders`` first)."""
        fused = exchange._fused
        if fused is None:
            raise ValueError("DirectFeeds needs the exchange's fused order path (use_fused_orders)")
        self._risk.send_requests_with(self.request)
        fused.accepted = self.accepted
        fused.balance = self.balance if self._portfolio.asset == "USDT" else None

    def _look(self) -> None:
        """The bus's subscriptions changed (or were never looked at): which events may go direct now."""
        bus = self._bus
        request, accepted, balance = self._routes
        self._request_ok = bus.handlers(OrderRequest) == request
        self._accepted_ok = bus.handlers(OrderAccepted) == accepted
        self._balance_ok = bus.handlers(BalanceChanged) == balance
        self._seen = self._changes[0]

    def request(self, request: OrderRequest) -> None:
        """The risk gate's ``bus.publish(request)``."""
        if self._changes[0] != self._seen:
            self._look()
        if not self._request_ok:
            self._publish(request)
            return
        self._portfolio._on_request(request)
        self._broker.on_request(request)

    def accepted(self, cid: str, order_id: int, symbol: str, side: Side, quantity: Decimal, reduce_only: bool,
                 ts: int) -> bool:
        """An accepted MARKET order's ``OrderAccepted`` delivered (True), or False: publish it."""
        if self._changes[0] != self._seen:
            self._look()
        if not self._accepted_ok:
            return False
        self._portfolio.market_accepted(cid, symbol, side, quantity, ts)
        risk = self._risk
        if risk.moves_pending():
            risk.accepted_handler(new_order_accepted(cid, order_id, symbol, side, _MARKET, quantity, None, None,
                                                     reduce_only, False, ts, ts))  # fmt: skip
        return True

    def balance(self, wallet: Decimal, change: Decimal, ts: int, now: int) -> bool:
        """A fill's ``BalanceChanged`` of USDT delivered (True), or False: publish it."""
        if self._changes[0] != self._seen:
            self._look()
        if not self._balance_ok:
            return False
        self._portfolio.wallet_changed(wallet, ts)
        return True


__all__ = ["DirectFeeds"]
