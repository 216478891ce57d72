"""An exit is sized net of the exits already in flight on its symbol.

A reduce-only market exit may stay unfinished for a while: accepted but not yet filled, sent with no answer
(:class:`OrderOutcomeUnknown`), or filled while the account still shows the position from before (a fill
recorded by a reconciliation lands before the positions it fetches next). A strategy that closes "while a
position is open" sends a CLOSE on every kline meanwhile (a feed backfill replays several at once), and
repeated partial REDUCEs would take off more than it meant. Like freqtrade, which places no exit while one
is open, the gate nets: a CLOSE or REDUCE is sized from what the exits in flight will leave, and denied
``EXIT_IN_FLIGHT`` (naming the client ids waited for) when nothing is left.

Per symbol it keeps the position size the account will show once every known exit has landed (``left``):
an exit sent takes its quantity off, an exit refused, canceled or expired gives its unfilled rest back, a
fill changes nothing (it was counted when sent). The symbol is forgotten once nothing is in flight and
the account shows the fills (its size is at most ``left``, or a position update came after the last
answer), or the position changed sides. A position that grows while an exit is in flight raises
``left`` by the growth.

Only the market exits the gate makes count: from CLOSE and REDUCE intents (strategies' and operators'), the
protection's close of a trigger the entry fill already crossed, and those a restart finds journaled as sent
and unfinished (:meth:`ExitsInFlight.resumed`);
resting stop and take-profit orders are conditional and never do (counting them would block every close).

Nothing listens to the answers until the first exit: in a backtest an exit fills at the next open, before
the next kline, so a symbol is forgotten before any intent could see it, and results do not change.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from ..core.bus import EventBus
from ..core.enums import OrderStatus, OrderType, Side
from ..core.events import OrderCanceled, OrderExpired, OrderFilled, OrderRejected, OrderRequest
from .guards import Denial, deny

ZERO = Decimal(0)
_FILLED = OrderStatus.FILLED


class _Symbol:
    """One symbol's exits: the position size left once they land, and what each still has to fill."""

    __slots__ = ("answered", "flying", "left", "long")

    def __init__(self, size: Decimal, long: bool) -> None:
        self.left = size
        self.long = long
        self.flying: dict[str, Decimal] = {}  # client id -> quantity still to fill
        self.answered: list[str] = []  # filled exits the account may not show yet


