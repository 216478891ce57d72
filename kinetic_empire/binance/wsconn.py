"""One WebSocket kept open: the reconnect loop shared by the market feed and the user data stream.

Connect, run ``on_open`` (catch up, reconcile) before any message is read, then hand every message to
``on_message``; when the connection is lost (or ``on_message`` returns False), back off with exponential
backoff and jitter on the injected clock, and connect again, until :meth:`stop`. The first retry after
a connection that worked waits a quarter of the base delay: a dropped socket usually reconnects at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from ..core.clock import Clock
from .backoff import backoff_delay

log = logging.getLogger(__name__)

OnMessage = Callable[[str | bytes], Awaitable[bool | None]]


class ReconnectingWebSocket:
    """A WebSocket client that reconnects until stopped; ``name`` labels its log lines."""

    def __init__(
        self,
        name: str,
        url: Callable[[], Awaitable[str]],
        clock: Clock,
        *,
        on_open: Callable[[], Awaitable[None]],
        on_message: OnMessage,
        while_open: Callable[[], Coroutine[Any, Any, None]] | None = None,
        retry_on: tuple[type[Exception], ...] = (),
        on_error: Callable[[Exception], None] | None = None,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        seed: int | None = None,
    ) -> None:
        """``url`` is asked before every connection (a user stream's key may change); ``while_open`` runs
        beside the reader while a connection is up (keep-alives); errors of ``retry_on`` (besides network
        errors) are retried after ``on_error`` has seen them."""
        self.name = name
        self._url = url
        self.clock = clock
        self._on_open = on_open
        self._on_message = on_message
        self._while_open = while_open
        self._retry_on: tuple[type[Exception], ...] = (OSError, websockets.WebSocketException, TimeoutError,
                                                       *retry_on)
        self._on_error = on_error
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self._rng = random.Random(seed)
        self.connections = 0
        self.reconnects = 0
        self.connected = False
        self.last_error = ""
        self._stop = False
        self._ws: ClientConnection | None = None

    async def run(self) -> None:
        """Connect, open, read; on any loss, back off and do it again, until :meth:`stop`."""
        failures = 0
        while not self._stop:
            try:
                address = await self._url()
                async with websockets.connect(address, open_timeout=self.open_timeout_s, ping_interval=20,
                                              ping_timeout=20, max_size=2**22) as ws:
                    self._ws = ws
                    self.connections += 1
                    if self.connections > 1:
                        self.reconnects += 1
                        log.info("%s reconnected (%d)", self.name, self.reconnects)
                    await self._on_open()
                    self.connected = True
                    failures = 0
                    await self._read_while_open(ws)
            except asyncio.CancelledError:
                raise
            except self._retry_on as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self._on_error is not None:
                    self._on_error(exc)
                log.warning("%s: %s", self.name, self.last_error)
            finally:
                self.connected = False
                self._ws = None
            if self._stop:
                break
            failures += 1
            delay = backoff_delay(failures, self.backoff_s, self.backoff_max_s, self._rng)
            await self.clock.sleep(delay if failures > 1 else delay / 4)

    async def _read_while_open(self, ws: ClientConnection) -> None:
        beside = None if self._while_open is None else asyncio.get_running_loop().create_task(self._while_open())
        try:
            async for raw in ws:
                if await self._on_message(raw) is False:
                    return
        finally:
            if beside is not None:
                beside.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beside

    async def close_connection(self) -> None:
        """End the current connection; :meth:`run` reconnects."""
        if self._ws is not None:
            await self._ws.close()

    async def stop(self) -> None:
        """End the current connection and do not reconnect."""
        self._stop = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    def drop(self) -> None:
        """Cut the connection as a network failure would (tests, operators)."""
        if self._ws is not None:
            self._ws.transport.abort()


class SocketHealth:
    """Connection figures of a stream that owns a :class:`ReconnectingWebSocket` as ``self.socket``
    (the kline feed and the user stream), for the status view and the doctor."""

    socket: ReconnectingWebSocket

    @property
    def connections(self) -> int:
        return self.socket.connections

    @property
    def reconnects(self) -> int:
        return self.socket.reconnects

    @property
    def connected(self) -> bool:
        return self.socket.connected

    @property
    def last_error(self) -> str:
        return self.socket.last_error
