"""The Binance execution port: OrderRequest / CancelRequest from the bus become signed REST calls.

It is the live twin of :class:`~kinetic_empire.execution.simulated.SimulatedBroker`; nothing above it can
tell them apart. Its verbs: submit, cancel, cancel all, positions, balances (plus reconcile).

Idempotency: every order carries ``newClientOrderId`` (``clientAlgoId`` for conditional orders) equal to
the request's deterministic client id. When a placement's outcome is unknown (timeout, 5xx, -1000,
-1007) the port waits ``unknown_grace_s``, looks the order up by that id, and only if the venue does not
know it sends it again, at most ``max_attempts`` times: an order is never placed twice and never lost.
A rejection is published once as :class:`OrderRejected` with the venue's code and message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from ..core.bus import EventBus
from ..core.enums import OrderType, Side
from ..core.events import CancelRequest, OrderRequest
from .errors import (
    AuthError,
    BinanceError,
    DuplicateOrderError,
    RejectedError,
    UnknownOrderError,
    UnknownStatusError,
)
from .rest import BinanceRest
from .translate import OrderState, UserTranslator
from .wire import ALGO_PATH, ORDER_PATH, dec, order_params, order_status, query_params

log = logging.getLogger(__name__)


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
        before_send: Callable[[], None] | None = None,
    ) -> None:
        self._bus = bus
        self.rest = rest
        self.translator = translator
        self.unknown_grace_s = unknown_grace_s
        self.max_attempts = max_attempts
        self._on_sent = on_sent
        self._before_send = before_send or (lambda: None)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.placed = 0
        self.rejected = 0
        self.unknown_resolved = 0
        self.last_error: str = ""
        self._reported: set[tuple[int, str]] = set()
        bus.subscribe(OrderRequest, self.on_request)
        bus.subscribe(CancelRequest, self.on_cancel)

    # ------------------------------------------------------------------------------ bus handlers
    def on_request(self, r: OrderRequest) -> None:
        self.translator.expect(r)
        self._spawn(self.submit(r))

    def on_cancel(self, r: CancelRequest) -> None:
        self._spawn(self.cancel(r.symbol, r.client_order_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

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
        path, params = order_params(r)
        for attempt in range(1, self.max_attempts + 1):
            try:
                self._before_send()  # the journal commits the request (and its intent) before it leaves
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
                await asyncio.sleep(self.unknown_grace_s)
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

    async def cancel(self, symbol: str, client_id: str) -> bool:
        """Cancel by client id; an order already final is not an error (the stream says what happened)."""
        st = self.translator.orders.get(client_id)
        algo = st.algo if st is not None else None
        kinds = [algo] if algo is not None else [False, True]
        for is_algo in kinds:
            path, params = query_params(symbol, client_id, bool(is_algo))
            self._before_send()
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

    async def cancel_all(self, symbols: Iterable[str]) -> None:
        """Cancel every open order, plain and algo, on ``symbols``."""
        for symbol in symbols:
            for path in ("/fapi/v1/allOpenOrders", "/fapi/v1/algoOpenOrders"):
                try:
                    await self.rest.signed("DELETE", path, {"symbol": symbol})
                except BinanceError as exc:
                    self._report(exc, f"cancel all on {symbol}")

    async def positions(self) -> list[dict[str, Any]]:
        data = await self.rest.signed("GET", "/fapi/v2/positionRisk")
        return list(data)

    async def balances(self) -> list[dict[str, Any]]:
        data = await self.rest.signed("GET", "/fapi/v2/balance")
        return list(data)

    async def flatten(self, symbols: Iterable[str], prefix: str) -> list[str]:
        """Reduce-only market orders closing every position on ``symbols``; returns their client ids."""
        ids = []
        for row in await self.positions():
            sym = str(row.get("symbol"))
            qty = dec(row.get("positionAmt"))
            if sym not in symbols or qty == 0:
                continue
            cid = f"{prefix}-{sym}"[:36]
            side = Side.SELL if qty > 0 else Side.BUY
            r = OrderRequest(client_order_id=cid, intent_id=cid, strategy_id="shutdown", symbol=sym, side=side,
                             order_type=OrderType.MARKET, quantity=abs(qty), reduce_only=True, ts_event=0, ts_init=0)
            self._bus.publish(r)
            ids.append(cid)
        await self.drain()
        return ids

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


__all__ = ["ORDER_PATH", "BinanceExecution"]
