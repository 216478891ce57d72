"""Keep-warm of the lean HTTP client (binance/http_client.py) on the injected clock against a loopback server: a quiet
spell longer than the idle limit must not cost the next order a new connection (on the real venue, a TLS handshake);
a ping the server answers by closing is replaced by a fresh connection; the REST client's keep-warm pings ``ping`` and
notes the weight the venue reports."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from kinetic_empire.binance.http_client import HttpClient
from kinetic_empire.binance.rest import KEEP_WARM_PATH, MAX_WARM_CONNECTIONS, BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.core.clock import ManualClock
from tests.support.http_script import Scripted, answer
from tests.support.waiting import until

pytestmark = pytest.mark.integration


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


async def quiet_minute(client: HttpClient, clock: ManualClock, srv: Scripted, every_s: float, *,
                       warm: bool) -> int:
    """Two connections, a minute without orders in ``every_s`` steps (keep-warm on or off), then an order; returns how
    many connections the client has opened by then."""
    assert await client.warm(2) == 2
    task = asyncio.ensure_future(client.keep_warm(client.request_bytes("GET", "/fapi/v1/ping", None, b""), every_s)) \
        if warm else None
    try:
        steps = round(60 / every_s)
        for n in range(1, steps + 1):
            if task is not None:
                await until(lambda: clock.sleepers >= 1, "keep-warm waiting for its next round")
            await clock.advance(every_s)
            if task is not None:  # both connections pinged each round: each rested a whole round
                await until(lambda n=n: client.pings == 2 * n and clock.sleepers == 1, f"round {n}'s pings")
        reply = await client.request("POST", "/fapi/v1/order?x=1")
        assert reply.status == 200
        assert srv.requests[-1].startswith(b"POST /fapi/v1/order?x=1 HTTP/1.1\r\n")
        return client.opened
    finally:
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        await client.close()


def test_keep_warm_spares_the_order_after_a_quiet_minute_a_new_connection() -> None:
    async def body() -> None:
        async with Scripted(answer()) as srv:
            clock = ManualClock()
            client = HttpClient(srv.url(), clock=clock, idle_s=15.0)
            assert await quiet_minute(client, clock, srv, 7.5, warm=True) == 2
            assert srv.connections == 2
            pings = [r for r in srv.requests if r.startswith(b"GET /fapi/v1/ping HTTP/1.1\r\n")]
            assert len(pings) == client.pings == 16 and len(srv.requests) == 17
        async with Scripted(answer()) as srv:  # the same minute without it: the idle connections are retired
            clock = ManualClock()
            client = HttpClient(srv.url(), clock=clock, idle_s=15.0)
            assert await quiet_minute(client, clock, srv, 7.5, warm=False) == 3
            assert srv.requests == [srv.requests[0]]
    run(body())


def test_a_ping_answered_by_a_close_is_replaced_by_a_fresh_connection() -> None:
    async def body() -> None:
        async with Scripted(answer(headers="Connection: close\r\n", keep=False)) as srv:
            clock = ManualClock()
            client = HttpClient(srv.url(), clock=clock, idle_s=15.0)
            assert await client.warm(2) == 2
            task = asyncio.ensure_future(client.keep_warm(client.request_bytes("GET", "/ping", None, b""), 5.0))
            await until(lambda: clock.sleepers == 1, "keep-warm waiting")
            await clock.advance(5.0)
            # each ping's connection closes after its reply; two new ones are opened in their place
            await until(lambda: client.pings == 2 and client.opened == 4 and clock.sleepers == 1, "pinged, reopened")
            task.cancel()
            await asyncio.wait([task])
            await client.close()
            assert srv.connections == 4
        async with Scripted(answer(keep=False)) as srv:  # no header: the server just closes after its reply
            clock = ManualClock()
            client = HttpClient(srv.url(), clock=clock, idle_s=15.0)
            assert await client.warm(2) == 2
            task = asyncio.ensure_future(client.keep_warm(client.request_bytes("GET", "/ping", None, b""), 5.0))
            await until(lambda: clock.sleepers == 1, "keep-warm waiting")
            await clock.advance(5.0)
            await until(lambda: client.pings == 2 and srv.closed == 2 and clock.sleepers == 1, "pinged, then closed")
            await clock.advance(5.0)  # both are seen closed while idle: dropped unpinged, two fresh ones opened
            await until(lambda: client.opened == 4 and clock.sleepers == 1, "reopened")
            assert client.pings == 2
            task.cancel()
            await asyncio.wait([task])
            await client.close()
    run(body())


def test_keep_warm_refuses_an_interval_that_lets_a_connection_rest_past_the_idle_limit() -> None:
    async def body() -> None:
        client = HttpClient("http://127.0.0.1:9", clock=ManualClock(), idle_s=15.0)
        with pytest.raises(ValueError, match="keep_warm every_s=10: a connection would rest past idle_s=15"):
            await client.keep_warm(b"", 10.0)
    run(body())


def test_the_rest_clients_keep_warm_pings_and_notes_the_reported_weight() -> None:
    async def body() -> None:
        async with Scripted(answer(b"{}", headers="X-MBX-USED-WEIGHT-1M: 17\r\n")) as srv:
            clock = ManualClock()
            rest = BinanceRest(srv.url(), Credentials("key-kw", "secret-kw"), clock=clock, keep_warm_s=5.0)
            await rest.start()
            lean = rest.lean_client
            assert lean is not None
            await until(lambda: srv.connections == 2 and clock.sleepers == 1, "warmed, keep-warm waiting")
            await clock.advance(5.0)
            await until(lambda: lean.pings == 2, "pinged")
            assert all(r.startswith(f"GET {KEEP_WARM_PATH} HTTP/1.1\r\n".encode()) for r in srv.requests)
            assert rest.pacer.used == 17
            await rest.close()
            assert clock.sleepers == 0  # the keep-warm stopped with the client
        async with Scripted(answer()) as srv:  # off by default
            clock = ManualClock()
            rest = BinanceRest(srv.url(), Credentials("key-kw", "secret-kw"), clock=clock)
            await rest.start()
            await until(lambda: srv.connections == 2, "warmed")
            assert clock.sleepers == 0
            await rest.close()
    run(body())


async def started(srv: Scripted, connections: int, clock: ManualClock) -> tuple[BinanceRest, HttpClient]:
    """A REST client keeping warm every 5 s on ``clock``, started with ``connections``, and its lean client."""
    rest = BinanceRest(srv.url(), Credentials("key-kw", "secret-kw"), clock=clock, keep_warm_s=5.0)
    await rest.start(connections=connections)
    assert rest.lean_client is not None
    return rest, rest.lean_client


async def orders_at_once(lean: HttpClient, n: int) -> None:
    replies = await asyncio.gather(*(lean.request("POST", f"/fapi/v1/order?n={i}") for i in range(n)))
    assert [r.status for r in replies] == [200] * n


def test_the_rest_client_opens_and_keeps_warm_as_many_connections_as_a_klines_orders_need() -> None:
    """A flip sends its close and its entry together: two symbols' flips need four connections at once, and the fifth
    request of a close must not wait for a handshake. ``start(connections=)`` opens them ahead, keep-warm keeps them
    all, past the client's default ``max_idle``, up to ``MAX_WARM_CONNECTIONS``."""
    async def body() -> None:
        async with Scripted(answer(b"{}")) as srv:
            clock = ManualClock()
            rest, lean = await started(srv, 4, clock)
            await until(lambda: srv.connections == 4 and clock.sleepers == 1, "four warmed, keep-warm waiting")
            await clock.advance(5.0)
            await until(lambda: lean.pings == 4, "all four pinged")
            await orders_at_once(lean, 4)
            assert lean.opened == 4 and srv.connections == 4  # the four orders found their connections open
            await rest.close()
        async with Scripted(answer(headers="Connection: close\r\n", keep=False)) as srv:  # and keeps them all
            clock = ManualClock()
            rest, lean = await started(srv, 3, clock)
            await until(lambda: srv.connections == 3 and clock.sleepers == 1, "three warmed")
            await clock.advance(5.0)  # each ping's connection closes after its reply: three fresh ones in their place
            await until(lambda: lean.pings == 3 and lean.opened == 6 and clock.sleepers == 1, "pinged, reopened")
            await rest.close()
        async with Scripted(answer()) as srv:
            rest, lean = await started(srv, 12, ManualClock())  # above the client's default max_idle (8)
            await until(lambda: srv.connections == lean.max_idle == 12, "twelve warmed, kept when released")
            await orders_at_once(lean, 12)
            assert lean.opened == 12
            await rest.close()
        async with Scripted(answer()) as srv:
            rest, lean = await started(srv, 100, ManualClock())
            await until(lambda: srv.connections == MAX_WARM_CONNECTIONS == 32, "capped")
            await rest.close()
    run(body())
