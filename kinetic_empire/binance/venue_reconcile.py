"""The port's REST reconciliation: every read first, then every fact applied at once.

After a user-stream gap (and at start, resume and on a timer) the engine asks the venue what it missed: open
orders (plain and algo), the final state and fills of orders it believed open, positions and the balance.
The pass reads all of it before it applies any of it, and then applies it in one synchronous step (fills,
final states, positions, balance), with no ``await`` in between. Nothing on the bus can therefore see a fill
without the position that includes it: before, fills were published as they were read, and the positions
were fetched afterwards, so for the length of a round trip the account held the exit's fill but not the
position change, and a strategy's CLOSE on a kline handled meanwhile could go out again (the soak's duplicate
exits). Positions are read after the fills, so the position applied includes at least every fill applied with
it (a fill that lands between the two reads comes later, by the stream or the next pass).

Acceptances are applied as they are read (an order's id is needed to read its fills; an acceptance moves no
position). An order the venue's lists do not show is looked up by client id; one not found in
``lookup_misses`` passes is closed as rejected with an Alert (never resent); one whose placement task is still
running is left to it.

An order of unknown outcome that the port's look-up finds finished (:meth:`VenueReconcile.settle`) gets the
same treatment on its symbol: its fills, its final state and the position read after them, applied together.
If any of those reads fails, none of it is applied: the order stays open in the engine's books, and the next
pass (or the user stream) brings its fills with their position.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from ..core.ports import VenueBalance, VenuePosition
from .errors import BinanceError, RejectedError
from .rest import BinanceRest
from .translate import OrderState, UserTranslator
from .wire import ALGO_PATH, ORDER_PATH, WireError, dec, order_status, query_params

log = logging.getLogger(__name__)
ZERO = Decimal(0)


async def read_fills(rest: BinanceRest, st: OrderState) -> tuple[list[Any], Decimal] | None:
    """One order's trades from userTrades and its requested quantity (None: no order id to read them by).

    A conditional order's fills belong to the plain order it triggered (``actualOrderId``), linked here."""
    order_id = st.actual_id if st.algo else st.order_id
    if not order_id:
        if not st.algo:
            return None
        try:
            data = await rest.signed("GET", ALGO_PATH, {"clientAlgoId": st.client_id})
        except RejectedError:
            return None
        order_id = int(data.get("actualOrderId") or 0)
        if not order_id:
            return None
        st.actual_id = order_id
    trades = await rest.signed("GET", "/fapi/v1/userTrades", {"symbol": st.symbol, "orderId": order_id})
    qty = st.quantity or ZERO
    if st.algo or not qty:
        try:
            data = await rest.signed("GET", ORDER_PATH, {"symbol": st.symbol, "orderId": order_id})
            qty = dec(data.get("origQty"))
        except RejectedError:
            qty = ZERO
    return list(trades or []), qty


@dataclass
class _Reads:
    """What one pass read, in the order it is applied."""

    symbols: list[str]
    steps: list[Callable[[], object]] = field(default_factory=list)
    positions: list[VenuePosition] = field(default_factory=list)
    balances: list[VenueBalance] = field(default_factory=list)
    now: int = 0


