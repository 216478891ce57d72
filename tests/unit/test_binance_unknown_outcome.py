"""The port's unknown-outcome policy (issue 12 items 3 and 4) on an injected clock, against a scripted venue.

The local sandbox makes an executed order queryable at once (the delay Binance can show is its issue 12 item
16), so the case that doubled positions, "executed, but -2013 for a while", is scripted here: a fake REST that
answers with Binance's documented error bodies (reference 6.2, tests/data/binance/fapi_error_bodies.json)
and the captured userTrades shape. Time moves only when the test moves it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.binance.errors import BinanceError, error_for_code
from kinetic_empire.binance.execution import BinanceExecution
from kinetic_empire.binance.translate import UserTranslator
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import (
    Alert,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    PositionChanged,
)

DATA = Path(__file__).parents[1] / "data" / "binance"
TIMEOUT = error_for_code(-1007, "Timeout waiting for response from backend server. Send status unknown; "
                         "execution status unknown.", 408, "POST /fapi/v1/order")
UNKNOWN = error_for_code(-2013, "Order does not exist.", 400, "GET /fapi/v1/order")


class ScriptedVenue:
    """A REST client whose answers the test scripts per path; records every request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.answers: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {}

    def on(self, method: str, path: str, answer: Callable[[dict[str, Any]], Any]) -> None:
        self.answers[(method, path)] = answer

    async def signed(self, method: str, path: str, params: dict[str, Any] | None = None, *,
                     idempotent: bool = True) -> Any:
        self.calls.append((method, path))
        await asyncio.sleep(0)
        answer = self.answers.get((method, path))
        if answer is None:
            raise AssertionError(f"unscripted request {method} {path}")
        return answer(dict(params or {}))

    def count(self, method: str, path: str) -> int:
        return self.calls.count((method, path))

    def server_ms(self) -> int:
        return 0


def raises(exc: BaseException) -> Callable[[dict[str, Any]], Any]:
    def answer(_p: dict[str, Any]) -> Any:
        raise exc
    return answer


FILLED = {"orderId": 831238666, "symbol": "ETHUSDT", "status": "FILLED", "clientOrderId": "u-1", "price": "0",
          "avgPrice": "2778.35", "origQty": "0.005", "executedQty": "0.005", "type": "MARKET", "origType": "MARKET",
          "side": "SELL", "reduceOnly": False, "closePosition": False, "updateTime": 1645930322371}


def trades(_p: dict[str, Any]) -> Any:
    rows = json.loads((DATA / "GET_fapi_v1_userTrades.nautilus.json").read_text())  # a captured reply
    return rows[:1]


def setup(**kw: Any) -> tuple[ScriptedVenue, BinanceExecution, ManualClock, dict[str, list[Any]], list[str]]:
    venue = ScriptedVenue()
    bus = EventBus()
    seen: dict[str, list[Any]] = {"accepted": [], "filled": [], "rejected": [], "alerts": []}
    for cls, key in ((OrderAccepted, "accepted"), (OrderFilled, "filled"), (OrderRejected, "rejected"),
                     (Alert, "alerts")):
        bus.subscribe(cls, seen[key].append)
    clock = ManualClock()
    translator = UserTranslator(bus.publish, clock.now_ms, lambda _s: 1)
    asked: list[str] = []
    port = BinanceExecution(bus, venue, translator, timer=clock, on_unknown=asked.append, **kw)  # type: ignore[arg-type]
    venue.on("POST", "/fapi/v1/order", raises(TIMEOUT))
    venue.on("GET", "/fapi/v1/userTrades", trades)
    venue.on("GET", "/fapi/v2/positionRisk", lambda p: [{"symbol": "ETHUSDT", "positionAmt": "0",
                                                          "entryPrice": "0", "positionSide": "BOTH"}])
    return venue, port, clock, seen, asked


def market(cid: str = "u-1", reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id="i", strategy_id="s", symbol="ETHUSDT", side=Side.SELL,
                        order_type=OrderType.MARKET, quantity=Decimal("0.005"), reduce_only=reduce_only,
                        ts_event=0, ts_init=0)


