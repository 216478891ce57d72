"""The user data stream: listenKey lifecycle, the private WebSocket, and reconciliation after any gap.

* ``POST /fapi/v1/listenKey`` creates (or extends) the key; a ``PUT`` every ``keepalive_s`` (30 min)
  keeps it; ``-1125`` on the PUT or a ``listenKeyExpired`` event means: create a new key, reconnect.
* After every (re)connection, and before any message of the new connection is handled, ``reconcile``
  runs (REST: open orders, fills, positions, balance), because events sent while we were away are
  lost. Messages that arrive meanwhile wait in the socket and are de-duplicated by the translator.
* A dropped connection is retried with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from .backoff import backoff_delay
from .errors import BinanceError, ListenKeyError
from .rest import KEYED, BinanceRest
from .venues import Venue

log = logging.getLogger(__name__)


class UserStream:
    def __init__(
        self,
        rest: BinanceRest,
        venue: Venue,
        on_event: Callable[[Mapping[str, Any]], None],
        reconcile: Callable[[], Awaitable[None]],
        *,
        keepalive_s: float = 1800.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        seed: int | None = None,
    ) -> None:
        self.rest = rest
        self.venue = venue
        self._on_event = on_event
        self._reconcile = reconcile
        self.keepalive_s = keepalive_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self._rng = random.Random(seed)
        self.listen_key: str | None = None
        self.connected = False
        self.ready = asyncio.Event()
        self.connections = 0
        self.reconnects = 0
        self.keys_created = 0
        self.last_message = 0.0  # monotonic
        self.last_error = ""
        self._stop = False
        self._ws: ClientConnection | None = None

    async def create_key(self) -> str:
        data = await self.rest.request("POST", "/fapi/v1/listenKey", security=KEYED)
        key = str(data["listenKey"])
        if key != self.listen_key:
            self.keys_created += 1
        self.listen_key = key
        return key

    async def run(self) -> None:
        """Connect, reconcile, read; on any loss, back off and do it again, until :meth:`stop`."""
        failures = 0
        while not self._stop:
            try:
                key = self.listen_key or await self.create_key()
                async with websockets.connect(self.venue.user_stream_url(key), open_timeout=self.open_timeout_s,
                                              ping_interval=20, ping_timeout=20, max_size=2**22) as ws:
                    self._ws = ws
                    self.connections += 1
                    if self.connections > 1:
                        self.reconnects += 1
                    await self._reconcile()
                    self.connected = True
                    self.ready.set()
                    failures = 0
                    keepalive = asyncio.get_running_loop().create_task(self._keepalive())
                    try:
                        await self._read(ws)
                    finally:
                        keepalive.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await keepalive
            except asyncio.CancelledError:
                raise
            except (OSError, websockets.WebSocketException, BinanceError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, websockets.InvalidStatus | ListenKeyError):
                    self.listen_key = None  # the handshake refused the key: make a new one
                log.warning("user stream: %s", self.last_error)
            finally:
                self.connected = False
                self._ws = None
            if self._stop:
                break
            failures += 1
            delay = backoff_delay(failures, self.backoff_s, self.backoff_max_s, self._rng)
            await asyncio.sleep(delay if failures > 1 else delay / 4)

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            self.last_message = time.monotonic()
            try:
                msg = json.loads(raw)
            except ValueError:
                log.warning("user stream: not JSON, skipped: %r", str(raw)[:120])
                continue
            if isinstance(msg, dict) and "data" in msg and "stream" in msg:
                msg = msg["data"]
            if not isinstance(msg, dict):
                continue
            if msg.get("e") == "listenKeyExpired":
                log.warning("user stream: listenKey expired; creating a new one and reconciling")
                self.listen_key = None
                return
            self._on_event(msg)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            try:
                await self.rest.request("PUT", "/fapi/v1/listenKey", security=KEYED)
            except ListenKeyError:
                log.warning("user stream: keepalive says the listenKey is gone (-1125); reconnecting with a new one")
                self.listen_key = None
                if self._ws is not None:
                    await self._ws.close()
                return
            except BinanceError as exc:
                log.warning("user stream: keepalive failed: %s", exc)

    async def stop(self, close_key: bool = True) -> None:
        self._stop = True
        if self._ws is not None:
            await self._ws.close()
        if close_key and self.listen_key:
            with contextlib.suppress(BinanceError, OSError):
                await self.rest.request("DELETE", "/fapi/v1/listenKey", security=KEYED)

    def drop(self) -> None:
        """Close the connection as if the network had failed (tests, operators)."""
        if self._ws is not None:
            self._ws.transport.abort()
