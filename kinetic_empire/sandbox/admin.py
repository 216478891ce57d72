"""``/sandbox-admin/*``: control the sandbox from another process (tests of the live engine, demos).

Off unless ``SandboxConfig.admin`` (``--admin``) is set. Not part of Binance's API: its paths can never
collide with a real endpoint, and it takes no API key (bind to loopback).

``ban?seconds=N`` bans every IP for N seconds (HTTP 418, -1003, ``Retry-After``), as Binance does to a
client that kept sending past 429s, so a client's ban handling can be forced (0 lifts it). ``adl?symbol=S
[&quantity=Q]`` auto-deleverages every account's position on S (an ``adl_autoclose`` fill).

``hold`` / ``release`` make one kind of request slow on purpose: the next ``count`` requests to an endpoint
(default ``POST /fapi/v1/algoOrder``, where stops go) pass every check, then wait before the venue acts on
them until ``release``; the replay can be stepped meanwhile. That is how a test moves the price through a
stop's trigger between the entry's fill and the stop's placement, as a slow network does on Binance.
"""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from typing import Any

from aiohttp import web

from ..core.errors import ExchangeError
from .connection import Connections
from .endpoints import Ctx, Endpoint
from .errors import ApiError
from .gateway import Gateway
from .venue import SandboxVenue

PREFIX = "/sandbox-admin"