async def run_until_done(port: BinanceExecution, clock: ManualClock, task: asyncio.Task[Any]) -> list[float]:
    """Advance the clock from one sleeper's deadline to the next until the task ends; returns the wake times."""
    woke: list[float] = []
    for _ in range(200):
        for _ in range(20):
            await asyncio.sleep(0)
        if task.done():
            break
        deadline = clock.next_deadline()
        assert deadline is not None, "the port waits on something other than the clock"
        await clock.advance(deadline - clock.monotonic())
        woke.append(clock.monotonic())
    assert task.done()
    task.result()
    return woke


@pytest.mark.parametrize("reduce_only", [False, True])
def test_an_order_executed_but_not_queryable_yet_is_found_not_resent(reduce_only: bool) -> None:
    async def body() -> None:
        venue, port, clock, seen, asked = setup(unknown_grace_s=1.0)
        lookups = 0

        def query(_p: dict[str, Any]) -> Any:
            nonlocal lookups
            lookups += 1
            if lookups < 4:  # executed at once, but -2013 for the first three look-ups
                raise UNKNOWN
            return FILLED

        venue.on("GET", "/fapi/v1/order", query)
        task = asyncio.ensure_future(port.submit(market(reduce_only=reduce_only)))
        woke = await run_until_done(port, clock, task)
        assert venue.count("POST", "/fapi/v1/order") == 1  # never sent twice
        assert woke == [1.0, 3.0, 7.0, 15.0]  # grace, then the wait doubles
        assert [e.client_order_id for e in seen["accepted"]] == ["u-1"]
        assert [(f.quantity, f.price) for f in seen["filled"]] == [(Decimal("0.005"), Decimal("2778.35"))]
        assert seen["rejected"] == [] and seen["alerts"] == [] and asked == [] and port.unknown_resolved == 1

    asyncio.run(body())


def test_a_looked_up_fill_comes_with_its_position_in_one_step() -> None:
    """The look-up path applies an order's fills, final state and position together (venue_reconcile.settle), as
    reconciliation does: before, it published the exit's fill and left the position to the stream, so whatever
    ran next (the next kline's strategy, the gate) saw the fill and the long position from before it."""
    async def body() -> None:
        venue, port, clock, _seen, _asked = setup(unknown_grace_s=1.0)
        port.translator.positions["ETHUSDT"] = (Decimal("0.005"), Decimal("2700"))  # the long the exit closes
        venue.on("GET", "/fapi/v1/order", lambda _p: FILLED)
        order: list[str] = []
        after_fill: list[Decimal] = []
        loop = asyncio.get_running_loop()

        def on_fill(_f: OrderFilled) -> None:
            order.append("fill")
            loop.call_soon(lambda: after_fill.append(port.translator.positions["ETHUSDT"][0]))

        port._bus.subscribe(OrderFilled, on_fill)
        port._bus.subscribe(PositionChanged, lambda p: order.append(f"position {p.quantity:f}"))
        task = asyncio.ensure_future(port.submit(market(reduce_only=True)))
        await run_until_done(port, clock, task)
        await asyncio.sleep(0)  # the probe runs at the next turn of the loop, at the latest
        assert order == ["fill", "position 0"], order
        assert after_fill == [Decimal(0)], after_fill  # never the 0.005 from before the fill
        assert venue.count("POST", "/fapi/v1/order") == 1 and port.unknown_resolved == 1

    asyncio.run(body())


def test_a_looked_up_order_whose_position_cannot_be_read_is_left_to_reconciliation() -> None:
    """No fill without its position: if the position read fails, nothing of the order is applied yet."""
    async def body() -> None:
        venue, port, clock, seen, _asked = setup(unknown_grace_s=1.0)
        venue.on("GET", "/fapi/v1/order", lambda _p: FILLED)
        venue.on("GET", "/fapi/v2/positionRisk", raises(error_for_code(-1003, "Too many requests.", 429, "GET")))
        task = asyncio.ensure_future(port.submit(market(reduce_only=True)))
        await run_until_done(port, clock, task)
        assert seen["filled"] == [] and not port.translator.orders["u-1"].terminal
        assert venue.count("GET", "/fapi/v1/userTrades") == 1 and port.unknown_resolved == 1

    asyncio.run(body())


