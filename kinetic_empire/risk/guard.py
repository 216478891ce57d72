"""No unprotected position: the stop a position's entry asked for is live on the venue, or the position closes.

:class:`ProtectiveOrders` places the stop when the entry fills; this guard makes sure it stays placed. It reads
the bus (order requests, acceptances, rejections, cancels, fills, positions) and keeps, per symbol, the
protective orders the position wants (the last stop / take-profit requested for the entry that last filled),
which of them are live (accepted, not final) and which are on their way. On its timer it acts, only through
the risk gate's commands (:class:`~kinetic_empire.risk.commands.RiskCommands`), so every order it causes is
checked and journaled like a strategy's:

* a wanted protective order that is neither live nor on its way (rejected, cancelled on the venue while the
  engine was up or down, never placed before a crash) is re-placed (``...-rpN``), at once the first time, then
  with a backoff (``backoff_s`` doubling up to ``backoff_max_s``), for as long as the position is open: the
  retrying stops only when the position is flat or protected;
* a stop or take-profit refused because the price is already through its trigger (Binance -2021 "Order would
  immediately trigger") is not retried: the position is closed at market, reduce-only, by a CLOSE intent
  through the gate, and the cause is journaled (a ``Note``, topic ``protection``, and the intent's tag);
* while a reduce-only market close is in flight (a flatten's, an operator's, a strategy's or the guard's own), a
  missing stop is not re-placed: a flatten cancels the stops and closes, and must not find them back; a close
  rejected, cancelled or expired with the position still open ends that pause;
* a position that wants a stop and has no live stop for ``within_s`` of timer time (wall time live) publishes
  ``Alert(kind="unprotected_position", severity="critical")``, logged once; it is cleared (``cleared=True``)
  when a stop is accepted or the position is flat.

The bound (README, "Protective orders"): after the engine learns that a stop is missing (the entry's fill, the
reconciliation at a resume or a user-stream reconnect, a rejection, a cancel on the venue), it re-places it
within one ``tick_s``; a stop is live, or the position flat, within ``within_s``, or the alert is raised.

It is wired by the live composition root only: a backtest places stops synchronously with the fill (and closes
at market when the fill already crossed the trigger, :func:`~kinetic_empire.risk.protection.protective_requests`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from ..core.clock import Clock
from ..core.enums import OrderStatus, OrderType, Side
from ..core.events import (
    Alert,
    Note,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    PositionChanged,
)

log = logging.getLogger(__name__)

WOULD_TRIGGER = -2021  # Binance: "Order would immediately trigger."
PROTECTIVE = (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.TRAILING_STOP_MARKET)
# a trailing stop (and a moved stop, reduce-only with a quantity) is the position's stop like a STOP_MARKET
_KIND = {OrderType.TRAILING_STOP_MARKET: OrderType.STOP_MARKET}
SOURCE = "protection"  # strategy id of the closes this guard asks for
ALERT_KIND = "unprotected_position"
ZERO = Decimal(0)


class GuardCommands(Protocol):
    """What the guard needs of the risk gate: re-place a protective order, close a position at market."""

    def replace_protection(self, last: OrderRequest) -> OrderRequest | None: ...

    def close_position(self, symbol: str, *, source: str, cause: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class GuardAction:
    """One thing the guard did, for the reconciliation plan."""

    symbol: str
    believed: str
    action: str


@dataclass(slots=True)
class _Cover:
    """One symbol's position and its protective orders."""

    qty: Decimal = ZERO
    entry_intent: str | None = None  # the intent of the entry that filled last
    templates: dict[OrderType, OrderRequest] = field(default_factory=dict)  # last request of each kind
    pending: dict[str, OrderType] = field(default_factory=dict)  # requested, not yet accepted
    live: dict[str, OrderType] = field(default_factory=dict)  # accepted, not final
    closing: bool = False  # a market close asked for and not final yet
    close_ids: set[str] = field(default_factory=set)
    settle_by: float | None = None  # a stop or close filled: the position change is due by then
    fails: int = 0  # attempts that failed since the position was last protected
    next_try: float = 0.0
    since: float | None = None  # timer time the stop went missing (None: protected, flat or not wanted)
    alerted: bool = False
    said: bool = False  # the first failure of the episode was logged
    last_error: str = ""

    def wanted(self) -> list[OrderRequest]:
        if self.qty == 0 or self.entry_intent is None:
            return []
        close = Side.SELL if self.qty > 0 else Side.BUY
        return [t for t in self.templates.values() if t.intent_id == self.entry_intent and t.side is close]

    def has(self, kind: OrderType, *, accepted_only: bool = False) -> bool:
        kinds = self.live.values() if accepted_only else (*self.live.values(), *self.pending.values())
        return kind in kinds

    def settling(self, now: float) -> bool:
        return self.settle_by is not None and now < self.settle_by

    def unprotected(self, now: float) -> bool:
        wants_stop = any(t.order_type is OrderType.STOP_MARKET for t in self.wanted())
        return wants_stop and not self.settling(now) and not self.has(OrderType.STOP_MARKET, accepted_only=True)