def _int(request: web.Request, name: str, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(-1130, f"Data sent for parameter '{name}' is not valid.") from None


class Holds:
    """Requests held before their handler runs, until released (one server's; built with its routes)."""

    def __init__(self) -> None:
        self.armed: dict[tuple[str, str], int] = {}  # (method, path) -> how many more to hold
        self.waiting = 0
        self._gate = asyncio.Event()

    def arm(self, gateway: Gateway, method: str, path: str, count: int) -> None:
        ep = gateway.table.get((method, path))
        if ep is None:
            raise ApiError(-1130, f"Data sent for parameter 'path' is not valid: no endpoint {method} {path}.")
        if not getattr(ep.handler, "held", False):
            gateway.table[(method, path)] = dataclasses.replace(ep, handler=self._wrap(ep, (method, path)))
        self.armed[(method, path)] = self.armed.get((method, path), 0) + count

    def _wrap(self, ep: Endpoint, key: tuple[str, str]) -> Any:
        original = ep.handler

        async def held(ctx: Ctx) -> Any:
            if self.armed.get(key, 0) > 0:
                self.armed[key] -= 1
                self.waiting += 1
                gate = self._gate
                try:
                    await gate.wait()
                finally:
                    self.waiting -= 1
            result = original(ctx)
            return await result if asyncio.iscoroutine(result) else result

        held.held = True  # type: ignore[attr-defined]
        return held

    def release(self) -> int:
        """Let every held request go on (in arrival order); holds not used yet are disarmed."""
        n = self.waiting
        self._gate.set()
        self._gate = asyncio.Event()
        self.armed.clear()
        return n


def _gateway(app: web.Application) -> Gateway:
    """The server's REST gateway: the catch-all route's handler."""
    for route in app.router.routes():
        owner = getattr(route.handler, "__self__", None)
        if isinstance(owner, Gateway):
            return owner
    raise ApiError(-1000, "no REST gateway on this server")


def status(venue: SandboxVenue, conns: Connections, holds: Holds | None = None) -> dict[str, Any]:
    return {
        "marketTime": venue.market_ms(),
        "serverTime": venue.wall_ms(),
        "done": venue.replay.done,
        "paused": venue.paused,
        "pauseAt": venue.pause_at,
        "updatesPlayed": venue.updates_played,
        "symbols": list(venue.market.series),
        "connections": len(conns),
        "accounts": {k[:8]: {"wallet": str(a.exchange.wallet), "openOrders": len(a.open_orders(None))}
                     for k, a in venue.accounts.items()},
        "faults": {name: getattr(venue.faults.cfg, name) for name in venue.faults.cfg.__dataclass_fields__},
        "faultCounts": dict(venue.faults.counts),
        "held": holds.waiting if holds is not None else 0,
    }


def routes(venue: SandboxVenue, conns: Connections) -> list[web.RouteDef]:
    holds = Holds()

    async def get_status(request: web.Request) -> web.Response:
        return web.json_response(status(venue, conns, holds))

    async def hold(request: web.Request) -> web.Response:
        method = request.query.get("method", "POST").upper()
        path = request.query.get("path", "/fapi/v1/algoOrder")
        count = _int(request, "count", 1)
        if count < 1:
            raise ApiError(-1130, "Data sent for parameter 'count' is not valid.")
        holds.arm(_gateway(request.app), method, path, count)
        return web.json_response({"method": method, "path": path, "armed": holds.armed[(method, path)]})

    async def release(request: web.Request) -> web.Response:
        return web.json_response({"released": holds.release()})

    async def set_faults(request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            venue.faults.cfg.update(changes)
        except (ValueError, TypeError) as exc:
            raise ApiError(-1130, f"Data sent for parameter 'faults' is not valid: {exc}") from None
        if "seed" in changes:
            venue.faults.reseed()
        return web.json_response(status(venue, conns)["faults"])

    async def step(request: web.Request) -> web.Response:
        updates = request.query.get("updates")
        if updates is not None:
            venue.play_updates(_int(request, "updates"))
        else:
            venue.play_klines(_int(request, "klines", 1))
        await conns.flush()
        return web.json_response({"marketTime": venue.market_ms(), "done": venue.replay.done})

    async def advance(request: web.Request) -> web.Response:
        venue.play_until(_int(request, "to"))
        await conns.flush()
        return web.json_response({"marketTime": venue.market_ms(), "done": venue.replay.done})

    async def expire(request: web.Request) -> web.Response:
        return web.json_response({"expired": venue.users.expire_due(force=True)})

    async def drop(request: web.Request) -> web.Response:
        return web.json_response({"dropped": conns.drop_all()})

    async def adl(request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        raw = request.query.get("quantity")
        try:
            qty = Decimal(raw) if raw is not None else None
            if qty is not None and not qty > 0:
                raise ValueError("quantity must be positive")
            hit = venue.auto_deleverage(symbol, qty)
        except (ArithmeticError, ValueError, ExchangeError) as exc:
            raise ApiError(-1130, f"Data sent for parameter 'symbol'/'quantity' is not valid: {exc}") from None
        await conns.flush()
        return web.json_response({"symbol": symbol, "accounts": hit})

    async def ban(request: web.Request) -> web.Response:
        seconds = _int(request, "seconds", 120)
        if seconds < 0:
            raise ApiError(-1130, "Data sent for parameter 'seconds' is not valid.")
        until = venue.limiter.ban(seconds, venue.wall_ms())
        return web.json_response({"bannedUntil": until})

    async def pause(request: web.Request) -> web.Response:
        """``/pause`` now, ``/pause?at=<ms>`` once market time reaches ``at`` (a breakpoint: a driver that
        acts at a market time cannot be late, however slow it is), ``/resume``."""
        if request.path.endswith("/pause") and "at" in request.query:
            venue.pause_at = _int(request, "at")
        else:
            venue.paused = request.path.endswith("/pause")
            venue.pause_at = None if venue.paused else venue.pause_at
        return web.json_response({"paused": venue.paused, "pauseAt": venue.pause_at})

    return [
        web.get(f"{PREFIX}/status", get_status),
        web.post(f"{PREFIX}/faults", set_faults),
        web.post(f"{PREFIX}/step", step),
        web.post(f"{PREFIX}/advance", advance),
        web.post(f"{PREFIX}/expire-listen-keys", expire),
        web.post(f"{PREFIX}/drop-streams", drop),
        web.post(f"{PREFIX}/pause", pause),
        web.post(f"{PREFIX}/resume", pause),
        web.post(f"{PREFIX}/hold", hold),
        web.post(f"{PREFIX}/release", release),
        web.post(f"{PREFIX}/adl", adl),
        web.post(f"{PREFIX}/ban", ban),
    ]
