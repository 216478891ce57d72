"""Reconciliation with an explicit plan: what the engine believed, what the venue says, what is done.

It runs at resume, after every user-stream (re)connection and every ``reconcile_every_s``. The REST
pass itself (:meth:`BinanceExecution.reconcile`) publishes the facts the engine missed: fills while it was
away, orders cancelled or expired, positions and balance. Around it this module:

* at resume, looks every journaled "sent, unknown" order up by client id; one the venue does not know was
  never placed (the request died with the process) and is closed as rejected, never resent;
* explains each position difference by the fills just recorded; what they do not explain (a position the
  engine did not open, a manual trade) puts the symbol in REDUCING with the reason and how to clear it.
  While trading (not at start or resume) a difference is first only *pending*: an order of ours may still be
  in flight, or its fill may wait in the freshly reconnected stream (handled only after this pass), so the
  symbol is checked again once its orders are answered and ``settle_s`` has passed, against every fill
  recorded meanwhile; only a difference that is still there is flagged;
* then asks the protection guard (:class:`~kinetic_empire.risk.guard.ProtectionGuard`) to re-place at once
  any stop (or take-profit) an open position wants and the venue no longer has; the guard goes through the
  risk gate (:meth:`RiskCommands.replace_protection`) and keeps retrying (with a backoff) until the position
  is protected or flat; this module never publishes an order itself;
* at resume, shows each reduce-only exit the journal had in flight (:meth:`JournalView.open_exits`, tracked
  again by live/restore.py so a close after the restart is netted of it) and what the venue says of it now;
* prints, logs and journals (``Note`` topic ``reconcile``) the plan whenever it holds an action.

Its dependencies are narrow on purpose (the translator's beliefs, the port's REST pass, the risk gate's
state switch, the guard's check, the bus, a clock, the symbols): it knows nothing of the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from ..binance.errors import BinanceError
from ..binance.translate import UserTranslator
from ..core.bus import EventBus
from ..core.clock import Clock
from ..core.enums import Side, TradingState
from ..core.events import Note, OrderFilled
from ..risk.guard import GuardAction
from .resume import JournalView

log = logging.getLogger(__name__)
ZERO = Decimal(0)
MISMATCH = "RECONCILE_MISMATCH"


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # fill|closed|never-placed|exit-in-flight|adopt|pending|explained|flag|clear|protect|balance
    symbol: str
    believed: str
    exchange: str
    action: str


@dataclass
class Plan:
    reason: str
    actions: list[Action] = field(default_factory=list)

    def add(self, kind: str, symbol: str, believed: Any, exchange: Any, action: str) -> None:
        self.actions.append(Action(kind, symbol, str(believed), str(exchange), action))

    def count(self, kind: str) -> int:
        return sum(1 for a in self.actions if a.kind == kind)

    def format(self) -> str:
        if not self.actions:
            return f"reconciliation ({self.reason}): journal and venue agree"
        lines = [f"reconciliation ({self.reason}): {len(self.actions)} action(s)"]
        lines += [f"  {a.kind:<14} {a.symbol:<10} believed: {a.believed:<22} venue: {a.exchange:<22} -> {a.action}"
                  for a in self.actions]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "actions": [
            {"kind": a.kind, "symbol": a.symbol, "believed": a.believed, "exchange": a.exchange, "action": a.action}
            for a in self.actions]}


class VenueSync(Protocol):
    """The port's REST pass: orders, fills, positions and balance the stream may have missed."""

    async def reconcile(self, symbols: Iterable[str]) -> None: ...

    def in_flight(self, symbol: str) -> int:
        """Orders on ``symbol`` whose placement has not been answered yet."""
        ...


@dataclass
class _Pending:
    """A position difference waiting for its second look."""

    believed: Decimal  # what the engine believed before the pass that found it
    since: float  # clock.monotonic() when it was found


class RiskGate(Protocol):
    """What reconciliation asks of the risk manager."""

    def set_state(self, state: TradingState, cause: str, symbol: str | None = None) -> None: ...