class ExitsInFlight:
    """Reduce-only market exits sent and not finished, by symbol (see the module docstring)."""

    __slots__ = ("_bus", "_by_cid", "_listening", "_symbols")

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._symbols: dict[str, _Symbol] = {}
        self._by_cid: dict[str, str] = {}  # client id in flight -> symbol
        self._listening = False

    @property
    def tracking(self) -> bool:
        """Any symbol with exits in flight (or fills the account may not show yet)."""
        return bool(self._symbols)

    def sent(self, request: OrderRequest, position: Decimal) -> None:
        """A market exit the gate publishes against ``position`` (signed, as the account shows it now)."""
        if not request.reduce_only or request.close_position or request.order_type is not OrderType.MARKET:
            return  # stops and take-profits are conditional: never in flight
        if request.quantity is None:
            return
        self.sent_market(request.symbol, request.client_order_id, request.quantity, position)

    def sent_market(self, symbol: str, client_order_id: str, quantity: Decimal, position: Decimal) -> None:
        """:meth:`sent` of a reduce-only MARKET request with these fields (the risk gate's fast path)."""
        if not position:
            return
        if not self._listening:
            self._listen()
        entry = self._symbols.get(symbol)
        long = position > ZERO  # (the Decimal zero: the same answer, no int converted)
        size = abs(position)
        if entry is None or entry.long != long:
            entry = self._symbols[symbol] = _Symbol.__new__(_Symbol)  # (_Symbol(size, long), its fields set once)
            entry.long = long
            entry.flying = {}
            entry.answered = []
            # max(ZERO, size - quantity) (min(size, size) is size): ZERO unless the difference is above zero, which
            # it is exactly when size > quantity (a close sends the whole size, or more: no subtraction then)
            entry.left = size - quantity if size > quantity else ZERO
        else:
            entry.left = max(ZERO, min(entry.left, size) - quantity)
        entry.flying[client_order_id] = quantity
        self._by_cid[client_order_id] = symbol

    def resumed(self, request: OrderRequest, position: Decimal, filled: Decimal = ZERO) -> None:
        """An exit the journal holds as sent and not finished, after a restart: in flight for what it has left
        (``position``: the journal's belief, which already counts the ``filled`` part)."""
        if request.quantity is None or request.quantity <= filled or request.order_type is not OrderType.MARKET:
            return
        if not request.reduce_only or request.close_position:
            return
        long = request.side is Side.SELL  # the position an exit takes off
        if position and (position > 0) == long:
            self.sent(replace(request, quantity=request.quantity - filled), position)
            return
        # the journal's position lags (its last fills died unwritten with the process): the venue's, at the first
        # reconciliation, says what the exit leaves (on_position)
        self._listen()
        entry = self._symbols.get(request.symbol)
        if entry is None or entry.long != long:
            entry = self._symbols[request.symbol] = _Symbol(ZERO, long)
        entry.flying[request.client_order_id] = request.quantity - filled
        self._by_cid[request.client_order_id] = request.symbol

    def _listen(self) -> None:
        if not self._listening:  # the answers matter only from the first exit on
            self._listening = True
            self._bus.subscribe(OrderFilled, self.on_fill)
            for kind in (OrderCanceled, OrderExpired, OrderRejected):
                self._bus.subscribe(kind, self.on_end)

    def on_fill(self, fill: OrderFilled) -> None:
        self.filled(fill.client_order_id, fill.quantity, fill.status)

    def filled(self, cid: str, quantity: Decimal, status: OrderStatus) -> None:
        """:meth:`on_fill` with the fields it reads (a backtest's direct delivery calls it without the event)."""
        symbol = self._by_cid.get(cid)
        if symbol is None:
            return
        entry = self._symbols[symbol]
        if status is not _FILLED:
            rest = entry.flying[cid] - quantity
            if rest > 0:
                entry.flying[cid] = rest
                return
        del entry.flying[cid], self._by_cid[cid]
        entry.answered.append(cid)

    def on_end(self, event: OrderCanceled | OrderExpired | OrderRejected) -> None:
        """Refused, canceled or expired: its unfilled rest will not come off the position."""
        symbol = self._by_cid.pop(event.client_order_id, None)
        if symbol is None:
            return
        entry = self._symbols[symbol]
        entry.left += entry.flying.pop(event.client_order_id)
        entry.answered.append(event.client_order_id)

    def on_position(self, symbol: str, position: Decimal) -> None:
        """The venue's statement of the position: it shows every fill answered before it."""
        entry = self._symbols.get(symbol)
        if entry is None:
            return
        if not entry.flying or not position or entry.long != (position > ZERO):
            for cid in entry.flying:  # (_forget, inlined)
                self._by_cid.pop(cid, None)
            del self._symbols[symbol]
            return
        entry.answered.clear()
        entry.left = max(entry.left, abs(position) - sum(entry.flying.values()))  # grown meanwhile

    def available(self, symbol: str, position: Decimal) -> Decimal | Denial | None:
        """The size a new exit may take off (``None``: no exit in flight, the whole position), or the denial."""
        if not self._symbols:
            return None
        entry = self._symbols.get(symbol)
        if entry is None:
            return None
        size = abs(position)
        if not position or entry.long != (position > 0) or (not entry.flying and size <= entry.left):
            self._forget(symbol, entry)  # flat, turned, or the account shows every answered fill
            return None
        if entry.left > 0:
            return min(size, entry.left)
        waiting = ",".join(sorted(entry.flying) + entry.answered)
        return deny("EXIT_IN_FLIGHT", symbol=symbol, position=size, waiting_for=waiting)

    def waiting(self, symbol: str) -> tuple[str, ...]:
        """The client ids of the exits in flight on ``symbol`` (for reports and tests)."""
        entry = self._symbols.get(symbol)
        return tuple(sorted(entry.flying)) if entry is not None else ()

    def _forget(self, symbol: str, entry: _Symbol) -> None:
        for cid in entry.flying:
            self._by_cid.pop(cid, None)
        del self._symbols[symbol]


__all__ = ["ExitsInFlight"]
