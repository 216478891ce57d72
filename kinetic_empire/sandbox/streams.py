"""Market-stream subscriptions (reference section 8): stream names, the hub, and control messages.

The hub maps stream names to subscribers; the publisher builds each payload once and the hub fans the
encoded text out. Nothing here knows about sockets: a subscriber is anything that takes text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


def canonical(name: str) -> str:
    """Stream names are matched with the symbol part in lower case (``BTCUSDT@kline_1m`` works too)."""
    if name.startswith("!"):
        return name
    head, sep, rest = name.partition("@")
    return head.lower() + sep + rest


# Binance's routes (reference 8.1): high-frequency book data on /public, every other market stream on
# /market, the user data stream on /private. ccxt pro routes ``@trade`` to /public too.
_PUBLIC_CHANNELS = ("bookTicker", "depth", "rpiDepth", "trade")
ROUTES = ("public", "market", "private", "")  # "" = an unrouted (legacy) path


def stream_route(name: str) -> str:
    """The route that carries a market stream: ``"public"`` or ``"market"``."""
    channel = name[1:] if name.startswith("!") else name.partition("@")[2]  # "depth5@100ms", "bookTicker"
    return "public" if channel.startswith(_PUBLIC_CHANNELS) else "market"


def delivers(route: str, name: str, unrouted_all: bool) -> bool:
    """Whether a connection on ``route`` gets stream ``name``: a routed path only its own class; an
    unrouted path (``/ws``, ``/stream``) only /public-class data, as Binance's production since
    2026-04-23, or everything with ``unrouted_all`` (the legacy behaviour, still seen on the testnet)."""
    if route == "":
        return unrouted_all or stream_route(name) == "public"
    return route == stream_route(name)


class Subscriber(Protocol):
    """What the hub and the user streams need of a connection (:class:`.connection.Conn` is one)."""

    combined: bool
    route: str
    streams: list[str]
    listen_key: str | None
    events: frozenset[str] | None

    def push(self, text: str) -> None: ...

    def push_json(self, payload: Any, stream: str | None = None) -> None: ...

    def close_soon(self) -> None: ...


class StreamHub:
    """Stream name -> subscribers."""

    def __init__(self, max_streams: int, legacy_routes: bool = False) -> None:
        self.subs: dict[str, set[Subscriber]] = {}
        self.max_streams = max_streams
        self.legacy_routes = legacy_routes  # unrouted paths deliver every stream

    def has(self, name: str) -> bool:
        return name in self.subs

    def subscribe(self, conn: Subscriber, names: Iterable[str]) -> None:
        for raw in names:
            name = canonical(raw)
            if name not in conn.streams:
                conn.streams.append(name)
            if delivers(conn.route, name, self.legacy_routes):  # else: accepted and listed, never sent
                self.subs.setdefault(name, set()).add(conn)

    def unsubscribe(self, conn: Subscriber, names: Iterable[str]) -> None:
        for raw in names:
            name = canonical(raw)
            if name in conn.streams:
                conn.streams.remove(name)
            subs = self.subs.get(name)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self.subs[name]

    def remove(self, conn: Subscriber) -> None:
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


def control_reply(hub: StreamHub, conn: Subscriber, text: str) -> dict[str, Any] | None:
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
