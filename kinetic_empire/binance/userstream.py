"""The user data stream: listenKey lifecycle, the private WebSocket, and reconciliation after any gap.

* ``POST /fapi/v1/listenKey`` creates (or extends) the key; a ``PUT`` once the key is ``keepalive_s``
  (30 min) old keeps it. The timer follows the key's age, not the connection's: a reconnect that reuses
  the key does not restart it (a key is valid 60 min after its last POST or PUT, reference 3.5, so
  frequent reconnects must not postpone the PUT). ``-1125`` on the PUT or a ``listenKeyExpired`` event
  means: create a new key, reconnect.
* After every (re)connection, and before any message of the new connection is handled, ``reconcile``
  runs (REST: open orders, fills, positions, balance), because events sent while we were away are
  lost. Messages that arrive meanwhile wait in the socket and are de-duplicated by the translator.
* A dropped connection is retried with exponential backoff and jitter (:mod:`.wsconn`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import websockets

from ..core.clock import Clock
from .errors import BinanceError, ListenKeyError
from .rest import KEYED, BinanceRest
from .venues import Venue
from .wsconn import ReconnectingWebSocket, SocketHealth

log = logging.getLogger(__name__)


class UserStream(SocketHealth):
    def __init__(
        self,
        rest: BinanceRest,
        venue: Venue,
        on_event: Callable[[Mapping[str, Any]], None],
        reconcile: Callable[[], Awaitable[None]],
        *,
        clock: Clock | None = None,
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
        self.clock = clock or rest.clock
        self.keepalive_s = keepalive_s
        self.listen_key: str | None = None
        self.ready = asyncio.Event()
        self.keys_created = 0
        self.keepalives = 0
        self.renewed_at: float | None = None
        """clock.monotonic() of the key's last successful POST or PUT: its age decides the next PUT."""
        self.last_message = 0.0  # clock.monotonic()
        self.socket = ReconnectingWebSocket(
            "user stream", self._url, self.clock, on_open=self._on_open, on_message=self._on_message,
            while_open=self._keepalive, retry_on=(BinanceError,), on_error=self._on_error,
            backoff_s=backoff_s, backoff_max_s=backoff_max_s, open_timeout_s=open_timeout_s, seed=seed)

    async def create_key(self) -> str:
        data = await self.rest.request("POST", "/fapi/v1/listenKey", security=KEYED)
        key = str(data["listenKey"])
        if key != self.listen_key:
            self.keys_created += 1
        self.listen_key = key
        self.renewed_at = self.clock.monotonic()
        return key

    async def run(self) -> None:
        """Connect, reconcile, read; on any loss, back off and do it again, until :meth:`stop`."""
        await self.socket.run()

    async def _url(self) -> str:
        return self.venue.user_stream_url(self.listen_key or await self.create_key())

    async def _on_open(self) -> None:
        await self._reconcile()
        self.ready.set()

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, websockets.InvalidStatus | ListenKeyError):
            self.listen_key = None  # the handshake refused the key: make a new one

    async def _on_message(self, raw: str | bytes) -> bool:
        """Hand one message to ``on_event``; False ends the connection (the key expired)."""
        self.last_message = self.clock.monotonic()
        try:
            msg = json.loads(raw)
        except ValueError:
            log.warning("user stream: not JSON, skipped: %r", str(raw)[:120])
            return True
        if isinstance(msg, dict) and "data" in msg and "stream" in msg:
            msg = msg["data"]
        if not isinstance(msg, dict):
            return True
        if msg.get("e") == "listenKeyExpired":
            log.warning("user stream: listenKey expired; creating a new one and reconciling")
            self.listen_key = None
            return False
        self._on_event(msg)
        return True

    async def _keepalive(self) -> None:
        """PUT when the key is ``keepalive_s`` old (at once if a reconnect found it older); a failed PUT is
        tried again after a tenth of the period (at most a minute), well inside the key's 60 minutes."""
        while True:
            renewed = self.renewed_at if self.renewed_at is not None else self.clock.monotonic()
            await self.clock.sleep(max(0.0, renewed + self.keepalive_s - self.clock.monotonic()))
            try:
                await self.rest.request("PUT", "/fapi/v1/listenKey", security=KEYED)
            except ListenKeyError:
                log.warning("user stream: keepalive says the listenKey is gone (-1125); reconnecting with a new one")
                self.listen_key = None
                await self.socket.close_connection()
                return
            except BinanceError as exc:
                log.warning("user stream: keepalive failed: %s", exc)
                await self.clock.sleep(min(60.0, self.keepalive_s / 10))
                continue
            self.keepalives += 1
            self.renewed_at = self.clock.monotonic()

    async def stop(self, close_key: bool = True) -> None:
        await self.socket.stop()
        if close_key and self.listen_key:
            with contextlib.suppress(BinanceError, OSError):
                await self.rest.request("DELETE", "/fapi/v1/listenKey", security=KEYED)

    def drop(self) -> None:
        """Close the connection as if the network had failed (tests, operators)."""
        self.socket.drop()
