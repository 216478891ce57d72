"""Protective orders: a stop-loss and take-profit placed when an entry fills, cancelled when flat.

A strategy moves them on an open position (``set_stop`` / ``set_take_profit``, a :class:`ProtectionIntent`,
decided in :mod:`.moves`): the new order is sent first and the older ones of its kind are cancelled only when the
venue accepts it (:meth:`ProtectiveOrders.on_accepted`); refused, the old ones stay. In a backtest the acceptance
comes back while the request is published, so both modes run the same steps in the same order.

Their lifecycle (:class:`ProtectiveOrders`): the risk manager expects an entry when it publishes it;
the entry's first fill places the protection (and cancels older protection on the symbol, since the
newest stop governs the whole position); a terminal event forgets an order; a flat position cancels
what is left. A resumed run tells it which orders are still ours (:meth:`ProtectiveOrders.track`).
Keeping a stop on the venue afterwards (re-placing it, or closing the position when the venue refuses it as
already triggered) is the live engine's :class:`~kinetic_empire.risk.guard.ProtectionGuard`.

They are sent only after the entry fills (a close-position trigger without a position does nothing
on Binance and could fire on the wrong side after a flip). Both use ``closePosition=true``, so they
cover the whole position whatever fills later, and CONTRACT_PRICE triggers, matching the backtest's
intrabar rule. Trigger prices were rounded at intent time on the safe side (rules.py docstring).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from ..core.account import AccountView
from ..core.bus import EventBus
from ..core.clock import Clock
from ..core.enums import OrderStatus, OrderType, Side, TradingState, WorkingType
from ..core.events import (
    CancelRequest,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    ProtectionIntent,
)
from ..core.rules import SymbolRules
from . import ids
from .exits import ExitsInFlight
from .guards import Denial
from .moves import STOP, TAKE_PROFIT, decide_move

_ROLE = {OrderType.STOP_MARKET: STOP, OrderType.TRAILING_STOP_MARKET: STOP, OrderType.TAKE_PROFIT_MARKET: TAKE_PROFIT}


@dataclass(slots=True)
class PendingEntry:
    """An entry whose fill should place protective orders."""

    intent_id: str
    strategy_id: str
    symbol: str
    side: Side  # the entry's side; protective orders use the opposite
    stop: Decimal | None
    take_profit: Decimal | None
    placed: bool = False


@dataclass(slots=True)
class ProtectionBook:
    """Entries waiting for a fill, and the protective orders believed open, by symbol."""

    pending: dict[str, PendingEntry] = field(default_factory=dict)
    open_by_symbol: dict[str, dict[str, str]] = field(default_factory=dict)  # symbol -> cid -> strategy
    _symbol_of: dict[str, str] = field(default_factory=dict)

    def expect(self, entry_client_id: str, entry: PendingEntry) -> None:
        self.pending[entry_client_id] = entry

    def first_fill(self, client_id: str, final: bool) -> PendingEntry | None:
        """The entry if this is its first fill (protection not placed yet); forget it when final."""
        entry = self.pending.get(client_id)
        if entry is None:
            return None
        if final:
            del self.pending[client_id]
        if entry.placed:
            return None
        entry.placed = True
        return entry

    def add(self, symbol: str, client_id: str, strategy_id: str) -> None:
        self.open_by_symbol.setdefault(symbol, {})[client_id] = strategy_id
        self._symbol_of[client_id] = symbol

    def done(self, client_id: str) -> None:
        """An order reached a terminal state (filled, cancelled, expired, rejected)."""
        self.pending.pop(client_id, None)
        symbol = self._symbol_of.pop(client_id, None)
        if symbol is not None:
            book = self.open_by_symbol.get(symbol)
            if book is not None:
                book.pop(client_id, None)
                if not book:
                    del self.open_by_symbol[symbol]

    def take(self, symbol: str) -> list[tuple[str, str]]:
        """Forget and return (client id, strategy id) of every protective order open on ``symbol``."""
        book = self.open_by_symbol.pop(symbol, {})
        for cid in book:
            self._symbol_of.pop(cid, None)
        return list(book.items())


class ProtectiveOrders:
    """Places, tracks and cancels the protective orders of the entries the risk manager let through."""

    def __init__(self, bus: EventBus, clock: Clock, account: AccountView, rules: Mapping[str, SymbolRules],
                 exits: ExitsInFlight | None = None) -> None:
        self._bus = bus
        self._exits = exits  # a market close for a trigger already crossed is an exit in flight like any other
        self._clock = clock
        self._account = account
        self._rules = rules
        self.book = ProtectionBook()
        self._role: dict[str, str] = {}  # protective client id -> "stop" / "take_profit"
        self._rank: dict[str, int] = {}  # protective client id -> placement number (older ones are replaced)
        self._placed = 0
        self._moving: dict[str, str] = {}  # moved order's client id -> symbol, until the venue accepts or refuses it
        self._owner: dict[str, str] = {}  # symbol -> the intent of the entry whose protection is current

    def _note(self, request: OrderRequest) -> None:
        self._placed += 1
        self._rank[request.client_order_id] = self._placed
        role = _ROLE.get(request.order_type)
        if role is not None:
            self._role[request.client_order_id] = role

    def move(self, intent: ProtectionIntent, state: TradingState, now: int) -> Denial | OrderRequest:
        """Place the position's new stop or take-profit (the old ones go when it is accepted), or why not."""
        pos = self._account.position(intent.symbol).quantity
        decided = decide_move(intent, rules=self._rules.get(intent.symbol), position=pos, state=state,
                              owner_intent=self._owner.get(intent.symbol), now=now)
        if isinstance(decided, Denial):
            return decided
        cid = decided.client_order_id
        self._note(decided)
        self._moving[cid] = decided.symbol
        self.book.add(decided.symbol, cid, decided.strategy_id)  # a flat position cancels it like the others
        self._bus.publish(decided)
        return decided

    def on_accepted(self, event: OrderAccepted) -> None:
        """A moved stop or take-profit is live: cancel the older ones of its kind on the symbol."""
        symbol = self._moving.pop(event.client_order_id, None)
        if symbol is None:
            return
        role = self._role.get(event.client_order_id)
        rank = self._rank.get(event.client_order_id, 0)
        older = [(cid, sid) for cid, sid in self.book.open_by_symbol.get(symbol, {}).items()
                 if cid != event.client_order_id and self._role_of(cid) == role and self._rank.get(cid, 0) < rank]
        now = self._clock.now_ms()
        for cid, strategy_id in older:
            self.book.done(cid)
            self._forget(cid)
            self._bus.publish(CancelRequest(client_order_id=cid, symbol=symbol, strategy_id=strategy_id,
                                            ts_event=now, ts_init=now))

    def _role_of(self, client_id: str) -> str:
        """A protective order's kind; one restored from a journal is known by its client id's suffix."""
        role = self._role.get(client_id)
        if role is None:
            role = TAKE_PROFIT if f"-{ids.TAKE_PROFIT}" in client_id else STOP
        return role

    def _forget(self, client_id: str) -> None:
        self._role.pop(client_id, None)
        self._rank.pop(client_id, None)
        self._moving.pop(client_id, None)

    def expect(self, entry_client_id: str, entry: PendingEntry) -> None:
        """An entry (about to be sent, or still open after a restart) whose fill must place protection."""
        self.book.expect(entry_client_id, entry)

    def track(self, symbol: str, client_id: str, strategy_id: str) -> None:
        """An open stop or take-profit (from a journal, or re-placed by reconciliation) to manage as ours."""
        self.book.add(symbol, client_id, strategy_id)

    @property
    def idle(self) -> bool:
        """Nothing tracked (a backtest without stops): :meth:`on_fill` finds nothing to do with any fill."""
        return not (self.book.pending or self.book._symbol_of or self._role or self._rank or self._moving)

    def on_fill(self, fill: OrderFilled) -> None:
        if self.idle:
            return  # nothing tracked: the steps below would find nothing
        cid = fill.client_order_id
        final = fill.status is not OrderStatus.PARTIALLY_FILLED
        entry = self.book.first_fill(cid, final)
        if final:
            self.book.done(cid)
            self._forget(cid)
        if entry is None:
            return
        rules = self._rules[entry.symbol]
        now = self._clock.now_ms()
        # the newest stop governs the whole position: older protective orders on the symbol go
        self.cancel(entry.symbol, now)
        self._owner[entry.symbol] = entry.intent_id
        held = max(abs(self._account.position(entry.symbol).quantity), fill.quantity)
        for request in protective_requests(entry, rules=rules, fill_price=fill.price, position_qty=held, now_ms=now):
            if request.close_position:
                self.book.add(entry.symbol, request.client_order_id, entry.strategy_id)
                self._note(request)
            elif request.reduce_only and self._exits is not None:  # the breach close: tracked before it is sent,
                self._exits.sent(request, held if entry.side is Side.BUY else -held)  # so a CLOSE nets it
            self._bus.publish(request)

    def on_terminal(self, event: OrderCanceled | OrderExpired | OrderRejected) -> None:
        self.book.done(event.client_order_id)
        self._forget(event.client_order_id)

    def cancel(self, symbol: str, now: int) -> None:
        """Request the cancel of every protective order believed open on ``symbol`` (and forget them)."""
        if symbol not in self.book.open_by_symbol:
            return
        for cid, strategy_id in self.book.take(symbol):
            self._forget(cid)
            self._bus.publish(
                CancelRequest(client_order_id=cid, symbol=symbol, strategy_id=strategy_id, ts_event=now, ts_init=now)
            )


