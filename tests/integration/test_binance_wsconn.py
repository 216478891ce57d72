"""The reconnecting WebSocket shared by the market feed and the user stream, over real loopback sockets,
with backoff on a ManualClock: a minute of backoff through an outage takes no wall time and does not
depend on how busy the machine is."""

from __future__ import annotations

import asyncio
import random
from http import HTTPStatus

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from kinetic_empire.binance.backoff import backoff_delay
from kinetic_empire.binance.wsconn import ReconnectingWebSocket
from kinetic_empire.core.clock import ManualClock
from tests.support.waiting import until

pytestmark = pytest.mark.integration

SEED = 11


class EchoVenue:
    """Greets every connection with its number; refuses handshakes (HTTP 503) while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.handshakes = 0
        self.refused = 0
        self.server: Server | None = None

    def refuse(self, conn: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        if self.down:
            self.refused += 1
            return Response(HTTPStatus.SERVICE_UNAVAILABLE, "down", Headers(), b"down\n")
        return None

    async def handler(self, conn: ServerConnection) -> None:
        await conn.send(f"hello {self.handshakes}")
        await conn.wait_closed()

    async def __aenter__(self) -> str:
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.refuse)
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ws"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def test_drops_and_an_outage_reconnect_after_backoff_on_the_injected_clock() -> None:
    async def scenario() -> None:
        venue = EchoVenue()
        async with venue as url:
            clock = ManualClock()
            got: list[str] = []
            opened: list[int] = []

            async def address() -> str:
                return url

            async def on_open() -> None:
                opened.append(clock.now_ms())

            async def on_message(raw: str | bytes) -> None:
                got.append(str(raw))

            ws = ReconnectingWebSocket("test stream", address, clock, on_open=on_open, on_message=on_message,
                                       backoff_s=0.5, backoff_max_s=30.0, seed=SEED)
            expected = random.Random(SEED)  # the same jitter draws as the socket's
            task = asyncio.create_task(ws.run())
            await until(lambda: got == ["hello 1"], "first connection")
            assert ws.connected and ws.connections == 1 and opened == [0]

            # a drop: the first retry after a working connection waits a quarter of the base delay
            ws.drop()
            await until(lambda: clock.sleepers == 1, "backing off after the drop")
            assert not ws.connected and ws.last_error.startswith("ConnectionClosed")
            assert clock.next_deadline() == pytest.approx(backoff_delay(1, 0.5, 30.0, expected) / 4)
            await clock.advance(clock.next_deadline() or 0)
            await until(lambda: got == ["hello 1", "hello 2"], "reconnection")
            assert ws.reconnects == 1 and len(opened) == 2

            # an outage: every handshake refused; the delays double up to the cap, on the clock's time only
            venue.down = True
            ws.drop()
            waits: list[float] = []
            while True:
                await until(lambda: clock.sleepers == 1, "backing off during the outage")
                wait = (clock.next_deadline() or 0) - clock.monotonic()
                waits.append(wait)
                if clock.monotonic() >= 65:
                    break
                await clock.advance(wait)
            assert venue.refused == len(waits) - 1 and not ws.connected
            assert "503" in ws.last_error
            assert waits == pytest.approx([backoff_delay(1, 0.5, 30.0, expected) / 4]
                                          + [backoff_delay(n, 0.5, 30.0, expected) for n in range(2, len(waits) + 1)])
            assert max(waits) <= 30.0 * 1.5 and len(waits) >= 6  # 0.5 s doubling up to the 30 s cap, x0.5-1.5 jitter

            venue.down = False
            await clock.advance(waits[-1])
            await until(lambda: ws.connected and len(got) == 3, "reconnection after the outage")
            assert got[-1] == f"hello {venue.handshakes}" and ws.reconnects == 2 and len(opened) == 3
            assert opened[-1] >= 65_000  # opened at the clock's time: after a minute of backoff

            await ws.stop()
            await asyncio.wait_for(task, 20)
            assert not ws.connected and clock.sleepers == 0

    asyncio.run(scenario())


def test_on_message_returning_false_reconnects_and_while_open_runs_only_while_connected() -> None:
    async def scenario() -> None:
        async with EchoVenue() as url:
            clock = ManualClock()
            beside_running: list[bool] = []
            beats = 0

            async def address() -> str:
                return url

            async def on_open() -> None:
                return None

            async def on_message(raw: str | bytes) -> bool:
                return raw != "hello 1"  # the first connection says its key expired

            async def keepalive() -> None:
                nonlocal beats
                beside_running.append(True)
                try:
                    while True:
                        await clock.sleep(1800)
                        beats += 1
                finally:
                    beside_running.append(False)

            ws = ReconnectingWebSocket("test stream", address, clock, on_open=on_open, on_message=on_message,
                                       while_open=keepalive, seed=SEED)
            task = asyncio.create_task(ws.run())
            await until(lambda: ws.connections == 1 and not ws.connected and clock.sleepers == 1,
                        "first connection ended by on_message, backing off")
            assert beside_running in ([], [True, False])  # cancelled with the connection (maybe before it ran)
            first = list(beside_running)
            await clock.advance((clock.next_deadline() or 0) - clock.monotonic())
            await until(lambda: ws.connected and ws.connections == 2 and clock.sleepers == 1, "second connection")
            assert beside_running == [*first, True]
            await clock.advance(3600)
            assert beats == 2 and ws.connected
            await ws.stop()
            await asyncio.wait_for(task, 20)
            assert beside_running == [*first, True, False]

    asyncio.run(scenario())
