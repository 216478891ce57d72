"""WebSocket endpoints: market streams (raw and combined, routed and unrouted paths) and user streams.

Paths served (reference 8.1, 8.3, 11): ``/public``, ``/market`` and unrouted (``""``), each with
``/ws``, ``/ws/<streams>`` and ``/stream?streams=``; ``/private/ws?listenKey=``, ``/private/ws/<listenKey>``
and ``/private/stream?listenKey=``. Routes are policed as Binance's production does since 2026-04-23: a
connection is accepted and its subscriptions listed, but it receives only its route's streams
(:func:`.streams.delivers`): book data on ``/public``, every other market stream on ``/market``, user
data only on ``/private``; an unrouted path gets /public-class data only. ``SandboxConfig.legacy_routes``
brings back the old behaviour (unrouted paths carry every stream, and a listenKey given where a stream
name is expected, the legacy ``/ws/<listenKey>``, opens the user stream).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from .connection import Conn, Connections
from .errors import ApiError
from .streams import control_reply
from .venue import SandboxVenue


def routes(venue: SandboxVenue, conns: Connections) -> list[web.RouteDef]:
    def handler(route: str, combined: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await serve(venue, conns, request, combined=combined, route=route)

        return handle

    out = []
    for route in ("", "market", "public"):
        prefix = f"/{route}" if route else ""
        out += [
            web.get(f"{prefix}/ws", handler(route, False)),
            web.get(prefix + "/ws/{tail:.+}", handler(route, False)),
            web.get(f"{prefix}/stream", handler(route, True)),
        ]
    out += [
        web.get("/private/ws", handler("private", False)),
        web.get("/private/ws/{tail:.+}", handler("private", False)),
        web.get("/private/stream", handler("private", True)),
    ]
    return out


async def serve(
    venue: SandboxVenue, conns: Connections, request: web.Request, *, combined: bool, route: str
) -> web.StreamResponse:
    private = route == "private"
    tail = request.match_info.get("tail", "")
    names = [n for n in tail.split("/") if n]
    streams_q = request.query.get("streams", "")
    names += [n for n in streams_q.split("/") if n]
    key = request.query.get("listenKey")
    users = venue.users
    if private:
        if key is None and names:
            key = names.pop(0)
        if not key or key not in users.by_key:
            raise ApiError(-1125, "This listenKey does not exist.")
    else:
        keys = [n for n in names if n in users.by_key]
        if keys:
            key = keys[0] if route == "" and venue.config.legacy_routes else None  # else: connects, gets nothing
            names = [n for n in names if n not in users.by_key]
        elif key is not None and not (route == "" and venue.config.legacy_routes):
            key = None  # ?listenKey= on a market route: ignored
    if key is not None and key not in users.by_key:
        raise ApiError(-1125, "This listenKey does not exist.")
    if len(names) > venue.config.ws_max_streams:
        raise ApiError(-1130, "Data sent for parameter 'streams' is not valid.")
    cfg = venue.config
    ws = web.WebSocketResponse(heartbeat=cfg.ws_ping_interval_s, autoping=True)
    await ws.prepare(request)
    fc = venue.faults.cfg
    conn = Conn(ws, request, combined=combined, max_incoming_per_s=cfg.ws_max_incoming_per_s, route=route,
                clock=venue.clock,
                rng=venue.faults.ws_rng(), drop_rate=fc.ws_drop_rate, stall_rate=fc.ws_stall_rate,
                stall_seconds=fc.ws_stall_seconds, on_fault=venue.faults.note)
    events = request.query.get("events")
    if events:
        conn.events = frozenset(events.split("/"))
    conns.add(conn)
    if names:
        venue.hub.subscribe(conn, names)
    if key is not None:
        users.attach(key, conn)
    conn.start()
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                if not conn.incoming_ok():
                    await ws.close(code=1008, message=b"Too many messages")
                    break
                reply = control_reply(venue.hub, conn, msg.data)
                if reply is not None:
                    conn.push(json.dumps(reply, separators=(",", ":")))
            elif msg.type == WSMsgType.BINARY:
                if not conn.incoming_ok():
                    await ws.close(code=1008, message=b"Too many messages")
                    break
                conn.push('{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}')
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        venue.hub.remove(conn)
        users.detach(conn)
        conns.discard(conn)
        conn.close_soon()
        if conn.writer is not None:
            with contextlib.suppress(Exception):
                await conn.writer
    return ws
