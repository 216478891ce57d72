"""Shared helpers for the sandbox tests: a stepped sandbox on small real klines and a signed REST client.

The client signs exactly as Binance's docs say (HMAC-SHA256 over the query string, or the form body),
with aiohttp over real loopback sockets: no mocks anywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from kinetic_empire.core.clock import Clock, ManualClock
from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer

DATA = Path(__file__).parents[1] / "data" / "sandbox"  # FILUSDT and NEARUSDT, 2023-08-01 and 02, real 1m klines
SYM = "FILUSDT"
WALL0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC: a ManualClock's server time, on a whole minute


def wall_ms() -> int:
    return int(time.time() * 1000)


def config(**kw: Any) -> SandboxConfig:
    kw.setdefault("data", [DATA])
    kw.setdefault("limits", RateLimitConfig(enforce=False))
    return SandboxConfig(**kw)


class Reply:
    def __init__(self, status: int, data: Any, headers: Any) -> None:
        self.status = status
        self.data = data
        self.headers = headers

    @property
    def code(self) -> int | None:
        return self.data.get("code") if isinstance(self.data, dict) else None

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.data!r})"


class Client:
    """A minimal Binance USD-M REST client."""

    def __init__(self, sb: SandboxServer, session: aiohttp.ClientSession, key: str | None = None,
                 secret: str | None = None, now_ms: Callable[[], int] = wall_ms) -> None:
        self.sb = sb
        self.now_ms = now_ms  # the client's clock, for request timestamps
        self.session = session
        self.key = key if key is not None else sb.api_key
        self.secret = secret if secret is not None else sb.api_secret
        self.time_offset = 0

    def signed_query(self, params: dict[str, Any]) -> str:
        params = {**params}
        params.setdefault("timestamp", self.now_ms() + self.time_offset)
        q = urlencode(params)
        return q + "&signature=" + hmac.new(self.secret.encode(), q.encode(), hashlib.sha256).hexdigest()

    async def call(self, method: str, path: str, params: dict[str, Any] | None = None, *, signed: bool = True,
                   in_body: bool = False, key: bool = True, raw_query: str | None = None) -> Reply:
        params = params or {}
        headers = {"X-MBX-APIKEY": self.key} if key else {}
        text = raw_query if raw_query is not None else (self.signed_query(params) if signed else urlencode(params))
        url = self.sb.rest_url + path
        body = None
        if in_body:
            body = text
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif text:
            url += "?" + text
        async with self.session.request(method, URL(url, encoded=True), data=body, headers=headers) as r:
            raw = await r.read()
            try:
                data = json.loads(raw)
            except ValueError:
                data = raw.decode(errors="replace")
            return Reply(r.status, data, r.headers)

    async def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Reply:
        return await self.call("GET", path, params, **kw)

    async def post(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Reply:
        return await self.call("POST", path, params, **kw)

    async def delete(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Reply:
        return await self.call("DELETE", path, params, **kw)

    async def public(self, path: str, params: dict[str, Any] | None = None) -> Reply:
        return await self.call("GET", path, params, signed=False, key=False)

    async def order(self, **params: Any) -> Reply:
        params.setdefault("symbol", SYM)
        return await self.post("/fapi/v1/order", params)


Body = Callable[[SandboxServer, Client], Awaitable[None]]


def run(body: Body, timeout: float = 30.0, clock: Clock | None = None, **cfg: Any) -> None:
    """Start a sandbox (stepped replay) and run ``body(sandbox, client)`` against it.

    With ``clock`` (a :class:`ManualClock`) the sandbox's server time is that clock and the client signs
    with it too, so a test moves time instead of waiting for it.
    """

    async def main() -> None:
        async with SandboxServer(config(**cfg), clock=clock) as sb, aiohttp.ClientSession() as session:
            for _ in range(3):  # let the server's background tasks start (and go to sleep on the clock)
                await asyncio.sleep(0)
            await body(sb, Client(sb, session, now_ms=clock.now_ms if clock is not None else wall_ms))

    asyncio.run(asyncio.wait_for(main(), timeout))


async def sleepers(clock: ManualClock, n: int) -> None:
    """Wait (on events, not time) until ``n`` tasks sleep on ``clock``: a request has reached its delay."""
    while clock.sleepers < n:
        await asyncio.sleep(0.001)


async def recv_json(ws: Any, timeout: float = 3.0) -> Any:
    """Next JSON message from an aiohttp WebSocket."""
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def collect(ws: Any, predicate: Callable[[Any], bool], timeout: float = 3.0) -> Any:
    """Read messages until one matches ``predicate``; returns it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise TimeoutError("no matching message")
        msg = await recv_json(ws, left)
        if predicate(msg):
            return msg
