"""WebSocket connections and market-stream subscriptions (reference section 8).

Each connection owns an outbound queue drained by one writer task, so a slow client delays only
itself and messages keep their order. The hub maps stream names to connections; the publisher
builds each payload once and the hub fans the encoded text out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


def canonical(name: str) -> str:
    """Stream names are matched with the symbol part in lower case (``BTCUSDT@kline_1m`` works too)."""
    if name.startswith("!"):
        return name
    head, sep, rest = name.partition("@")
    return head.lower() + sep + rest


class Conn:
    """One client WebSocket: subscriptions, outbound queue, fault hooks."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        combined: bool,
        max_incoming_per_s: int,
        rng: random.Random | None = None,
        drop_rate: float = 0.0,
        stall_rate: float = 0.0,
        stall_seconds: float = 0.0,
        on_fault: Callable[[str], None] | None = None,
    ) -> None:
        self.ws = ws
        self.request = request
        self.combined = combined
        self.streams: list[str] = []
        self.listen_key: str | None = None
        self.events: frozenset[str] | None = None  # user stream event filter
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False
        self.max_incoming = max_incoming_per_s
        self._window = 0.0
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
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def incoming_ok(self) -> bool:
        """Binance allows 10 incoming messages per second per connection; more closes it."""
        now = time.monotonic()
        if now - self._window >= 1.0:
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
                            await asyncio.sleep(self._stall_s)
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


class StreamHub:
    """Stream name -> subscribed connections."""

    def __init__(self, max_streams: int) -> None:
        self.subs: dict[str, set[Conn]] = {}
        self.max_streams = max_streams

    def has(self, name: str) -> bool:
        return name in self.subs

    def subscribe(self, conn: Conn, names: Iterable[str]) -> None:
        for raw in names:
            name = canonical(raw)
            if name not in conn.streams:
                conn.streams.append(name)
            self.subs.setdefault(name, set()).add(conn)

    def unsubscribe(self, conn: Conn, names: Iterable[str]) -> None:
        for raw in names:
            name = canonical(raw)
            if name in conn.streams:
                conn.streams.remove(name)
            subs = self.subs.get(name)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self.subs[name]

    def remove(self, conn: Conn) -> None:
        self.unsubscribe(conn, list(conn.streams))

    def publish(self, name: str, payload: Any) -> None:
        conns = self.subs.get(name)
        if not conns:
            return
        data = json.dumps(payload, separators=(",", ":"))
        wrapped = None
        for conn in conns:
            if conn.combined:
                if wrapped is None:
                    wrapped = f'{{"stream":"{name}","data":{data}}}'
                conn.push(wrapped)
            else:
                conn.push(data)

    def all_conns(self) -> set[Conn]:
        out: set[Conn] = set()
        for conns in self.subs.values():
            out |= conns
        return out


def control_reply(hub: StreamHub, conn: Conn, text: str) -> dict[str, Any] | None:
    """Answer a client's control message (SUBSCRIBE & co.), or Binance's error for a malformed one."""
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        return {"code": 3, "msg": f"Invalid JSON: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}"}
    if not isinstance(msg, dict):
        return {"code": 2, "msg": "Invalid request: expected an object"}
    req_id = msg.get("id")
    if "id" in msg and not (
        (isinstance(req_id, int) and not isinstance(req_id, bool) and req_id >= 0) or isinstance(req_id, str)
    ):
        return {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer", "id": None}
    method = msg.get("method")
    if method is None:
        return {"code": 2, "msg": "Invalid request: missing field `method`", "id": req_id}
    if method not in _METHODS:
        expected = ", ".join(f"`{m}`" for m in _METHODS)
        return {"code": 2, "msg": f"Invalid request: unknown variant `{method}`, expected one of {expected}",
                "id": req_id}
    params = msg.get("params", [])
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if not isinstance(params, list) or not all(isinstance(p, str) and p for p in params):
            return {"code": 2, "msg": "Invalid request: property name must be a string", "id": req_id}
        if method == "SUBSCRIBE":
            if len(set(conn.streams) | {canonical(p) for p in params}) > hub.max_streams:
                return {"code": 2, "msg": "Invalid request: too many parameters", "id": req_id}
            hub.subscribe(conn, params)
        else:
            hub.unsubscribe(conn, params)
        return {"result": None, "id": req_id}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": list(conn.streams), "id": req_id}
    if not isinstance(params, list) or not params or params[0] != "combined":
        return {"code": 0, "msg": "Unknown property", "id": req_id}
    if method == "SET_PROPERTY":
        if len(params) != 2 or not isinstance(params[1], bool):
            return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": req_id}
        conn.combined = params[1]
        return {"result": None, "id": req_id}
    return {"result": conn.combined, "id": req_id}
