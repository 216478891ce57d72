"""The Binance execution port: OrderRequest / CancelRequest / CancelAllRequest from the bus become signed REST calls.

It is the live twin of :class:`~kinetic_empire.exchange.broker.SimulatedBroker`; nothing above it can
tell them apart (:class:`~kinetic_empire.core.ports.ExecutionPort`, one contract suite for both). Its verbs:
submit, cancel, cancel all, query order, positions, balances (plus reconcile). It places nothing on its
own: every order and cancel it sends came down the bus, through the risk gate and the journal.

Idempotency: every order carries ``newClientOrderId`` (``clientAlgoId`` for conditional orders) equal to
the request's deterministic client id. A rejection is published once as :class:`OrderRejected` with the
venue's code and message.

Unknown outcome (timeout, 5xx, -1000, -1006, -1007, or -4116 "client id duplicated"): Binance says the
order may or may not have executed, and one that did may not be queryable at once. The policy, which can
never double a position because **an order whose outcome is unknown is never sent again, whatever its type**
(market or not, reduce-only closes included):

1. look the order up by client id after ``unknown_grace_s``, then again with the wait doubling up to
   ``unknown_backoff_max_s``, until ``unknown_bound_s`` has passed on the injected timer (by default 60
   grace periods: 60 s); before each look-up the user stream's word counts too (an accepted, filled or final
   order is resolved without asking). Every error a look-up can get (-2013/-2011, any other code, 5xx,
   rate limits, a reply of the wrong shape) means "not known yet", never an escape;
2. found: its acceptance, fills and final state are published as if the reply had arrived;
3. not found when the bound passes: the venue's position on the symbol is read. The order is closed as
   :class:`OrderRejected` (code of the original error, reason ``UNKNOWN_OUTCOME ... not resent``) and an
   :class:`Alert` (``order_outcome_unknown``; critical if the position differs from the engine's belief)
   tells the operator; ``on_unknown(symbol)`` asks the engine for a reconciliation, which adopts or flags
   whatever the venue holds, and a fill the stream delivers later is still booked. A lost protective stop
   is re-placed by reconciliation under a new client id, through the risk gate.

A placement task never ends silently: whatever escapes it is reported as OrderRejected (if the order is
not known to the venue) and an Alert. Reconciliation looks up an order the venue's open-order lists do not
show at most ``lookup_misses`` times; then it is closed as rejected with an Alert, never retried forever.
At shutdown the look-ups stop (``drain(abandon_lookups=True)``): the journal holds the order as sent without
an answer, and the next start looks it up before trading.

The journal is a gate: ``before_send(command)`` runs with the exact command right before every send and raises
(a :class:`KineticError`) unless the command is durable in the journal. A refused command is not sent: an order
is rejected with code 0 and reason ``JOURNAL_UNAVAILABLE...``, and ``on_refused`` is told (entries pause).
Waits run on the injected ``timer`` clock, so tests move time instead of waiting.

Order: an order or cancel for a symbol published after a cancel-all on it is sent after the cancel-all
has been answered, so a flatten's closing orders are never caught by its own cancel-all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from ..core.bus import EventBus
from ..core.clock import Clock, LiveClock
from ..core.errors import KineticError
from ..core.events import CancelAllRequest, CancelRequest, OrderOutcomeUnknown, OrderRequest
from ..core.ports import VenueBalance, VenueOrder, VenuePosition
from .errors import AuthError, BinanceError, DuplicateOrderError, RejectedError, UnknownOrderError, UnknownStatusError
from .first_step import UNSENT, FirstStep, first_step
from .rest import BinanceRest
from .snapshots import HEDGE_SIDES, venue_balances, venue_order, venue_positions
from .translate import OrderState, UserTranslator
from .venue_reconcile import VenueReconcile, read_fills
from .wire import ORDER_PATH, WireError, order_params, query_params

log = logging.getLogger(__name__)

JOURNAL_REFUSED = 0  # OrderRejected.code of an order the journal could not make durable (reason: JOURNAL_UNAVAILABLE)
HEDGE_MODE_REJECTION = -4061  # "Order's position side does not match user's setting.": the account is in hedge mode


class BinanceExecution:
    """Places and cancels orders for the bus; reports every outcome through the translator."""

    def __init__(
        self,
        bus: EventBus,
        rest: BinanceRest,
        translator: UserTranslator,
        *,
        unknown_grace_s: float = 1.0,
        unknown_bound_s: float | None = None,
        unknown_backoff_max_s: float = 10.0,
        lookup_misses: int = 3,
        on_unknown: Callable[[str], None] | None = None,
        on_sent: Callable[[OrderRequest], None] | None = None,
        before_send: Callable[[Any], None] | None = None,
        on_refused: Callable[[Any, str], None] | None = None,
        timer: Clock | None = None,
    ) -> None:
        self._bus = bus
        self._timer = timer or LiveClock()
        self.rest = rest
        self.translator = translator
        self.unknown_grace_s = unknown_grace_s
        self.unknown_bound_s = 60 * unknown_grace_s if unknown_bound_s is None else unknown_bound_s
        self.unknown_backoff_max_s = unknown_backoff_max_s
        self.lookup_misses = lookup_misses
        self._on_unknown = on_unknown
        self.placed = self.rejected = self.refused = 0  # counters (status, tests)
        self.unknown_lookups = self.unknown_resolved = self.unknown_unresolved = 0
        self._placing: set[str] = set()  # client ids whose placement task runs
        self._looking_up: dict[str, asyncio.Task[Any]] = {}  # client id -> the task looking its outcome up
        self._on_sent = on_sent
        self._before_send = before_send or (lambda command: None)
        self._journaled = before_send is not None  # a journal gates every send: a cancel needs its command
        self._on_refused = on_refused
        self._tasks: set[asyncio.Task[Any]] = set()
        self.last_error: str = ""
        self._reported: set[tuple[int, str]] = set()
        self._cancel_all: dict[str, asyncio.Task[Any]] = {}  # symbol -> cancel-all in flight
        self._venue = VenueReconcile(rest, translator, positions=self.positions, balances=self.balances,
                                     placing=self._placing.__contains__, on_closed=self._closed_missing,
                                     lookup_misses=lookup_misses)
        bus.subscribe(OrderRequest, self.on_request)
        bus.subscribe(CancelRequest, self.on_cancel)
        bus.subscribe(CancelAllRequest, self.on_cancel_all)

    # ------------------------------------------------------------------------------ bus handlers
    def on_request(self, r: OrderRequest) -> None:
        pending = self._cancel_all.get(r.symbol)
        if pending is not None:
            self.translator.expect(r)
            self._spawn(self._after(pending, self.submit(r)))
            return
        cid = r.client_order_id
        self._placing.add(cid)  # before it can leave: reconciliation waits for it from now on
        first = self._send_now(r)
        # registered after the write, still inside this handler: no reply or stream message is read before it
        # returns (the loop does not run), and the write does not wait for it
        self.translator.expect(r)
        task = self._spawn(self.submit(r, first))
        placing, started = self._placing, first.started

        def ended(t: asyncio.Task[Any]) -> None:  # also when cancelled before it ran
            placing.discard(cid)
            if started is not None:
                started.abandon()  # a no-op once its answer was read

        task.add_done_callback(ended)

    def _send_now(self, r: OrderRequest) -> FirstStep:
        """The placement's first step, inside the handler (no loop turn before the order leaves; :mod:`.first_step`)."""
        return first_step(r, self.rest, self._before_send, self._on_sent)

    def on_cancel(self, r: CancelRequest) -> None:
        self._spawn(self._after(self._cancel_all.get(r.symbol), self.cancel(r.symbol, r.client_order_id, r)))

    def on_cancel_all(self, r: CancelAllRequest) -> None:
        symbol = r.symbol
        task = self._spawn(self._after(self._cancel_all.get(symbol), self.cancel_all([symbol], r)))
        self._cancel_all[symbol] = task

        def forget(t: asyncio.Task[Any]) -> None:
            if self._cancel_all.get(symbol) is t:
                del self._cancel_all[symbol]

        task.add_done_callback(forget)

    @staticmethod
    async def _after(pending: asyncio.Task[Any] | None, coro: Any) -> Any:
        """Run ``coro`` once the cancel-all published before it (if any) has been answered."""
        if pending is not None:
            await asyncio.wait({pending})
        return await coro

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("execution task failed: %r", task.exception(), exc_info=task.exception())

    @property
    def busy(self) -> int:
        """Requests still in flight."""
        return len(self._tasks)

    def in_flight(self, symbol: str) -> int:
        """Orders on ``symbol`` whose placement task has not ended (reconciliation waits for them)."""
        orders = self.translator.orders
        return sum(1 for cid in self._placing if (st := orders.get(cid)) is not None and st.symbol == symbol)

    async def drain(self, timeout: float = 30.0, *, abandon_lookups: bool = False) -> None:
        """Wait for in-flight requests (shutdown, tests); ``abandon_lookups``: first stop the look-ups of unknown
        outcomes (module docstring), which would otherwise hold a stop for up to ``unknown_bound_s``."""
        if abandon_lookups:
            for cid, task in list(self._looking_up.items()):
                log.warning("order %s: outcome still unknown at shutdown; not resent; the next start looks it up", cid)
                task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    # ------------------------------------------------------------------------------ verbs
    async def submit(self, r: OrderRequest, first: FirstStep | None = None) -> None:
        """Place ``r`` once; an unknown outcome is resolved by looking it up, never by sending it again. ``first``:
        what :meth:`on_request` did already (the journal gate, the request written)."""
        cid = r.client_order_id
        self._placing.add(cid)
        try:
            await self._submit(r, first or UNSENT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a placement task never ends without a word: a rejection and/or an Alert
            log.error("order %s: placement task failed", cid, exc_info=exc)
            st = self.translator.orders.get(cid)
            known = st is not None and (st.accepted or st.terminal)
            if not known:
                self._reject_code(r, -1000, f"INTERNAL {type(exc).__name__}: {exc}; not resent")
            self._alert("order_task_failed", f"order {cid} ({r.symbol}): placement failed with {type(exc).__name__}: "
                        f"{exc}; {'its state follows the venue' if known else 'closed as rejected, not resent'}; "
                        "reconciliation checks the venue", r.symbol, "critical")
        finally:
            self._placing.discard(cid)

    async def _submit(self, r: OrderRequest, first: FirstStep) -> None:
        self.translator.expect(r)
        path, params = order_params(r)
        if first.refused is not None:
            refusal: str | None = self._refusal(r, first.refused)
        else:  # the journal commits the request (and its intent) before it leaves
            refusal = None if first.gated else self._gate(r)
        if refusal is not None:
            self._reject_code(r, JOURNAL_REFUSED, refusal)
            return
        if first.error is not None:
            raise first.error
        try:
            if first.started is not None:
                data = await first.started.answer()
            else:
                if self._on_sent is not None and not first.told:
                    self._on_sent(r)
                data = await self.rest.signed("POST", path, params, idempotent=False)
        except DuplicateOrderError as exc:
            log.info("order %s already on the venue (-4116): looking it up", r.client_order_id)
            await self._resolve_unknown(r, exc)
            return
        except (RejectedError, AuthError) as exc:
            self._reject(r, exc)
            return
        except UnknownStatusError as exc:
            log.warning("order %s: outcome unknown (%s); looking it up by client id, never resending",
                        r.client_order_id, exc)
            await self._resolve_unknown(r, exc)
            return
        except BinanceError as exc:  # retries exhausted on a definite failure: the order was not placed
            self._reject(r, exc)
            return
        self.placed += 1
        try:
            self.translator.accepted(data)
        except WireError as exc:  # placed, but the reply is not the shape we read: the look-up says what it is
            log.warning("order %s: placement reply unreadable (%s); looking it up", r.client_order_id, exc)
            await self._resolve_unknown(r, BinanceError(-1000, f"unreadable placement reply: {exc}", 200))

    async def _resolve_unknown(self, r: OrderRequest, cause: BinanceError) -> None:
        """The unknown-outcome policy (module docstring): look up until found or the bound passes; never resend."""
        timer = self._timer
        now = timer.now_ms()
        opens = not (r.reduce_only or r.close_position or r.order_type.is_conditional)
        self._bus.publish(OrderOutcomeUnknown(client_order_id=r.client_order_id, symbol=r.symbol, opens=opens,
                                              reason=f"{cause.code}: {cause.msg}", ts_event=now, ts_init=now))
        deadline = timer.monotonic() + self.unknown_bound_s
        wait = self.unknown_grace_s
        lookups = 0
        cid = r.client_order_id
        task = asyncio.current_task()
        if task is not None:
            self._looking_up[cid] = task
        try:
            while True:
                await timer.sleep(max(0.0, wait))
                if self._heard(cid) or await self._lookup(r):
                    self.unknown_resolved += 1
                    return
                lookups += 1
                left = deadline - timer.monotonic()
                if left <= 0:
                    break
                wait = min(wait * 2, self.unknown_backoff_max_s, left)
        finally:
            self._looking_up.pop(cid, None)
        await self._unresolved(r, cause, lookups)

    def _heard(self, cid: str) -> bool:
        """The user stream (or a reconciliation) has said something about the order since it was sent."""
        st = self.translator.orders.get(cid)
        return st is not None and (st.accepted or st.terminal or st.filled > 0)

    async def _unresolved(self, r: OrderRequest, cause: BinanceError, lookups: int) -> None:
        """The bound passed and the venue never showed the order: close it, say so, ask for a reconciliation."""
        self.unknown_unresolved += 1
        believed = self.translator.positions.get(r.symbol, (Decimal(0), Decimal(0)))[0]
        try:
            rows = await self.rest.signed("GET", "/fapi/v2/positionRisk", {"symbol": r.symbol})
            venue = next((p.quantity for p in venue_positions(rows) if p.symbol == r.symbol), Decimal(0))
            position = f"venue position {venue}, engine believes {believed}"
            moved = venue != believed
        except (BinanceError, WireError) as exc:
            position, moved = f"position not readable ({exc})", True
        if self._heard(r.client_order_id):  # the stream spoke while the position was read
            self.unknown_resolved += 1
            return
        what = f"{r.side.value} {r.order_type.value} {r.quantity if r.quantity is not None else 'close-position'}"
        self._reject_code(r, cause.code, f"UNKNOWN_OUTCOME {cause.msg}: not found by client id in {lookups} "
                          f"look-ups over {self.unknown_bound_s:g} s; not resent")
        self._alert("order_outcome_unknown",
                    f"order {r.client_order_id} ({r.symbol} {what}): outcome unknown after {lookups} look-ups over "
                    f"{self.unknown_bound_s:g} s ({position}); closed as rejected and not resent; reconciliation "
                    "adopts or flags what the venue holds, and a late fill is still booked",
                    r.symbol, "critical" if moved else "warning")
        if self._on_unknown is not None:
            self._on_unknown(r.symbol)

    async def _lookup(self, r: OrderRequest) -> bool:
        """True if the venue knows the order (its acceptance, fills and final state are then published).

        Every failure (unknown order, any other code, 5xx, rate limit, an odd reply) is "not known yet"."""
        path, params = query_params(r.symbol, r.client_order_id, r.order_type.is_conditional)
        self.unknown_lookups += 1
        try:
            data = await self.rest.signed("GET", path, params)
            self.translator.accepted(data)
        except UnknownOrderError:
            return False
        except (BinanceError, WireError) as exc:
            log.warning("order %s: look-up failed (%s); counted as not found yet", r.client_order_id, exc)
            return False
        await self._settle(data, self.translator.orders[r.client_order_id])
        return True

    async def _settle(self, data: Any, st: OrderState) -> None:
        """A looked-up order's fills, final state and position, applied together (:meth:`VenueReconcile.settle`)."""
        await self._venue.settle(data, st)

    async def cancel(self, symbol: str, client_id: str, command: Any = None) -> bool:
        """Cancel by client id; an order already final is not an error (the stream says what happened).

        ``command`` is the bus's CancelRequest, passed to the journal gate. A direct call (None) is sent only by
        a port without a journal (backtest, contract suite); with one it is refused, since nothing journaled it.
        """
        if self._unjournaled(command, f"cancel {client_id}"):
            return False
        st = self.translator.orders.get(client_id)
        algo = st.algo if st is not None else None
        kinds = [algo] if algo is not None else [False, True]
        for is_algo in kinds:
            path, params = query_params(symbol, client_id, bool(is_algo))
            if self._gate(command) is not None:
                return False
            try:
                data = await self.rest.signed("DELETE", path, params)
            except UnknownOrderError:
                continue
            except BinanceError as exc:
                self._report(exc, f"cancel {client_id}")
                return False
            if "algoId" in data:
                data = {**data, "symbol": symbol, "algoStatus": "CANCELED"}
            self.translator.finished(data)
            return True
        log.debug("cancel %s: already final or unknown on the venue", client_id)
        return False

    async def cancel_all(self, symbols: Iterable[str], command: Any = None) -> None:
        """Cancel every open order, plain and algo, on ``symbols`` (the stream reports each cancel); a direct call
        (``command`` None) is refused when a journal gates sends, as :meth:`cancel`."""
        symbols = list(symbols)
        if self._unjournaled(command, f"cancel all on {', '.join(symbols)}"):
            return
        for symbol in symbols:
            for path in ("/fapi/v1/allOpenOrders", "/fapi/v1/algoOpenOrders"):
                if self._gate(command) is not None:
                    return
                try:
                    await self.rest.signed("DELETE", path, {"symbol": symbol})
                except BinanceError as exc:
                    self._report(exc, f"cancel all on {symbol}")

    def _unjournaled(self, command: Any, what: str) -> bool:
        """True (and not sent) for a direct call on a journaled port: its command must come down the bus."""
        if command is not None or not self._journaled:
            return False
        self.refused += 1
        log.error("%s called without its command while a journal gates sends: not sent (publish a CancelRequest "
                  "or CancelAllRequest: the risk gate and the journal pass it first)", what)
        return True

    async def query_order(self, symbol: str, client_id: str) -> VenueOrder | None:
        """The order with our client id (plain or algo), or None if the venue does not know it."""
        st = self.translator.orders.get(client_id)
        kinds = [st.algo] if st is not None else [False, True]
        for algo in kinds:
            path, params = query_params(symbol, client_id, algo)
            try:
                return venue_order(await self.rest.signed("GET", path, params))
            except RejectedError as exc:  # -2013/-2011, or another "no such order" code the venue may use
                if not isinstance(exc, UnknownOrderError):
                    log.info("query of %s (%s) answered %s: not known there", client_id, path, exc)
                continue
        return None

    async def positions(self) -> list[VenuePosition]:
        """Every position row the venue reports (flat ones included), one-way mode; a hedge-mode row (LONG or
        SHORT) tells the translator the account is in hedge mode (an Alert)."""
        rows = await self.rest.signed("GET", "/fapi/v2/positionRisk")
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and row.get("positionSide") in HEDGE_SIDES:
                self.translator.hedge_seen(str(row.get("symbol")), f"{row.get('symbol')} {row.get('positionSide')} row")
                break
        return venue_positions(rows)

    async def balances(self) -> list[VenueBalance]:
        return venue_balances(await self.rest.signed("GET", "/fapi/v2/balance"))

    # ------------------------------------------------------------------------------ reconcile
    async def reconcile(self, symbols: Iterable[str]) -> None:
        """After a user-stream gap: orders, fills, positions and balance by REST before trusting state, read first
        and applied together (:mod:`.venue_reconcile`), so no handler sees a fill without its position."""
        await self._venue.reconcile(symbols)

    async def reconcile_fills(self, st: OrderState) -> int:
        """Fills of one order from userTrades that the stream did not deliver."""
        got = await read_fills(self.rest, st)
        return 0 if got is None else self.translator.trades_snapshot(st, *got)

    def _closed_missing(self) -> None:
        self.rejected += 1

    # ------------------------------------------------------------------------------ reporting
    def _gate(self, command: Any) -> str | None:
        """None if ``command`` may leave (the journal holds it, committed); else why not (and it is not sent)."""
        if command is None:
            return None
        try:
            self._before_send(command)
        except KineticError as exc:
            return self._refusal(command, exc)
        return None

    def _refusal(self, command: Any, exc: KineticError) -> str:
        """Count a command the journal refused and tell ``on_refused``; the reason."""
        self.refused += 1
        reason = str(exc)
        if self._on_refused is not None:
            self._on_refused(command, reason)
        return reason

    def _reject(self, r: OrderRequest, exc: BinanceError) -> None:
        self._reject_code(r, exc.code, exc.msg)
        if exc.code == HEDGE_MODE_REJECTION:
            self.translator.hedge_seen(r.symbol, f"{r.symbol} order refused with -4061")
        self._report(exc, f"order {r.client_order_id} ({r.symbol} {r.side.value} {r.order_type.value})")

    def _reject_code(self, r: OrderRequest, code: int, msg: str) -> None:
        self.rejected += 1
        self.translator.rejected(r, code, msg)

    def _alert(self, kind: str, message: str, symbol: str | None = None, severity: str = "warning") -> None:
        self.translator.alert(kind, message, symbol, severity)

    def _report(self, exc: BinanceError, what: str) -> None:
        """Log a venue error once per (code, message): the journal has every occurrence."""
        self.last_error = f"{exc.code}: {exc.msg}"
        key = (exc.code, exc.msg)
        if key in self._reported:
            log.info("%s rejected by the venue: %s", what, exc)
            return
        self._reported.add(key)
        log.warning("%s rejected by the venue: %s", what, exc)


__all__ = ["JOURNAL_REFUSED", "ORDER_PATH", "BinanceExecution"]