def protective_requests(
    entry: PendingEntry,
    *,
    rules: SymbolRules,
    fill_price: Decimal,
    position_qty: Decimal,
    now_ms: int,
    make: Callable[..., OrderRequest] = OrderRequest,
) -> list[OrderRequest]:
    """The stop and take-profit for a filled entry.

    If the fill already crossed a trigger (a gap through the stop, say), Binance would refuse the
    trigger order (-2021 "would immediately trigger"); a reduce-only MARKET close is sent instead.
    """
    close = entry.side.opposite
    long = entry.side is Side.BUY
    breached = [
        p
        for p, loss in ((entry.stop, True), (entry.take_profit, False))
        if p is not None and (fill_price <= p if long == loss else fill_price >= p)
    ]
    common = {
        "intent_id": entry.intent_id,
        "strategy_id": entry.strategy_id,
        "symbol": entry.symbol,
        "side": close,
        "ts_event": now_ms,
        "ts_init": now_ms,
    }
    if breached:
        qty = max(rules.round_qty_up(abs(position_qty), market=True), rules.market_min_qty)
        qty = min(qty, rules.market_max_qty)
        note = f"trigger {breached[0]} already crossed by the entry fill at {fill_price}: closing at market"
        return [
            make(
                client_order_id=ids.client_id(entry.intent_id, ids.BREACH),
                order_type=OrderType.MARKET,
                quantity=qty,
                reduce_only=True,
                adjustments=(note,),
                **common,
            )
        ]
    out = []
    for trigger, kind, suffix in (
        (entry.stop, OrderType.STOP_MARKET, ids.STOP),
        (entry.take_profit, OrderType.TAKE_PROFIT_MARKET, ids.TAKE_PROFIT),
    ):
        if trigger is None:
            continue
        out.append(
            make(
                client_order_id=ids.client_id(entry.intent_id, suffix),
                order_type=kind,
                quantity=None,
                trigger_price=trigger,
                close_position=True,
                working_type=WorkingType.CONTRACT_PRICE,
                **common,
            )
        )
    return out