class Reconciler:
    """One engine's reconciliations; serialised, since the stream and the timer may ask at once."""

    def __init__(
        self,
        translator: UserTranslator,
        port: VenueSync,
        risk: RiskGate,
        protect: Callable[[], list[GuardAction]],
        bus: EventBus,
        now_ms: Callable[[], int],
        symbols: Sequence[str],
        *,
        initial_state: TradingState = TradingState.ACTIVE,
        printer: Callable[[str], None] | None = None,
        timer: Clock | None = None,
        spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
        settle_s: float = 2.0,
        settle_bound_s: float = 120.0,
    ) -> None:
        self.translator = translator
        self.port = port
        self.risk = risk
        self.protect = protect
        self.bus = bus
        self.now_ms = now_ms
        self.symbols = list(symbols)
        self.initial_state = initial_state  # what a cleared symbol returns to
        self.printer = printer
        self.plans: list[Plan] = []
        self.resume: JournalView | None = None  # set for the first pass after a resume
        self.flagged: set[str] = set()
        self.timer = timer
        self.spawn = spawn
        self.settle_s = settle_s
        self.settle_bound_s = settle_bound_s
        self.pending: dict[str, _Pending] = {}
        self.held: dict[str, Decimal] = {}
        """The position each symbol's fills imply: the venue's at the last reconciliation plus every fill
        recorded since. Not the stream's ACCOUNT_UPDATE: a gap can lose that message after its fill arrived."""
        self._confirming = False
        self._lock = asyncio.Lock()
        bus.subscribe(OrderFilled, self._on_fill)

    @property
    def actions(self) -> int:
        return sum(len(p.actions) for p in self.plans)

    async def run(self, reason: str, *, trading: bool = True) -> Plan:
        """One pass. ``trading``: orders may be in flight, so a position difference waits for a second look
        (see the module docstring) rather than being flagged at once, as it is at start and resume."""
        async with self._lock:
            plan = await self._run(reason, trading)
        if self.pending and not self._confirming and self.timer is not None and self.spawn is not None:
            self._confirming = True
            self.spawn(self._confirm())
        return plan

    def _on_fill(self, f: OrderFilled) -> None:
        self.held[f.symbol] = self.held.get(f.symbol, ZERO) + (f.quantity if f.side is Side.BUY else -f.quantity)

    def _settled(self, sym: str, now: float) -> bool:
        p = self.pending[sym]
        if now - p.since >= self.settle_bound_s:
            return True
        return now - p.since >= self.settle_s and not self.port.in_flight(sym)

    async def _confirm(self) -> None:
        """The second look at pending differences, once they have settled."""
        timer = self.timer
        assert timer is not None
        try:
            while self.pending:
                now = timer.monotonic()
                if any(self._settled(sym, now) for sym in self.pending):
                    async with self._lock:
                        await self._run("second look at " + ", ".join(sorted(self.pending)), True)
                    continue
                await timer.sleep(min(0.25, self.settle_s))
        except BinanceError as exc:
            log.warning("second look at a position difference failed (%s); the next reconciliation takes it", exc)
        finally:
            self._confirming = False

    async def _run(self, reason: str, trading: bool) -> Plan:
        tr = self.translator
        bus = self.bus
        plan = Plan(reason)
        view, self.resume = self.resume, None
        if view is not None:
            self.held = dict(view.positions)
        believed = dict(self.held)
        before = {cid: (st.terminal, st.filled) for cid, st in tr.orders.items()}
        fills: list[OrderFilled] = []
        bus.subscribe(OrderFilled, fills.append)
        try:
            await self.port.reconcile(self.symbols)
        finally:
            bus.unsubscribe(OrderFilled, fills.append)
        for f in fills:
            what = f"{f.side.value} {f.quantity} @ {f.price} ({f.client_order_id})"
            plan.add("fill", f.symbol, "not journaled", what, "recorded")
        for cid, (was_terminal, _filled) in before.items():
            st = tr.orders[cid]
            if st.terminal and not was_terminal and not any(f.client_order_id == cid for f in fills):
                plan.add("closed", st.symbol, f"{cid} open", "canceled/expired/filled", "marked final")
        if view is not None:
            self._never_placed(view, plan)
            self._exits_in_flight(view, plan)
        self._positions(believed, plan, trading)
        self._protect(plan)
        self._account(view, plan)
        self.plans.append(plan)
        if plan.actions or view is not None:
            text = plan.format()
            log.warning("%s", text) if plan.actions else log.info("%s", text)
            if self.printer is not None:
                self.printer(text)
            now = self.now_ms()
            bus.publish(Note(topic="reconcile", message=text, data=plan.to_dict(), ts_event=now, ts_init=now))
        return plan

    def _never_placed(self, view: JournalView, plan: Plan) -> None:
        tr = self.translator
        for r in view.unknown_orders():
            st = tr.orders.get(r.client_order_id)
            if st is not None and (st.accepted or st.terminal):
                plan.add("sent-unknown", r.symbol, f"{r.client_order_id} sent, outcome unknown",
                         "known by client id", "adopted (not resent)")
                continue
            tr.rejected(r, -2013, "not on the venue after a restart: the request never left; not resent")
            plan.add("never-placed", r.symbol, f"{r.client_order_id} sent, outcome unknown", "unknown client id",
                     "closed as rejected (not resent)")

    def _exits_in_flight(self, view: JournalView, plan: Plan) -> None:
        """The exits the resume loaded as in flight, and where each stands after this pass."""
        for r in view.open_exits():
            st = self.translator.orders.get(r.client_order_id)
            filled = st.filled if st is not None else view.filled.get(r.client_order_id, ZERO)
            believed = f"{r.client_order_id} {r.side.value} {r.quantity} reduce-only, {filled} filled"
            if st is not None and st.terminal:
                plan.add("exit-in-flight", r.symbol, believed, f"final ({filled} filled)",
                         "no longer in flight (see the rows above)")
            else:
                venue = "open" if st is not None and st.accepted else "unanswered"
                plan.add("exit-in-flight", r.symbol, believed, venue,
                         "still in flight: a close is netted of it (not resent)")

    def _positions(self, believed: dict[str, Decimal], plan: Plan, trading: bool) -> None:
        now = self.timer.monotonic() if self.timer is not None else 0.0
        held = self.held
        for sym in self.symbols:
            exch = self.translator.positions.get(sym, (ZERO, ZERO))[0]
            expected = held.get(sym, ZERO)  # believed before the pass plus every fill recorded since
            pending = self.pending.get(sym)
            if pending is not None:
                if not self._settled(sym, now):
                    continue
                del self.pending[sym]
                if exch == expected:
                    plan.add("explained", sym, pending.believed, exch, "position follows fills recorded since the "
                             "first look (orders then in flight)")
                else:
                    self._flag(sym, pending.believed, exch, expected - pending.believed, plan)
                held[sym] = exch
                continue
            was = believed.get(sym, ZERO)
            if sym in self.flagged and exch == 0:
                self.flagged.discard(sym)
                self.risk.set_state(self.initial_state, f"RECONCILE_CLEARED symbol={sym} flat on the venue", sym)
                plan.add("clear", sym, "REDUCING", "flat", "trading resumes on the symbol")
                held[sym] = exch
                continue
            if exch == expected:
                if exch != was:
                    plan.add("adopt", sym, was, exch, "position follows the fills recorded above")
                continue
            if sym in self.flagged:
                held[sym] = exch
                continue
            if trading and self.timer is not None:
                self.pending[sym] = _Pending(was, now)
                plan.add("pending", sym, was, exch, f"looked at again once its orders are answered (at least "
                         f"{self.settle_s:g} s): fills still on their way may explain it")
                continue
            self._flag(sym, was, exch, expected - was, plan)
            held[sym] = exch

    def _flag(self, sym: str, was: Decimal, exch: Decimal, moved: Decimal, plan: Plan) -> None:
        self.flagged.add(sym)
        cause = (f"{MISMATCH} symbol={sym} journal={was} venue={exch} unexplained={exch - was - moved}: "
                 "a position or trade this run did not make. Entries on the symbol are paused (exits allowed); "
                 "close or reduce it on the venue and trading resumes at the next reconciliation that finds "
                 "the symbol flat")
        log.error("%s", cause)
        self.risk.set_state(TradingState.REDUCING, cause, sym)
        plan.add("flag", sym, was, exch, "REDUCING (position adopted into the portfolio, entries paused)")

    def _protect(self, plan: Plan) -> None:
        for a in self.protect():
            plan.add("protect", a.symbol, a.believed, "missing", a.action)

    def _account(self, view: JournalView | None, plan: Plan) -> None:
        wallet = self.translator.wallet
        if view is not None and view.wallet is not None and wallet is not None and wallet != view.wallet:
            plan.add("balance", "USDT", view.wallet, wallet, "venue's balance taken (fills, fees, funding while away)")


__all__ = ["Action", "Plan", "Reconciler"]