class ProtectionGuard:
    """Keeps every open position's stop live on the venue, or closes the position; alerts when it cannot."""

    def __init__(
        self,
        publish: Callable[[Any], None],
        commands: GuardCommands,
        clock: Clock,
        timer: Clock,
        *,
        within_s: float = 10.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 5.0,
        tick_s: float | None = None,
    ) -> None:
        if within_s <= 0:
            raise ValueError(f"within_s must be > 0, got {within_s}")
        self._publish = publish
        self._commands = commands
        self._clock = clock  # market time: event stamps
        self._timer = timer  # wall time live: the bound, the backoff, the ticks
        self.within_s = within_s
        self.backoff_s = backoff_s
        self.backoff_max_s = min(backoff_max_s, within_s / 2)
        self.tick_s = tick_s if tick_s is not None else min(0.5, within_s / 10)
        self.covers: dict[str, _Cover] = {}
        self._symbol_of: dict[str, str] = {}  # client id -> symbol, for orders the guard follows
        self._entries: dict[str, str] = {}  # entry client id -> intent id
        self.alerts = 0  # raised, for the status view and tests
        self.breaches = 0  # -2021 refusals answered by a market close
        self.replaced = 0

    def subscribe(self, bus: Any) -> None:
        """Follow the bus (after the journal and the risk manager subscribed)."""
        bus.subscribe(OrderRequest, self.on_request)
        bus.subscribe(OrderAccepted, self.on_accepted)
        bus.subscribe(OrderRejected, self.on_rejected)
        bus.subscribe(OrderCanceled, self.on_final)
        bus.subscribe(OrderExpired, self.on_final)
        bus.subscribe(OrderFilled, self.on_filled)
        bus.subscribe(PositionChanged, self.on_position)

    def _cover(self, symbol: str) -> _Cover:
        c = self.covers.get(symbol)
        if c is None:
            c = self.covers[symbol] = _Cover()
        return c

    # ------------------------------------------------------------------------------ resuming
    def restore(self, requests: Iterable[OrderRequest], *, accepted: set[str], terminal: set[str],
                filled: Mapping[str, Decimal]) -> None:
        """A resumed run: the journal's requests (in order), which were accepted, final and filled.

        Positions are not taken from the journal: the first reconciliation publishes the venue's (a position
        closed while the engine was down is flat, not unprotected).
        """
        for r in requests:
            self.on_request(r)
            cid = r.client_order_id
            if cid in self._entries and cid in filled:
                self._cover(r.symbol).entry_intent = r.intent_id
        for c in self.covers.values():
            for cid in [cid for cid in c.pending if cid in terminal]:
                del c.pending[cid]
            for cid in [cid for cid in c.pending if cid in accepted]:
                c.live[cid] = c.pending.pop(cid)
            c.close_ids -= terminal
        for cid in terminal:
            self._entries.pop(cid, None)

    # ------------------------------------------------------------------------------ bus handlers
    def on_request(self, r: OrderRequest) -> None:
        cid, c = r.client_order_id, self._cover(r.symbol)
        if r.order_type in PROTECTIVE and (r.close_position or r.reduce_only):
            kind = _KIND.get(r.order_type, r.order_type)
            c.templates[kind] = r
            c.pending[cid] = kind
            self._symbol_of[cid] = r.symbol
        elif r.order_type is OrderType.MARKET and (r.reduce_only or r.close_position):
            # a market close in flight, whoever asked (this guard, a flatten, an operator, a strategy): no stop is
            # re-placed until it is final; if it fails with the position still open, the stop is re-placed
            c.close_ids.add(cid)
            c.closing = True
            self._symbol_of[cid] = r.symbol
        elif not r.reduce_only and not r.close_position:
            self._entries[cid] = r.intent_id

    def on_accepted(self, e: OrderAccepted) -> None:
        c = self.covers.get(e.symbol)
        if c is None or e.client_order_id not in c.pending:
            return
        c.live[e.client_order_id] = c.pending.pop(e.client_order_id)
        self._observe(e.symbol)

    def on_rejected(self, e: OrderRejected) -> None:
        self._entries.pop(e.client_order_id, None)
        symbol = self._symbol_of.pop(e.client_order_id, None)
        if symbol is None:
            return
        c = self.covers[symbol]
        why = f"{e.code}: {e.reason}"
        if e.client_order_id in c.close_ids:
            c.close_ids.discard(e.client_order_id)
            self._failed(symbol, c, f"market close {e.client_order_id} rejected ({why})")
            return
        kind = c.pending.pop(e.client_order_id, None)
        if kind is None:
            return
        if e.code == WOULD_TRIGGER and c.qty != 0:
            self._breached(symbol, c, kind, e)
        else:
            self._failed(symbol, c, f"{kind.value} {e.client_order_id} rejected ({why})")

    def on_final(self, e: OrderCanceled | OrderExpired) -> None:
        self._entries.pop(e.client_order_id, None)
        symbol = self._symbol_of.pop(e.client_order_id, None)
        if symbol is None:
            return
        c = self.covers[symbol]
        c.pending.pop(e.client_order_id, None)
        c.live.pop(e.client_order_id, None)
        if e.client_order_id in c.close_ids:
            c.close_ids.discard(e.client_order_id)
            if c.qty != 0:
                self._failed(symbol, c, f"market close {e.client_order_id} {type(e).__name__} ({e.reason})")
        self._observe(symbol)

    def on_filled(self, f: OrderFilled) -> None:
        cid = f.client_order_id
        entry = self._entries.get(cid)
        if entry is not None:
            self._cover(f.symbol).entry_intent = entry
            if f.status is not OrderStatus.PARTIALLY_FILLED:
                del self._entries[cid]
            return
        symbol = self._symbol_of.get(cid)
        if symbol is None:
            return
        c = self.covers[symbol]
        if cid in c.live or cid in c.pending or cid in c.close_ids:  # it did its job: the position closes
            c.settle_by = self._timer.monotonic() + self.within_s
        if f.status is not OrderStatus.PARTIALLY_FILLED:
            self._symbol_of.pop(cid, None)
            c.live.pop(cid, None)
            c.pending.pop(cid, None)
            c.close_ids.discard(cid)

    def on_position(self, e: PositionChanged) -> None:
        c = self._cover(e.symbol)
        c.qty = e.quantity
        c.settle_by = None
        if e.quantity == 0:
            c.closing = False
            c.close_ids.clear()
        self._observe(e.symbol)

    # ------------------------------------------------------------------------------ acting
    async def run(self) -> None:
        """Check every ``tick_s`` of timer time (a task of the live engine)."""
        while True:
            await self._timer.sleep(self.tick_s)
            self.check()

    def check(self) -> list[GuardAction]:
        """Re-place what is missing (when its backoff allows), raise overdue alerts; returns what was done."""
        done: list[GuardAction] = []
        now = self._timer.monotonic()
        for symbol, c in self.covers.items():
            self._observe(symbol)
            if c.qty == 0 or c.settling(now) or (c.closing and c.close_ids) or now < c.next_try:
                continue
            c.closing = False
            for t in c.wanted():
                if c.has(t.order_type):
                    continue
                placed = self._commands.replace_protection(t)  # the gate checks, tracks, journals, publishes
                what = f"{t.order_type.value} {t.trigger_price}"
                if placed is None:
                    self._failed(symbol, c, f"{what} re-placement denied by the risk gate (see the denial)")
                    done.append(GuardAction(symbol, what, "not re-placed: denied by the risk gate (see the denial)"))
                    break
                self.replaced += 1
                log.debug("%s: %s re-placed as %s", symbol, what, placed.client_order_id)
                done.append(GuardAction(symbol, what, f"re-placed as {placed.client_order_id}"))
        return done

    def _failed(self, symbol: str, c: _Cover, why: str) -> None:
        c.fails += 1
        c.closing = bool(c.close_ids)
        c.last_error = why
        delay = 0.0 if c.fails <= 1 else min(self.backoff_max_s, self.backoff_s * 2 ** (c.fails - 2))
        c.next_try = self._timer.monotonic() + delay
        if c.said:
            log.debug("%s: %s; retry in %.1f s", symbol, why, delay)
        else:
            c.said = True
            log.warning("%s: %s; retrying (backoff up to %g s) until protected or flat", symbol, why,
                        self.backoff_max_s)
        self._observe(symbol)

    def _breached(self, symbol: str, c: _Cover, kind: OrderType, e: OrderRejected) -> None:
        """The price is through the trigger: close at market, reduce-only, through the gate; say why."""
        if c.closing and c.close_ids:
            log.info("%s: %s %s refused (%s) while the position is already being closed", symbol, kind.value,
                     e.client_order_id, e.code)
            return
        t = c.templates.get(kind)
        trigger = t.trigger_price if t is not None else "?"
        cause = (f"PROTECTION_BREACHED symbol={symbol} {kind.value} {e.client_order_id} trigger={trigger} "
                 f"refused by the venue ({e.code}: {e.reason}): the price is already through it; closing the "
                 f"position {c.qty} at market, reduce-only")
        self.breaches += 1
        log.warning("%s", cause)
        now = self._clock.now_ms()
        self._publish(Note(topic=SOURCE, message=cause, data={
            "symbol": symbol, "kind": kind.value, "client_order_id": e.client_order_id, "trigger": str(trigger),
            "code": e.code, "reason": e.reason, "position": str(c.qty)}, ts_event=now, ts_init=now))
        c.closing = True
        c.close_ids.clear()
        self._commands.close_position(symbol, source=SOURCE, cause=cause)  # requests land in close_ids
        if not c.close_ids:
            self._failed(symbol, c, "market close denied by the risk gate (see the denial)")
        self._observe(symbol)

    def _observe(self, symbol: str) -> None:
        """Start, end or escalate the symbol's unprotected episode."""
        c = self.covers[symbol]
        now = self._timer.monotonic()
        if not c.unprotected(now):
            if c.since is not None or c.alerted:
                c.since, c.fails, c.next_try, c.said = None, 0, 0.0, False
                if c.alerted:
                    c.alerted = False
                    state = "flat" if c.qty == 0 else "protected"
                    log.warning("%s: position %s again (alert cleared)", symbol, state)
                    self._alert(symbol, f"{symbol}: position {state} again", cleared=True)
            return
        if c.since is None:
            c.since = now
        if not c.alerted and now - c.since >= self.within_s:
            c.alerted = True
            self.alerts += 1
            msg = (f"{symbol}: position {c.qty} without a live stop for {now - c.since:.1f} s (bound "
                   f"{self.within_s:g} s); last: {c.last_error or 'stop not acknowledged yet'}; still retrying")
            log.error("%s", msg)
            self._alert(symbol, msg, cleared=False)

    def _alert(self, symbol: str, message: str, *, cleared: bool) -> None:
        now = self._clock.now_ms()
        self._publish(Alert(kind=ALERT_KIND, message=message, symbol=symbol, severity="critical", cleared=cleared,
                            ts_event=now, ts_init=now))

    def unprotected(self) -> dict[str, float]:
        """Symbols without their stop now, with how long (timer seconds)."""
        now = self._timer.monotonic()
        return {s: now - c.since for s, c in self.covers.items() if c.since is not None}


__all__ = ["ALERT_KIND", "SOURCE", "WOULD_TRIGGER", "GuardAction", "GuardCommands", "ProtectionGuard"]
