"""The backtest's order path handing its events straight to their readers.

An order on the backtest's fused path (:mod:`kinetic_empire.risk.fast_path`, :mod:`kinetic_empire.exchange.fast_fill`)
publishes an ``OrderRequest`` that only the portfolio and the simulated broker read, an ``OrderAccepted`` that only
the portfolio and the risk gate read (and the gate only while a moved stop waits for it), and, per fill, an
``OrderFilled`` read by the portfolio, the risk gate, the strategy runners and the exits in flight, a
``PositionChanged`` read by the portfolio, the risk gate and the runners, and a ``BalanceChanged`` that only the
portfolio reads. Building each event and running the bus's delivery loop cost more than what most readers do
with it, and every runner hears every fill while only those of the fill's symbol act on it. So while the bus's
subscribers of such an event are exactly those readers, in that order, :class:`DirectFeeds` calls them itself,
in the bus's order, with what the event would carry (the field-taking handlers: ``Portfolio.market_accepted``,
``market_filled``, ``position_changed``, ``wallet_changed``, ``RiskManager.position_changed``,
``ExitsInFlight.filled``, ``StrategyRunner.fill_without_event`` and ``position_of_symbol``, each its bus handler's own
steps for that shape of event), skipping the runners of other symbols (their handlers do nothing with it) and
making the ``OrderFilled`` only for a reader that needs the object (a strategy's ``on_fill``, a loss streak,
protective orders being tracked); a fill's position and balance changes, due one after the other, go in one call
(:meth:`DirectFeeds.settled`), and a time just read from the one replay clock is handed on. The check is against
the bus itself: whenever its subscriptions change (a
strategy, a recorder or a report subscribing to one of these events), the routes are looked at again, and
anything else subscribed means the event is published as before. A handler's failure is raised as the bus
would raise it. A handler overridden in a subclass or patched is not what the copy does: its events are
published. Only a backtest wires it; the results are the same either way (tests/unit/test_fused_order_path.py
runs with and without an extra subscriber).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..core.bus import EventBus
from ..core.clock import ReplayClock
from ..core.enums import BalanceReason, OrderStatus, OrderType, Side
from ..core.errors import ExchangeError, HandlerError, StrategyError
from ..core.event_factories import new_balance_changed, new_order_accepted, new_order_filled, new_position_changed
from ..core.events import BalanceChanged, OrderAccepted, OrderFilled, OrderIntent, OrderRequest, PositionChanged
from ..exchange import broker as _broker
from ..exchange.book import BookPosition
from ..exchange.broker import SimulatedBroker
from ..exchange.orders import SimOrder
from ..exchange.simulated import SimulatedExchange
from ..portfolio import Portfolio
from ..risk import RiskManager
from ..risk.exits import ExitsInFlight
from ..risk.fast_path import Plain, request_of
from ..strategy.base import FLAT, Position
from ..strategy.runner import StrategyRunner

_MARKET = OrderType.MARKET
_Runners = dict[str, tuple[StrategyRunner, ...]]


# the bus handlers whose steps the field-taking handlers copy: an override (a subclass, a patched method) is not
# what the copy does, so its events are published
_OWN_PORTFOLIO = {name: getattr(Portfolio, name) for name in ("_on_intent", "_on_request", "_on_accepted",
                                                              "_on_filled", "_on_position", "_on_balance")}  # fmt: skip
_OWN_BROKER_REQUEST = SimulatedBroker.on_request
_OWN_MARKET_REQUEST = SimulatedBroker.market_request
_OWN_RISK_POSITION = RiskManager._on_position
_OWN_EXITS_FILL = ExitsInFlight.on_fill


def _own(obj: object, name: str, original: Callable[..., Any]) -> bool:
    return getattr(type(obj), name, None) is original


def _runners(handlers: tuple[Callable[[Any], None], ...], method: str) -> tuple[StrategyRunner, ...] | None:
    """The runners whose ``method`` these handlers are (each a plain runner's own), or None if any is not."""
    base = getattr(StrategyRunner, method)
    found = []
    for h in handlers:
        runner = getattr(h, "__self__", None)
        if not isinstance(runner, StrategyRunner) or getattr(h, "__func__", None) is not base \
                or type(runner).fill_without_event is not StrategyRunner.fill_without_event \
                or type(runner).position_of_symbol is not StrategyRunner.position_of_symbol:
            return None
        found.append(runner)
    return tuple(found)


def _by_symbol(runners: tuple[StrategyRunner, ...]) -> _Runners:
    """Each symbol's runners, in the bus's order (a runner acts only on its own symbol's fills and positions)."""
    out: _Runners = {}
    for r in runners:
        out[r.symbol] = (*out.get(r.symbol, ()), r)
    return out


class _WritablePosition:
    """A writable class with exactly :class:`Position`'s slots: filled with plain stores, then re-labelled (the frozen
    dataclass's ``__init__`` stores through ``object.__setattr__``, a third of a microsecond each; one is made per
    fill)."""

    __slots__ = ("entry_price", "size")


def _position(size: float, entry: float) -> Position:
    """``Position(size, entry)``, built cheaply (an equal, as frozen, instance)."""
    p: Any = _WritablePosition()
    p.size = size
    p.entry_price = entry
    p.__class__ = Position
    return p


if Position.__slots__ != ("size", "entry_price"):  # (what _WritablePosition copies)
    raise TypeError("Position's fields changed: update backtest.direct._position")


def _fill_event(order: SimOrder, trade_id: int, qty: Decimal, price: Decimal, commission: Decimal, realized: Decimal,
                status: OrderStatus, ts: int, now: int) -> OrderFilled:
    """The ``OrderFilled`` the fused fill would publish (a MARKET order's taker fill, no liquidation)."""
    return new_order_filled(order.client_order_id, order.order_id, trade_id, order.symbol, order.side, order.order_type,
                            qty, price, commission, realized, False, status, order.reduce_only, False, ts, now)


class DirectFeeds:
    """Delivers an order's events without the bus while it may (see above)."""

    __slots__ = (
        "_accepted_ok",
        "_balance_ok",
        "_broker",
        "_bus",
        "_changes",
        "_exchange",
        "_exits",
        "_exits_hear",
        "_fields_ok",
        "_fill_runners",
        "_fused",
        "_intent_ok",
        "_intents",
        "_market_own",
        "_one_clock",
        "_portfolio",
        "_position_runners",
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
        self._exits = risk.exits
        self._broker = broker
        # what each route must be, exactly, for the direct call to be what the bus would do
        self._routes = ((portfolio._on_request, broker.on_request), (portfolio._on_accepted, risk.accepted_handler),
                        (portfolio._on_balance,))  # fmt: skip
        self._intents = (portfolio._on_intent, risk.on_intent)
        self._request_ok = self._fields_ok = self._accepted_ok = self._balance_ok = self._exits_hear = False
        self._intent_ok = self._market_own = self._one_clock = False
        self._fill_runners: _Runners | None = None  # None: publish fills
        self._exchange: Any = None  # the exchange and its fused path's state (attach)
        self._fused: Any = None
        self._position_runners: _Runners | None = None  # None: publish position changes

    def attach(self, exchange: SimulatedExchange) -> None:
        """Wire into the risk gate and the exchange's fused path (``use_fused_orders`` first)."""
        fused = exchange._fused
        if fused is None:
            raise ValueError("DirectFeeds needs the exchange's fused order path (use_fused_orders)")
        self._risk.send_requests_with(self.request, self.request_fields)
        self._risk.share_prices(fused.prices)  # (the reference closes the gate converts are mostly the next opens)
        self._exchange = exchange
        self._fused = fused
        # the gate's and the exchange's clock are one replay clock: a time one read stands until the feed moves it,
        # so a time read in the same delivery is handed on instead of read again
        clock = exchange._clock
        self._one_clock = type(clock) is ReplayClock and self._risk._clock is clock
        fused.accepted = self.accepted
        for handler in self._bus.handlers(OrderFilled):  # (every runner hears fills: that is how they are found)
            runner = getattr(handler, "__self__", None)
            if isinstance(runner, StrategyRunner):
                runner.send_intent = self.intent
        usdt = self._portfolio.asset == "USDT"  # (fills and balances are in USDT: the portfolio books its asset's)
        fused.balance = self.balance if usdt else None
        fused.filled = self.filled if usdt else None
        fused.position = self.position
        fused.settled = self.settled if usdt else None

    def _look(self) -> None:
        """The bus's subscriptions changed (or were never looked at): which events may go direct now."""
        bus = self._bus
        request, accepted, balance = self._routes
        portfolio, risk = self._portfolio, self._risk
        plain = bus.stops_on_error  # (a bus that goes on after a failing handler: always publish)
        own = {name: _own(portfolio, name, f) for name, f in _OWN_PORTFOLIO.items()}
        self._intent_ok = plain and own["_on_intent"] and bus.handlers(OrderIntent) == self._intents
        self._request_ok = plain and bus.handlers(OrderRequest) == request
        self._fields_ok = self._request_ok and own["_on_request"] \
            and _own(self._broker, "on_request", _OWN_BROKER_REQUEST)  # (request_fields copies both)
        self._market_own = _own(self._broker, "market_request", _OWN_MARKET_REQUEST)  # (written out while its own)
        self._accepted_ok = plain and own["_on_accepted"] and bus.handlers(OrderAccepted) == accepted
        self._balance_ok = plain and own["_on_balance"] and bus.handlers(BalanceChanged) == balance
        self._fill_runners = self._position_runners = None
        fills = bus.handlers(OrderFilled)
        self._exits_hear = bool(fills) and fills[-1] == risk.exits.on_fill
        if self._exits_hear:
            fills = fills[:-1]
        exits_own = not self._exits_hear or _own(risk.exits, "on_fill", _OWN_EXITS_FILL)
        if plain and own["_on_filled"] and exits_own and fills[:2] == (portfolio._on_filled, risk._on_filled):
            found = _runners(fills[2:], "_on_fill")
            self._fill_runners = _by_symbol(found) if found is not None else None
        positions = bus.handlers(PositionChanged)
        if plain and own["_on_position"] and _own(risk, "_on_position", _OWN_RISK_POSITION) \
                and positions[:2] == (portfolio._on_position, risk._on_position):
            found = _runners(positions[2:], "_on_position")
            self._position_runners = _by_symbol(found) if found is not None else None
        self._seen = self._changes[0]

    def intent(self, intent: Any) -> None:
        """A runner's ``bus.publish(intent)``: an ``OrderIntent`` goes to the portfolio (its tag, what ``_on_intent``
        does) and the risk gate's handler as subscribed, while they are the route; anything else is published."""
        if self._changes[0] != self._seen:
            self._look()
        if not self._intent_ok or type(intent) is not OrderIntent:
            self._publish(intent)
            return
        if intent.tag:
            self._portfolio._intent_tags[intent.intent_id] = intent.tag
        gate = self._intents[1]
        try:
            gate(intent)
        except (HandlerError, StrategyError):
            raise
        except Exception as exc:
            raise self._bus.failed(gate, intent, exc) from exc

    def request(self, request: OrderRequest) -> None:
        """The risk gate's ``bus.publish(request)``."""
        if self._changes[0] != self._seen:
            self._look()
        if not self._request_ok:
            self._publish(request)
            return
        self._portfolio._on_request(request)
        self._broker.on_request(request)

    def request_fields(self, intent: OrderIntent, plain: Plain, now: int) -> None:
        """The risk gate's ``bus.publish(request_of(intent, plain, now))`` for the fast path's plain MARKET request:
        checked against the rules, it goes to the portfolio's and the broker's handlers as its fields."""
        if self._changes[0] != self._seen:
            self._look()
        cid, side, qty, reduce_only, _notes, checked = plain
        if not self._fields_ok or not checked:
            self.request(request_of(intent, plain, now))
            return
        self._portfolio.market_requested(cid, intent.intent_id, intent.strategy_id, side, qty)
        if not self._market_own:
            self._broker.market_request(intent.symbol, side, qty, reduce_only, cid)
            return
        try:  # (the broker's market_request, written out)
            _broker.accept_market(self._exchange, self._fused, intent.symbol, side, qty, reduce_only, cid,
                                  now if self._one_clock else None)
        except ExchangeError as exc:
            self._broker._refused(exc, cid, intent.symbol)

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

    def filled(self, order: SimOrder, trade_id: int, qty: Decimal, price: Decimal, commission: Decimal,
               realized: Decimal, status: OrderStatus, ts: int, now: int) -> bool:
        """A MARKET order's taker fill's ``OrderFilled`` delivered (True), or False: publish it."""
        if self._changes[0] != self._seen:
            self._look()
        by_symbol = self._fill_runners
        cid = order.client_order_id
        if by_symbol is None or cid.startswith("autoclose-"):  # (a liquidation's fill: the general handlers)
            return False
        exits_hear = self._exits_hear  # (the route as it is now: a handler subscribing changes later fills only)
        runners = by_symbol.get(order.symbol, ())
        portfolio, risk = self._portfolio, self._risk
        event: OrderFilled | None = None
        reader: Any = None  # (which bus handler stands for the step that failed: named only if one does)
        try:
            portfolio.market_filled(cid, order.symbol, order.side, qty, price, commission, realized, status, ts)
            if risk.fills_need_events():
                reader = risk
                event = _fill_event(order, trade_id, qty, price, commission, realized, status, ts, now)
                risk._on_filled(event)
            for runner in runners:
                reader = runner
                if runner.hears_fills():
                    if event is None:
                        event = _fill_event(order, trade_id, qty, price, commission, realized, status, ts, now)
                    runner._on_fill(event)
                else:
                    runner.fill_without_event(cid)
            if exits_hear:
                exits = reader = self._exits
                exits.filled(cid, qty, status)
        except (HandlerError, StrategyError):
            raise
        except Exception as exc:
            if event is None:
                event = _fill_event(order, trade_id, qty, price, commission, realized, status, ts, now)
            handler: Callable[[Any], None] = portfolio._on_filled if reader is None else risk._on_filled \
                if reader is risk else reader.on_fill if reader is self._exits else reader._on_fill
            raise self._bus.failed(handler, event, exc) from exc
        return True

    def position(self, symbol: str, pos: BookPosition, ts: int, now: int) -> bool:
        """A fill's ``PositionChanged`` delivered (True), or False: publish it."""
        return self._settle(symbol, pos, None, ts, now)

    def _settle(self, symbol: str, pos: BookPosition, change: Decimal | None, ts: int, now: int) -> bool:
        """A fill's ``PositionChanged`` and then, unless ``change`` is None, its ``BalanceChanged`` of USDT delivered
        (True), or neither (False: the exchange asks :meth:`position` and :meth:`balance` in turn). The position goes
        to the portfolio, the gate and the runners of its symbol; the balance, :meth:`balance`'s steps, after them
        (its route looked at again if a reader subscribed something meanwhile)."""
        if self._changes[0] != self._seen:
            self._look()
        by_symbol = self._position_runners
        if by_symbol is None or (change is not None and not self._balance_ok):
            return False
        qty, entry, leverage = pos.qty, pos.entry, pos.leverage  # what the event would hold, as it is now
        size, entry_f = pos.qty_f, pos.entry_f  # (their floats, kept by the exchange beside them)
        portfolio, risk = self._portfolio, self._risk
        reader: Any = None  # (as in filled)
        try:
            portfolio.position_changed(symbol, qty, entry, leverage, ts)
            reader = risk
            risk.position_changed(symbol, qty, now if self._one_clock else None)
            runners = by_symbol.get(symbol)
            if runners:  # what each runner's position_of_symbol does, one snapshot for all (it is frozen)
                seen = _position(size, entry_f) if qty else FLAT
                for runner in runners:
                    reader = runner
                    runner.strategy.position = seen
        except (HandlerError, StrategyError):
            raise
        except Exception as exc:
            handler: Callable[[Any], None] = portfolio._on_position if reader is None else reader._on_position
            raise self._bus.failed(handler, new_position_changed(symbol, qty, entry, leverage, ts, now), exc) from exc
        if change is None:
            return True
        ex = self._exchange
        if self._changes[0] != self._seen:  # (a reader subscribed something: the balance's route looked at again)
            self._look()
            if not self._balance_ok:
                ex._emit(new_balance_changed("USDT", ex.wallet, change, BalanceReason.ORDER, ts, now))
                return True
        portfolio.wallet_changed(ex.wallet, ts)
        return True

    settled = _settle
    """A fill's ``PositionChanged`` and then its ``BalanceChanged`` of USDT delivered (True), or neither (False)."""

    def balance(self, wallet: Decimal, change: Decimal, ts: int, now: int) -> bool:
        """A fill's ``BalanceChanged`` of USDT delivered (True), or False: publish it."""
        if self._changes[0] != self._seen:
            self._look()
        if not self._balance_ok:
            return False
        self._portfolio.wallet_changed(wallet, ts)
        return True


__all__ = ["DirectFeeds"]