@pytest.mark.parametrize(("venue_qty", "severity"), [("0", "warning"), ("-0.005", "critical")])
def test_never_found_within_the_bound_closes_the_order_with_an_alert(venue_qty: str, severity: str) -> None:
    async def body() -> None:
        venue, port, clock, seen, asked = setup(unknown_grace_s=1.0)  # bound: 60 grace periods
        venue.on("GET", "/fapi/v1/order", raises(UNKNOWN))
        venue.on("GET", "/fapi/v2/positionRisk", lambda p: [{"symbol": "ETHUSDT", "positionAmt": venue_qty,
                                                              "entryPrice": "2778.35", "positionSide": "BOTH"}])
        task = asyncio.ensure_future(port.submit(market()))
        woke = await run_until_done(port, clock, task)
        assert woke == [1, 3, 7, 15, 25, 35, 45, 55, 60]  # capped at 10 s, the last wait cut to the bound
        assert venue.count("POST", "/fapi/v1/order") == 1 and venue.count("GET", "/fapi/v1/order") == 9
        [rejected] = seen["rejected"]
        assert rejected.code == -1007 and rejected.reason.startswith("UNKNOWN_OUTCOME") and "not resent" in (
            rejected.reason)
        [alert] = seen["alerts"]
        assert (alert.kind, alert.severity, alert.symbol) == ("order_outcome_unknown", severity, "ETHUSDT")
        assert f"venue position {venue_qty}" in alert.message and asked == ["ETHUSDT"]

    asyncio.run(body())


def test_the_user_stream_resolves_an_unknown_outcome() -> None:
    async def body() -> None:
        venue, port, clock, seen, _asked = setup(unknown_grace_s=1.0)
        venue.on("GET", "/fapi/v1/order", raises(UNKNOWN))
        task = asyncio.ensure_future(port.submit(market()))
        for _ in range(20):
            await asyncio.sleep(0)
        await clock.advance(1.0)  # first look-up: -2013
        port.translator.on_message({"e": "ORDER_TRADE_UPDATE", "E": 5, "T": 5, "o": {
            "s": "ETHUSDT", "c": "u-1", "S": "SELL", "o": "MARKET", "q": "0.005", "x": "TRADE", "X": "FILLED",
            "i": 831238666, "l": "0.005", "z": "0.005", "L": "2778.35", "N": "USDT", "n": "0.0055567", "t": 82357626,
            "m": False, "R": False, "rp": "0"}})
        await run_until_done(port, clock, task)
        assert venue.count("GET", "/fapi/v1/order") == 1 and venue.count("POST", "/fapi/v1/order") == 1
        assert len(seen["filled"]) == 1 and seen["rejected"] == [] and seen["alerts"] == []

    asyncio.run(body())


