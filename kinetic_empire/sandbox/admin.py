"""``/sandbox-admin/*``: control the sandbox from another process (tests of the live engine, demos).

Off unless ``SandboxConfig.admin`` (``--admin``) is set. Not part of Binance's API: its paths can never
collide with a real endpoint, and it takes no API key (bind to loopback).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .connection import Connections
from .errors import ApiError
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


def status(venue: SandboxVenue, conns: Connections) -> dict[str, Any]:
    return {
        "marketTime": venue.market_ms(),
        "serverTime": venue.wall_ms(),
        "done": venue.replay.done,
        "paused": venue.paused,
        "updatesPlayed": venue.updates_played,
        "symbols": list(venue.market.series),
        "connections": len(conns),
        "accounts": {k[:8]: {"wallet": str(a.exchange.wallet), "openOrders": len(a.open_orders(None))}
                     for k, a in venue.accounts.items()},
        "faults": {name: getattr(venue.faults.cfg, name) for name in venue.faults.cfg.__dataclass_fields__},
        "faultCounts": dict(venue.faults.counts),
    }


def routes(venue: SandboxVenue, conns: Connections) -> list[web.RouteDef]:
    async def get_status(request: web.Request) -> web.Response:
        return web.json_response(status(venue, conns))

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

    async def pause(request: web.Request) -> web.Response:
        venue.paused = request.path.endswith("/pause")
        return web.json_response({"paused": venue.paused})

    return [
        web.get(f"{PREFIX}/status", get_status),
        web.post(f"{PREFIX}/faults", set_faults),
        web.post(f"{PREFIX}/step", step),
        web.post(f"{PREFIX}/advance", advance),
        web.post(f"{PREFIX}/expire-listen-keys", expire),
        web.post(f"{PREFIX}/drop-streams", drop),
        web.post(f"{PREFIX}/pause", pause),
        web.post(f"{PREFIX}/resume", pause),
    ]
