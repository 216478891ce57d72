"""One client WebSocket connection and the set of open ones.

Each connection owns an outbound queue drained by one writer task, so a slow client delays only
itself and messages keep their order. Time (the incoming-message window, injected stalls) comes from
the injected clock, so a test can move it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from ..core.clock import Clock


class Conn:
    """One client WebSocket: subscriptions, outbound queue, fault hooks (a :class:`.streams.Subscriber`)."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        combined: bool,
        max_incoming_per_s: int,
        route: str = "",
        clock: Clock,
        rng: random.Random | None = None,
        drop_rate: float = 0.0,
        stall_rate: float = 0.0,
        stall_seconds: float = 0.0,
        on_fault: Callable[[str], None] | None = None,
    ) -> None:
        self.ws = ws
        self.request = request
        self.combined = combined
        self.route = route  # "public", "market", "private", or "" (unrouted): what streams it may carry
        self.streams: list[str] = []
        self.listen_key: str | None = None
        self.events: frozenset[str] | None = None  # user stream event filter
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False
        self.max_incoming = max_incoming_per_s
        self._clock = clock
        self._window = -1.0
        self._count = 0
        self._rng = rng
        self._drop = drop_rate
        self._stall = stall_rate
        self._stall_s = stall_seconds
        self._on_fault = on_fault
        self.writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def push(self, text: str) -> None:
        if not self.closed:
            self.queue.put_nowait(text)

    def push_json(self, payload: Any, stream: str | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":"))
        if self.combined and stream is not None:
            self.push(f'{{"stream":"{stream}","data":{data}}}')
        else:
            self.push(data)

    def close_soon(self) -> None:
        """Finish sending what is queued, then close."""
        if not self.closed:
            self.queue.put_nowait(None)

    def drop(self) -> None:
        """Cut the connection without a close frame, like a network failure."""
        if not self.closed:
            self.queue.put_nowait(None)  # wake the writer: it must end, or the server's shutdown waits on it
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def incoming_ok(self) -> bool:
        """Binance allows 10 incoming messages per second per connection; more closes it."""
        now = self._clock.monotonic()
        if self._window < 0 or now - self._window >= 1.0:
            self._window = now
            self._count = 0
        self._count += 1
        return self._count <= self.max_incoming

    async def _write(self) -> None:
        ws = self.ws
        try:
            while True:
                text = await self.queue.get()
                try:
                    if text is None:
                        break
                    if self._rng is not None:
                        r = self._rng.random()
                        if r < self._drop:
                            if self._on_fault is not None:
                                self._on_fault("ws-drop")
                            self.drop()
                            return
                        if r < self._drop + self._stall:
                            if self._on_fault is not None:
                                self._on_fault("ws-stall")
                            await self._clock.sleep(self._stall_s)
                    await ws.send_str(text)
                finally:
                    self.queue.task_done()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            self.closed = True
            while not self.queue.empty():  # nothing more will be sent: let flush() waiters go
                self.queue.get_nowait()
                self.queue.task_done()
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()


class Connections:
    """The open connections: counted by the admin status, flushed after a step, closed at shutdown."""

    def __init__(self) -> None:
        self._open: set[Conn] = set()

    def add(self, conn: Conn) -> None:
        self._open.add(conn)

    def discard(self, conn: Conn) -> None:
        self._open.discard(conn)

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Conn]:
        return iter(list(self._open))

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued stream messages have been written to the sockets (at most ``timeout``)."""
        conns = [c for c in self._open if not c.closed]
        if conns:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(c.queue.join() for c in conns)), timeout)

    def drop_all(self) -> int:
        """Cut every connection (admin ``drop-streams``); returns how many."""
        conns = list(self._open)
        for conn in conns:
            conn.drop()
        return len(conns)

    def close_all(self) -> None:
        for conn in list(self._open):
            conn.close_soon()