LOOKUP_ERRORS: list[BaseException] = [
    error_for_code(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.", 400),
    error_for_code(-4190, "an algo-service code this adapter has never seen", 400),
    error_for_code(-1000, "An unknown error occured while processing the request.", 500),
    error_for_code(-1003, "Too many requests.", 429),
    error_for_code(-1001, "Internal error; unable to process your request. Please try again.", 503),
    BinanceError(0, "HTTP 200 with a body that is not JSON", 200),
]


def test_every_lookup_error_is_handled_and_the_order_found_after() -> None:
    async def body() -> None:
        venue, port, clock, seen, _asked = setup(unknown_grace_s=0.5)
        answers = [*LOOKUP_ERRORS, None]
        replies: list[Any] = []

        def query(_p: dict[str, Any]) -> Any:
            nxt = answers.pop(0)
            replies.append(nxt)
            if nxt is None:
                return FILLED
            raise nxt

        venue.on("GET", "/fapi/v1/order", query)
        task = asyncio.ensure_future(port.submit(market()))
        await run_until_done(port, clock, task)
        assert len(replies) == len(LOOKUP_ERRORS) + 1 and venue.count("POST", "/fapi/v1/order") == 1
        assert len(seen["filled"]) == 1 and seen["rejected"] == [] and seen["alerts"] == []

    asyncio.run(body())


def test_an_unreadable_lookup_reply_and_an_unexpected_failure_never_kill_the_task_silently() -> None:
    async def body() -> None:
        venue, port, clock, seen, _asked = setup(unknown_grace_s=0.5, unknown_bound_s=2.0)
        venue.on("GET", "/fapi/v1/order", lambda p: {"status": "FILLED"})  # no ids: not Binance's order shape
        task = asyncio.ensure_future(port.submit(market("u-1")))
        await run_until_done(port, clock, task)
        assert [r.client_order_id for r in seen["rejected"]] == ["u-1"]
        assert [a.kind for a in seen["alerts"]] == ["order_outcome_unknown"]

        venue.on("POST", "/fapi/v1/order", raises(RuntimeError("socket library bug")))
        task = asyncio.ensure_future(port.submit(market("u-2")))
        await run_until_done(port, clock, task)
        assert [r.client_order_id for r in seen["rejected"]] == ["u-1", "u-2"]
        assert "INTERNAL RuntimeError" in seen["rejected"][1].reason
        assert [(a.kind, a.severity) for a in seen["alerts"]][1:] == [("order_task_failed", "critical")]

    asyncio.run(body())


def test_reconciliation_stops_looking_for_an_order_the_venue_never_shows() -> None:
    async def body() -> None:
        venue, port, _clock, seen, _asked = setup(lookup_misses=3)
        port.translator.expect(OrderRequest(
            client_order_id="gone-sl", intent_id="i", strategy_id="s", symbol="ETHUSDT", side=Side.BUY,
            order_type=OrderType.STOP_MARKET, quantity=None, trigger_price=Decimal(3000), close_position=True,
            ts_event=0, ts_init=0))
        venue.on("GET", "/fapi/v1/openOrders", lambda p: [])
        venue.on("GET", "/fapi/v1/openAlgoOrders", lambda p: [])
        venue.on("GET", "/fapi/v1/algoOrder", raises(error_for_code(-4190, "an unknown algo code", 400)))
        venue.on("GET", "/fapi/v2/balance", lambda p: [{"asset": "USDT", "balance": "100", "availableBalance": "100"}])
        for _ in range(5):
            await port.reconcile(["ETHUSDT"])
        assert venue.count("GET", "/fapi/v1/algoOrder") == 3  # looked up three times, then closed
        assert [(r.client_order_id, r.code) for r in seen["rejected"]] == [("gone-sl", -2013)]
        assert [a.kind for a in seen["alerts"]] == ["order_not_found"] and port.translator.open_orders() == []

    asyncio.run(body())


def test_shutdown_stops_the_lookups_and_leaves_the_order_to_the_next_start() -> None:
    """A clean stop must not wait out the look-up bound (60 s by default, longer than a container's stop grace):
    the journal holds the order as sent without an answer, and the next start looks it up."""
    async def body() -> None:
        venue, port, clock, seen, asked = setup(unknown_grace_s=1.0)
        venue.on("GET", "/fapi/v1/order", raises(UNKNOWN))
        port.on_request(market())
        for _ in range(20):
            await asyncio.sleep(0)
        assert port.busy == 1 and clock.next_deadline() is not None  # waiting to look it up
        await port.drain(timeout=2.0, abandon_lookups=True)
        assert port.busy == 0
        assert venue.count("POST", "/fapi/v1/order") == 1 and venue.count("GET", "/fapi/v1/order") == 0
        assert seen["rejected"] == [] and seen["alerts"] == [] and asked == []  # not closed: it is unknown
        resolved = asyncio.ensure_future(port.submit(market("u-2")))  # an ordinary look-up still runs its course
        await run_until_done(port, clock, resolved)
        assert [r.client_order_id for r in seen["rejected"]] == ["u-2"]

    asyncio.run(body())