class VenueReconcile:
    """The REST pass of :class:`~kinetic_empire.binance.execution.BinanceExecution` (see the module docstring)."""

    def __init__(
        self,
        rest: BinanceRest,
        translator: UserTranslator,
        *,
        positions: Callable[[], Awaitable[list[VenuePosition]]],
        balances: Callable[[], Awaitable[list[VenueBalance]]],
        placing: Callable[[str], bool],
        on_closed: Callable[[], None],
        lookup_misses: int = 3,
    ) -> None:
        self.rest = rest
        self.translator = translator
        self._positions = positions
        self._balances = balances
        self._placing = placing  # client id -> its placement task still runs (it resolves the order itself)
        self._on_closed = on_closed  # an order was closed as rejected after too many misses (the port counts it)
        self.lookup_misses = lookup_misses
        self._misses: dict[str, int] = {}  # client id -> passes that did not find it

    async def reconcile(self, symbols: Iterable[str]) -> None:
        """Orders, fills, positions and balance by REST; read first, then applied together."""
        reads = await self._read(list(symbols))
        for apply in reads.steps:  # from here to the end: no await, so no handler sees half of it
            apply()
        tr = self.translator
        tr.positions_snapshot(reads.positions, reads.symbols, 0)
        tr.balance_snapshot(reads.balances, reads.now)

    async def settle(self, data: Mapping[str, Any], st: OrderState) -> None:
        """A looked-up order's fills the stream did not deliver, its final state and its symbol's position, in one
        step (module docstring): before, the fills were published and the position was left to the stream, so a
        decision in between saw an exit's fill and the position from before it."""
        if not order_status(data).is_terminal:
            return
        reads = _Reads([st.symbol])
        position_read = False
        if dec(data.get("executedQty")) > st.filled or data.get("algoStatus") == "FINISHED":
            try:
                await self._fills(st, reads)
                reads.positions = [p for p in await self._positions() if p.symbol == st.symbol]
                position_read = True
            except (BinanceError, WireError) as exc:
                log.warning("order %s: fills or position not read (%s); left open for the next reconciliation",
                            st.client_id, exc)
                return
        for apply in reads.steps:  # from here to the end: no await
            apply()
        self.translator.finished(data)
        if position_read:  # read after the fills: it includes at least those
            self.translator.positions_snapshot(reads.positions, reads.symbols, 0)

    async def _read(self, symbols: list[str]) -> _Reads:
        tr = self.translator
        reads = _Reads(symbols)
        open_ids: set[str] = set()
        plain: dict[str, int] = {}  # client id -> order id of the open plain orders
        for sym in symbols:
            for row in await self.rest.signed("GET", "/fapi/v1/openOrders", {"symbol": sym}):
                cid = str(row.get("clientOrderId"))
                open_ids.add(cid)
                plain[cid] = int(row.get("orderId") or 0)
                st = tr.orders.get(cid)
                if st is None or not st.algo:  # not the plain order a conditional of ours triggered
                    tr.accepted(row)
            for row in await self.rest.signed("GET", "/fapi/v1/openAlgoOrders", {"symbol": sym}):
                open_ids.add(str(row.get("clientAlgoId")))
                tr.accepted(row)
        for st in list(tr.open_orders()):
            if st.client_id in open_ids and not st.algo:
                if st.order_id:
                    await self._fills(st, reads)
                continue
            if st.algo and plain.get(st.client_id):  # a conditional that triggered while we were away and is
                st.actual_id = st.actual_id or plain[st.client_id]  # still filling: its fills so far, by its order
                await self._fills(st, reads)
                continue
            if st.symbol not in symbols or st.client_id in open_ids or self._placing(st.client_id):
                continue
            path, params = query_params(st.symbol, st.client_id, st.algo)
            try:
                data = await self.rest.signed("GET", path, params)
                tr.accepted(data)
            except (RejectedError, WireError) as exc:  # -2013 or any other answer meaning "not here"
                reads.steps.append(partial(self._missed, st, exc))
                continue
            self._misses.pop(st.client_id, None)
            await self._fills(st, reads)
            reads.steps.append(partial(tr.finished, data))
        reads.now = self.rest.server_ms()
        reads.positions = await self._positions()  # after the fills: it includes at least those
        reads.balances = await self._balances()
        return reads

    async def _fills(self, st: OrderState, reads: _Reads) -> None:
        got = await read_fills(self.rest, st)
        if got is not None:
            trades, qty = got
            reads.steps.append(partial(self.translator.trades_snapshot, st, trades, qty))

    def _missed(self, st: OrderState, exc: Exception) -> None:
        """An order we believe open that the venue does not show; after ``lookup_misses`` passes it is closed."""
        if st.terminal:
            return
        n = self._misses[st.client_id] = self._misses.get(st.client_id, 0) + 1
        if n < self.lookup_misses:
            log.info("order %s not found on the venue (%s); pass %d of %d", st.client_id, exc, n, self.lookup_misses)
            return
        del self._misses[st.client_id]
        self._on_closed()
        tr = self.translator
        tr.closed_as_rejected(st, -2013, f"not found on the venue in {n} reconciliations ({exc}); closed, not resent")
        tr.alert("order_not_found", f"order {st.client_id} ({st.symbol}) was not found on the venue in {n} "
                 "reconciliations; closed as rejected (never resent)", st.symbol)


__all__ = ["VenueReconcile", "read_fills"]
