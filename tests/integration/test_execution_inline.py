"""An order leaves from inside the bus handler that received it (binance/execution.py ``on_request``), against the
sandbox over loopback: the journal gate passes first, the signed request is written before the bus has delivered the
request to the handlers after the port, and nothing is published from inside that delivery (a refusal, a failure or a
missing connection goes to the placement task, with the outcomes the task path always had)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kinetic_empire.binance.execution import JOURNAL_REFUSED, BinanceExecution
from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.binance.translate import UserTranslator
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.errors import KineticError
from kinetic_empire.core.events import OrderAccepted, OrderRejected, OrderRequest
from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer
from tests.support.live import DATA
from tests.support.waiting import until

pytestmark = pytest.mark.integration


def order(cid: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id=cid, strategy_id="test", symbol="FILUSDT", side=Side.BUY,
                        order_type=OrderType.MARKET, quantity=Decimal("100"), ts_event=0, ts_init=0)


def venue_orders(sb: Any, cid: str) -> list[Any]:
    return [o for o in sb.account().exchange.all_orders("FILUSDT") if o.client_order_id == cid]


class Refused(KineticError):
    pass


async def with_port(body: Any, *, lean: bool = True) -> None:
    cfg = SandboxConfig(data=[DATA], limits=RateLimitConfig(enforce=False), warmup_klines=5)
    async with SandboxServer(cfg) as sb:
        rest = await BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret, "sandbox"), max_retries=0,
                                 lean_orders=lean).start()
        try:
            if rest.lean_client is not None:
                await rest.lean_client.warm(2)
            trail: list[tuple[str, str]] = []  # what happened, in order
            refuse: set[str] = set()

            def gate(command: Any) -> None:
                trail.append(("gate", command.client_order_id))
                if command.client_order_id in refuse:
                    raise Refused(f"JOURNAL_UNAVAILABLE {command.client_order_id} not committed (planted)")

            def written(data: bytes) -> None:
                if data.startswith(b"POST /fapi/v1/order?"):
                    query = urlsplit(data.split(b" ")[1].decode()).query
                    trail.append(("write", parse_qs(query)["newClientOrderId"][0]))

            if rest.lean_client is not None:
                rest.lean_client.on_write = written
            bus = EventBus()
            translator = UserTranslator(bus.publish, sb.venue.market_clock.now_ms, lambda _s: 20)
            port = BinanceExecution(bus, rest, translator, before_send=gate, timer=ManualClock())
            for kind in (OrderAccepted, OrderRejected):
                bus.subscribe(kind, lambda e: trail.append((type(e).__name__, e.client_order_id)))
            bus.subscribe(OrderRequest, lambda r: trail.append(("delivered", r.client_order_id)))  # after the port
            await body(sb, port, trail, refuse)
        finally:
            await rest.close()


def test_the_order_is_written_inside_its_handler_after_the_journal_gate() -> None:
    async def body(sb: Any, port: BinanceExecution, trail: list[tuple[str, str]], _refuse: set[str]) -> None:
        port._bus.publish(order("now-1"))
        assert trail == [("gate", "now-1"), ("write", "now-1"), ("delivered", "now-1")]
        assert port.in_flight("FILUSDT") == 1  # reconciliation waits for it from the write on
        await port.drain(timeout=10)
        assert trail[3:] == [("OrderAccepted", "now-1")] and port.placed == 1 and port.in_flight("FILUSDT") == 0
        assert len(venue_orders(sb, "now-1")) == 1
    asyncio.run(with_port(body))


def test_a_refusal_is_published_by_the_task_not_inside_the_delivery_and_nothing_leaves() -> None:
    async def body(sb: Any, port: BinanceExecution, trail: list[tuple[str, str]], refuse: set[str]) -> None:
        refuse.add("no-1")
        port._bus.publish(order("no-1"))
        assert trail == [("gate", "no-1"), ("delivered", "no-1")]
        await port.drain(timeout=10)
        assert trail[2:] == [("OrderRejected", "no-1")] and port.refused == 1 and port.rejected == 1
        assert venue_orders(sb, "no-1") == [] and port.in_flight("FILUSDT") == 0
    asyncio.run(with_port(body))

    async def reason(sb: Any, port: BinanceExecution, trail: list[tuple[str, str]], refuse: set[str]) -> None:
        rejected: list[OrderRejected] = []
        port._bus.subscribe(OrderRejected, rejected.append)
        refuse.add("no-2")
        port._bus.publish(order("no-2"))
        await port.drain(timeout=10)
        assert [(e.code, e.reason) for e in rejected] == [(JOURNAL_REFUSED, "JOURNAL_UNAVAILABLE no-2 not committed "
                                                                            "(planted)")]
    asyncio.run(with_port(reason))


def test_without_an_idle_connection_the_task_sends_it_gated_once() -> None:
    async def body(sb: Any, port: BinanceExecution, trail: list[tuple[str, str]], _refuse: set[str]) -> None:
        port._bus.publish(order("later-1"))
        assert trail == [("gate", "later-1"), ("delivered", "later-1")]  # through aiohttp, from the task
        await port.drain(timeout=10)
        assert trail[2:] == [("OrderAccepted", "later-1")] and port.placed == 1
        assert len(venue_orders(sb, "later-1")) == 1
    asyncio.run(with_port(body, lean=False))


def test_a_placement_task_cancelled_before_it_ran_drops_its_connection_and_is_not_in_flight() -> None:
    async def body(sb: Any, port: BinanceExecution, trail: list[tuple[str, str]], _refuse: set[str]) -> None:
        lean = port.rest.lean_client
        assert lean is not None
        port._bus.publish(order("cut-1"))
        assert trail[:2] == [("gate", "cut-1"), ("write", "cut-1")]
        for task in list(port._tasks):
            task.cancel()
        await until(lambda: port.busy == 0, "the placement task ended")
        assert port.in_flight("FILUSDT") == 0 and not lean._busy  # the connection that carried it is dropped
        await until(lambda: len(venue_orders(sb, "cut-1")) == 1, "the venue has it (the outcome is its to tell)")
        port._bus.publish(order("next-1"))  # the port goes on
        await port.drain(timeout=10)
        assert ("OrderAccepted", "next-1") in trail
    asyncio.run(with_port(body))
