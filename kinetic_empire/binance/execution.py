"""The Binance execution port: OrderRequest / CancelRequest / CancelAllRequest from the bus become signed REST calls.

It is the live twin of :class:`~kinetic_empire.exchange.broker.SimulatedBroker`; nothing above it can
tell them apart (:class:`~kinetic_empire.core.ports.ExecutionPort`, one contract suite for both). Its verbs:
submit, cancel, cancel all, query order, positions, balances (plus reconcile). It places nothing on its
own: every order and cancel it sends came down the bus, through the risk gate and the journal.

Idempotency: every order carries ``newClientOrderId`` (``clientAlgoId`` for conditional orders) equal to
the request's deterministic client id. When a placement's outcome is unknown (timeout, 5xx, -1000,
-1007) the port waits ``unknown_grace_s``, looks the order up by that id, and only if the venue does not
know it sends it again, at most ``max_attempts`` times: an order is never placed twice and never lost.
A rejection is published once as :class:`OrderRejected` with the venue's code and message.

The journal is a gate: ``before_send(command)`` is called with the exact command right before every send and
raises (a :class:`KineticError`) unless that command is durable in the journal. A refused command is not sent:
an order is rejected with code 0 and a reason starting ``JOURNAL_UNAVAILABLE``, and ``on_refused`` is told (the
engine pauses entries). The grace
wait runs on the injected ``timer`` clock, so tests move time instead of waiting.

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
from ..core.events import CancelAllRequest, CancelRequest, OrderRequest
from ..core.ports import VenueBalance, VenueOrder, VenuePosition
from .errors import (
    AuthError,
    BinanceError,
    DuplicateOrderError,
    RejectedError,
    UnknownOrderError,
    UnknownStatusError,
)
from .rest import BinanceRest
from .translate import OrderState, UserTranslator, venue_balances, venue_order, venue_positions
from .wire import ALGO_PATH, ORDER_PATH, dec, order_params, order_status, query_params

log = logging.getLogger(__name__)

JOURNAL_REFUSED = 0  # OrderRejected.code of an order the journal could not make durable (reason: JOURNAL_UNAVAILABLE)


class BinanceExecution:
    """Places and cancels orders for the bus; reports every outcome through the translator."""

    def __init__(
        self,
        bus: EventBus,
        rest: BinanceRest,
        translator: UserTranslator,
        *,
        unknown_grace_s: float = 1.0,
        max_attempts: int = 3,
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
        self.max_attempts = max_attempts
        self._on_sent = on_sent
        self._before_send = before_send or (lambda command: None)
        self._on_refused = on_refused
        self.refused = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.placed = 0
        self.rejected = 0
        self.unknown_resolved = 0
        self.last_error: str = ""
        self._reported: set[tuple[int, str]] = set()
        self._cancel_all: dict[str, asyncio.Task[Any]] = {}  # symbol -> cancel-all in flight
        bus.subscribe(OrderRequest, self.on_request)
        bus.subscribe(CancelRequest, self.on_cancel)
        bus.subscribe(CancelAllRequest, self.on_cancel_all)

    # ------------------------------------------------------------------------------ bus handlers
    def on_request(self, r: OrderRequest) -> None:
        self.translator.expect(r)
        self._spawn(self._after(self._cancel_all.get(r.symbol), self.submit(r)))

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

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for in-flight requests (shutdown, tests)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    # ------------------------------------------------------------------------------ verbs
    async def submit(self, r: OrderRequest) -> None:
        """Place ``r``; resolve an unknown outcome by client id before any resend."""
        self.translator.expect(r)
        path, params = order_params(r)
        for attempt in range(1, self.max_attempts + 1):
            refusal = self._gate(r)  # the journal commits the request (and its intent) before it leaves
            if refusal is not None:
                self._reject_code(r, JOURNAL_REFUSED, refusal)
                return
            try:
                if self._on_sent is not None:
                    self._on_sent(r)
                data = await self.rest.signed("POST", path, params, idempotent=False)
            except DuplicateOrderError:
                log.info("order %s already open on the venue (-4116): treating as placed", r.client_order_id)
                if await self._lookup(r):
                    return
                continue
            except (RejectedError, AuthError) as exc:
                self._reject(r, exc)
                return
            except UnknownStatusError as exc:
                log.warning("order %s: outcome unknown (%s); looking it up by client id", r.client_order_id, exc)
                await self._timer.sleep(self.unknown_grace_s)
                if await self._lookup(r):
                    self.unknown_resolved += 1
                    return
                log.warning("order %s not on the venue: sending again (attempt %d)", r.client_order_id, attempt + 1)
                continue
            except BinanceError as exc:  # retries exhausted on a definite failure: the order was not placed
                self._reject(r, exc)
                return
            self.placed += 1
            self.translator.accepted(data)
            return
        self._reject_code(r, -1000, f"order outcome unknown after {self.max_attempts} attempts and not found")

    async def _lookup(self, r: OrderRequest) -> bool:
        """True if the venue knows the order (its acceptance and final state are published)."""
        path, params = query_params(r.symbol, r.client_order_id, r.order_type.is_conditional)
        try:
            data = await self.rest.signed("GET", path, params)
        except UnknownOrderError:
            return False
        self.translator.accepted(data)
        status = order_status(data)
        if status.is_terminal:
            st = self.translator.orders[r.client_order_id]
            if dec(data.get("executedQty")) > st.filled or (data.get("algoStatus") == "FINISHED"):
                await self.reconcile_fills(st)
            self.translator.finished(data)
        return True

    async def cancel(self, symbol: str, client_id: str, command: Any = None) -> bool:
        """Cancel by client id; an order already final is not an error (the stream says what happened).

        ``command`` is the bus's CancelRequest, passed to the journal gate (None: a direct call, no gate).
        """
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
        """Cancel every open order, plain and algo, on ``symbols`` (the stream reports each cancel)."""
        for symbol in symbols:
            for path in ("/fapi/v1/allOpenOrders", "/fapi/v1/algoOpenOrders"):
                if self._gate(command) is not None:
                    return
                try:
                    await self.rest.signed("DELETE", path, {"symbol": symbol})
                except BinanceError as exc:
                    self._report(exc, f"cancel all on {symbol}")

    async def query_order(self, symbol: str, client_id: str) -> VenueOrder | None:
        """The order with our client id (plain or algo), or None if the venue does not know it."""
        st = self.translator.orders.get(client_id)
        kinds = [st.algo] if st is not None else [False, True]
        for algo in kinds:
            path, params = query_params(symbol, client_id, algo)
            try:
                return venue_order(await self.rest.signed("GET", path, params))
            except UnknownOrderError:
                continue
        return None

    async def positions(self) -> list[VenuePosition]:
        """Every position row the venue reports (flat ones included), one-way mode."""
        return venue_positions(await self.rest.signed("GET", "/fapi/v2/positionRisk"))

    async def balances(self) -> list[VenueBalance]:
        return venue_balances(await self.rest.signed("GET", "/fapi/v2/balance"))

    # ------------------------------------------------------------------------------ reconcile
    async def reconcile(self, symbols: Iterable[str]) -> None:
        """After a user-stream gap: orders, fills, positions and balance by REST before trusting state."""
        symbols = list(symbols)
        open_ids: set[str] = set()
        for sym in symbols:
            for row in await self.rest.signed("GET", "/fapi/v1/openOrders", {"symbol": sym}):
                open_ids.add(str(row.get("clientOrderId")))
                self.translator.accepted(row)
            for row in await self.rest.signed("GET", "/fapi/v1/openAlgoOrders", {"symbol": sym}):
                open_ids.add(str(row.get("clientAlgoId")))
                self.translator.accepted(row)
        for st in list(self.translator.open_orders()):
            if st.client_id in open_ids and not st.algo:
                if st.order_id:
                    await self.reconcile_fills(st)
                continue
            if st.symbol not in symbols or st.client_id in open_ids:
                continue
            path, params = query_params(st.symbol, st.client_id, st.algo)
            try:
                data = await self.rest.signed("GET", path, params)
            except UnknownOrderError:
                continue  # never reached the venue: its placement task reports it
            self.translator.accepted(data)
            await self.reconcile_fills(st)
            self.translator.finished(data)
        now = self.rest.server_ms()
        self.translator.positions_snapshot(await self.positions(), symbols, 0)
        self.translator.balance_snapshot(await self.balances(), now)

    async def reconcile_fills(self, st: OrderState) -> int:
        """Fills of one order from userTrades that the stream did not deliver."""
        order_id = st.actual_id if st.algo else st.order_id
        if not order_id:
            if not st.algo:
                return 0
            data = await self.rest.signed("GET", ALGO_PATH, {"clientAlgoId": st.client_id})
            order_id = int(data.get("actualOrderId") or 0)
            if not order_id:
                return 0
            st.actual_id = order_id
        trades = await self.rest.signed("GET", "/fapi/v1/userTrades", {"symbol": st.symbol, "orderId": order_id})
        qty = st.quantity or Decimal(0)
        if st.algo or not qty:
            try:
                data = await self.rest.signed("GET", ORDER_PATH, {"symbol": st.symbol, "orderId": order_id})
                qty = dec(data.get("origQty"))
            except UnknownOrderError:
                qty = Decimal(0)
        return self.translator.trades_snapshot(st, trades, qty)

    # ------------------------------------------------------------------------------ reporting
    def _gate(self, command: Any) -> str | None:
        """None if ``command`` may leave (the journal holds it, committed); else why not (and it is not sent)."""
        if command is None:
            return None
        try:
            self._before_send(command)
        except KineticError as exc:
            self.refused += 1
            reason = str(exc)
            if self._on_refused is not None:
                self._on_refused(command, reason)
            return reason
        return None

    def _reject(self, r: OrderRequest, exc: BinanceError) -> None:
        self._reject_code(r, exc.code, exc.msg)
        self._report(exc, f"order {r.client_order_id} ({r.symbol} {r.side.value} {r.order_type.value})")

    def _reject_code(self, r: OrderRequest, code: int, msg: str) -> None:
        self.rejected += 1
        self.translator.rejected(r, code, msg)

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
