"""The gateway's write side: manual orders, cancels and operator controls, each as a bus command.

Nothing here calls the execution port or changes state directly. A manual order is an
:class:`~kinetic_empire.core.events.OrderIntent` of the strategy ``manual``: the journal records it, the risk
manager sizes, rounds and checks it (or denies it), the journal commits its requests and only then does
the port send them. A cancel is a :class:`CancelRequest`; pause, resume, halt, flatten and cancel-all are
:class:`OperatorCommand` events for the risk gate's operator desk. Every check that can refuse a request
(unknown symbol, duplicate id, finished order) runs before anything is published, so a refused request
leaves no trace in the journal and nothing reaches the venue.

Waiting for the venue's answer runs on the engine's timer, never the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.enums import IntentAction
from ..core.events import OperatorCommand, OrderIntent, OrderRequest, RiskDenied
from ..risk import ids
from ..risk.operator import OperatorDesk
from .orders import PENDING, TERMINAL, OrderRow, OrderTable
from .schemas import ApiError, CancelBody, ControlBody, OrderBody

if TYPE_CHECKING:
    from ..live.app import LiveEngine

MANUAL = "manual"
DENIED = "DENIED"  # a manual order the risk manager refused (journaled with its RiskDenied)
OPERATOR = "operator"


class OperatorCommands:
    """Turns validated API requests into journaled bus commands and reports what became of them."""

    def __init__(self, engine: LiveEngine, orders: OrderTable, risk_view: Callable[[], dict[str, Any]], *,
                 answer_timeout_s: float = 10.0) -> None:
        self.engine = engine
        self.orders = orders
        self.risk_view = risk_view
        self.answer_timeout_s = answer_timeout_s
        self._intent_seq = 0
        self._used_ids: set[str] = set()
        view = engine.resume_view
        if view is not None:  # a resumed run: no manual id of an earlier process may repeat
            self._used_ids.update(view.intents)
            self._used_ids.update(view.requests)
        self._requests: dict[str, list[OrderRequest]] = {}  # intent id -> requests, while deciding
        self._denials: dict[str, RiskDenied] = {}
        self._changed: dict[str, asyncio.Event] = {}  # client id -> woken on each change of its row
        self.placed = 0
        self.denied = 0
        self.desk: OperatorDesk | None = None  # set when the gateway attaches to the bus

    # ------------------------------------------------------------------------------ bus readers
    def on_request(self, r: OrderRequest) -> None:
        watch = self._requests.get(r.intent_id)
        if watch is not None:
            watch.append(r)

    def on_denied(self, d: RiskDenied) -> None:
        if d.intent_id in self._requests:
            self._denials[d.intent_id] = d

    def on_row(self, row: OrderRow) -> None:
        event = self._changed.get(row.client_order_id)
        if event is not None:
            event.set()

    # ------------------------------------------------------------------------------ manual orders
    def _check_symbol(self, symbol: str) -> None:
        if symbol not in self.engine.rules or symbol not in self.engine.symbols:
            raise ApiError(422, f"unknown symbol {symbol}: this run trades {', '.join(self.engine.symbols)}",
                           "symbol")

    def _intent_id(self, given: str | None) -> str:
        if given is not None:
            if given in self._used_ids or ids.client_id(given, ids.ENTRY) in self.orders.rows:
                raise ApiError(409, f"client_order_id {given} was already used in this run", "client_order_id")
            return given
        while True:
            self._intent_seq += 1
            candidate = f"{self.engine.tag}m{self.engine.clock.now_ms() // 1000 % 10**7}{self._intent_seq}"
            if candidate not in self._used_ids:
                return candidate

    async def place(self, body: OrderBody) -> tuple[int, dict[str, Any]]:
        """Publish the manual intent; (200, answer) once the venue has answered its entry order (or the risk
        manager denied it), (202, answer) when the venue has not answered within the timeout."""
        e = self.engine
        self._check_symbol(body.symbol)
        if not e.started:
            raise ApiError(503, "the engine is not trading", None)
        position = e.portfolio.position(body.symbol).quantity
        if body.reduce_only:
            if position == 0:
                raise ApiError(409, f"reduce_only: no {body.symbol} position to reduce", "reduce_only")
            if (position > 0) == (body.side == "BUY"):
                raise ApiError(422, f"reduce_only {body.side} would grow the {body.symbol} position {position}",
                               "side")
            if body.price is not None or body.stop_price is not None or body.take_profit_price is not None:
                raise ApiError(422, "reduce_only orders are market orders: no price, stop_price or "
                               "take_profit_price", "reduce_only")
        reference = float(body.price) if body.price is not None else e.portfolio.last_price(body.symbol)
        if not reference:
            raise ApiError(409, f"no market price for {body.symbol} yet: wait for its first kline", "symbol")
        intent_id = self._intent_id(body.client_order_id)
        now = e.clock.now_ms()
        action = (IntentAction.REDUCE if body.reduce_only else
                  IntentAction.OPEN_LONG if body.side == "BUY" else IntentAction.OPEN_SHORT)
        intent = OrderIntent(
            intent_id=intent_id, strategy_id=MANUAL, symbol=body.symbol, action=action, quantity=body.quantity,
            stop_loss=_f(body.stop_price), take_profit=_f(body.take_profit_price), limit_price=_f(body.price),
            reference_price=reference, tag="manual order via the operator API", ts_event=now, ts_init=now,
        )
        self._used_ids.add(intent_id)
        requests: list[OrderRequest] = []
        self._requests[intent_id] = requests
        try:
            e.bus.publish(intent)  # journal, then the risk manager: requests or one denial, synchronously
            denial = self._denials.pop(intent_id, None)
        finally:
            self._requests.pop(intent_id, None)
        if denial is not None:  # an answer, not a refusal: the intent and its denial are journaled
            self.denied += 1
            return 200, {"intent_id": intent_id, "client_order_id": None, "client_order_ids": [], "order_id": None,
                         "state": DENIED, "order": None, "adjustments": [],
                         "denial": {"code": denial.code, "message": denial.message}}
        if not requests:
            return 500, {"error": "the risk manager neither placed nor denied the order", "intent_id": intent_id}
        self.placed += 1
        main = requests[-1]  # the entry (a flip's close comes first)
        row = await self._await(main.client_order_id, lambda r: r.state != PENDING)
        answer = {
            "intent_id": intent_id, "client_order_id": main.client_order_id,
            "client_order_ids": [r.client_order_id for r in requests],
            "order_id": row.order_id or None if row else None, "state": row.state if row else PENDING,
            "order": row.to_json() if row else None,
            "adjustments": list(main.adjustments), "denial": None,
        }
        return (200 if row is not None and row.state != PENDING else 202), answer

    # ------------------------------------------------------------------------------ cancel
    async def cancel(self, body: CancelBody) -> tuple[int, dict[str, Any]]:
        row = self.orders.get(body.client_order_id)
        if row is None:
            raise ApiError(404, f"no order {body.client_order_id} in this run", "client_order_id")
        if row.state in TERMINAL:
            raise ApiError(409, f"order {row.client_order_id} is already {row.state}", "client_order_id",
                           state=row.state)
        if self.desk is None:
            raise ApiError(503, "the engine is not trading", None)
        self.desk.cancel(row.client_order_id, row.symbol, OPERATOR)  # journaled, then sent
        done = await self._await(row.client_order_id, lambda r: r.state in TERMINAL)
        final = done or row
        return (200 if final.state in TERMINAL else 202), {
            "client_order_id": row.client_order_id, "state": final.state, "order": final.to_json()}

    # ------------------------------------------------------------------------------ control
    def control(self, body: ControlBody) -> dict[str, Any]:
        if body.symbol is not None:
            self._check_symbol(body.symbol)
        e = self.engine
        if not e.started:
            raise ApiError(503, "the engine is not trading", None)
        now = e.clock.now_ms()
        e.bus.publish(OperatorCommand(action=body.command, symbols=(body.symbol,) if body.symbol else (),
                                      source=OPERATOR, cause=body.cause, ts_event=now, ts_init=now))
        return {"command": body.command, "symbol": body.symbol, "risk": self.risk_view()}

    # ------------------------------------------------------------------------------ helpers
    async def _await(self, cid: str, done: Callable[[OrderRow], bool]) -> OrderRow | None:
        """The row of ``cid`` once ``done(row)``, or as it is when the answer timeout passes."""
        timer = self.engine.timer
        deadline = timer.monotonic() + self.answer_timeout_s
        event = self._changed.setdefault(cid, asyncio.Event())
        try:
            while True:
                row = self.orders.get(cid)
                if row is not None and done(row):
                    return row
                left = deadline - timer.monotonic()
                if left <= 0:
                    return row
                event.clear()
                waiter = asyncio.ensure_future(event.wait())
                sleeper = asyncio.ensure_future(timer.sleep(min(left, 0.25)))
                try:
                    await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    sleeper.cancel()
        finally:
            self._changed.pop(cid, None)

    def order_state(self, cid: str) -> dict[str, Any]:
        row = self.orders.get(cid)
        if row is None:
            raise ApiError(404, f"no order {cid} in this run", "client_order_id")
        return {"client_order_id": cid, "state": row.state, "order": row.to_json()}


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = ["DENIED", "MANUAL", "OPERATOR", "OperatorCommands"]
