"""``/sandbox-admin/*``: control the sandbox from another process (tests of the live engine, demos).

Off unless ``SandboxConfig.admin`` (``--admin``) is set. Not part of Binance's API: its paths can never
collide with a real endpoint, and it takes no API key (bind to loopback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import ApiError

if TYPE_CHECKING:
    from .server import SandboxServer

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


def status(srv: SandboxServer) -> dict[str, Any]:
    return {
        "marketTime": srv.market_ms(),
        "serverTime": srv.wall_ms(),
        "done": srv.replay.done,
        "paused": srv.paused,
        "updatesPlayed": srv.updates_played,
        "symbols": list(srv.market.series),
        "connections": len(srv.conns),
        "accounts": {k[:8]: {"wallet": str(a.exchange.wallet), "openOrders": len(a.open_orders(None))}
                     for k, a in srv.accounts.items()},
        "faults": {name: getattr(srv.faults.cfg, name) for name in srv.faults.cfg.__dataclass_fields__},
        "faultCounts": dict(srv.faults.counts),
    }


def routes(srv: SandboxServer) -> list[web.RouteDef]:
    async def get_status(request: web.Request) -> web.Response:
        return web.json_response(status(srv))

    async def set_faults(request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            srv.faults.cfg.update(changes)
        except (ValueError, TypeError) as exc:
            raise ApiError(-1130, f"Data sent for parameter 'faults' is not valid: {exc}") from None
        if "seed" in changes:
            srv.faults.reseed()
        return web.json_response(status(srv)["faults"])

    async def step(request: web.Request) -> web.Response:
        updates = request.query.get("updates")
        if updates is not None:
            await srv.step_updates(_int(request, "updates"))
        else:
            await srv.step(_int(request, "klines", 1))
        return web.json_response({"marketTime": srv.market_ms(), "done": srv.replay.done})

    async def advance(request: web.Request) -> web.Response:
        await srv.advance_to(_int(request, "to"))
        return web.json_response({"marketTime": srv.market_ms(), "done": srv.replay.done})

    async def expire(request: web.Request) -> web.Response:
        return web.json_response({"expired": srv.users.expire_due(force=True)})

    async def drop(request: web.Request) -> web.Response:
        conns = list(srv.conns)
        for conn in conns:
            conn.drop()
        return web.json_response({"dropped": len(conns)})

    async def pause(request: web.Request) -> web.Response:
        srv.paused = request.path.endswith("/pause")
        return web.json_response({"paused": srv.paused})

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
