"""The REST front door: routing, faults, weights, keys, signatures, then the handler; errors as JSON.

Order of checks for a signed request: endpoint exists -> request weight (429/418) -> API key
(-2014/-2015) -> timestamp and recvWindow (-1021) -> signature (-1022) -> unknown parameters (-1104)
-> order count (-1015) -> handler. Anything unexpected becomes -1000 with HTTP 500 and is logged, so a
client never sees a stack trace or an HTML page.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

from aiohttp import web

from .accounts import Account
from .auth import check_api_key, check_timestamp, verify_signature
from .endpoints import NONE, SIGNED, Ctx, Endpoint
from .errors import ApiError, error_body, path_invalid
from .params import Params, parse_pairs
from .venue import SandboxVenue
from .wire import dumps

log = logging.getLogger(__name__)

_JSON = "application/json"
_NO_ORDERS = (0, 0)
Reply = tuple[int, dict[str, str], bytes]
"""An answer: HTTP status, headers other than Content-Type (always JSON), body."""
_UNKNOWN_503 = "Unknown error, please check your request or try again later."
_INTERNAL = "Internal error; unable to process your request. Please try again."
_TIMEOUT = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."


class Gateway:
    """Routes a request to its endpoint through Binance's checks; delays come from the venue's clock."""

    def __init__(self, venue: SandboxVenue, endpoints: Iterable[Endpoint]) -> None:
        self.venue = venue
        self.table: dict[tuple[str, str], Endpoint] = {}
        self.paths: set[str] = set()
        for e in endpoints:
            self.table[(e.method, e.path)] = e
            self.paths.add(e.path)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp's way in (WebSocket-era routes, ``--state``, whatever :mod:`.http_server` hands over)."""
        try:
            body: bytes | None = await request.read() if request.can_read_body else b""
        except web.HTTPRequestEntityTooLarge:
            body = None
        status, headers, data = await self.answer(request.method, request.path, request.raw_path.partition("?")[2],
                                                  body, request.headers.get("X-MBX-APIKEY"), request.remote or "?")
        return web.Response(status=status, body=data, headers=headers, content_type=_JSON)

    def respond(self, method: str, path: str, query: str, raw: bytes | None, api_key: str | None,
                ip: str) -> Reply | Coroutine[Any, Any, Reply]:
        """:meth:`answer` without a coroutine when nothing has to wait: the reply itself (a tuple) in the usual
        case (no faults on, a handler that answers at once), else a coroutine to await for it. The lean HTTP
        front calls this: a coroutine per request (made, sent into, stopped) costs more than the checks."""
        ep = self.table.get((method, path))
        if ep is None or self.venue.faults.on:
            return self.answer(method, path, query, raw, api_key, ip)
        headers: dict[str, str] = {}
        try:
            params, account, _ = self._admit(ep, query, raw, api_key, ip, headers)
            result = ep.handler(Ctx(self.venue, params, account))
            cls = result.__class__
            if cls is dict or cls is list:
                return 200, headers, dumps(result)
            if cls is bytes:
                return 200, headers, result
            if asyncio.iscoroutine(result):
                return self._finish(result, headers, method, path, query)
            return 200, headers, dumps(result)
        except Exception as exc:
            return _failure(exc, headers, method, path, query)

    async def _finish(self, result: Coroutine[Any, Any, Any], headers: dict[str, str], method: str, path: str,
                      query: str) -> Reply:
        """The rest of :meth:`respond` for a handler that waits."""
        try:
            data = await result
            return 200, headers, data if isinstance(data, bytes) else dumps(data)
        except Exception as exc:
            return _failure(exc, headers, method, path, query)

    def _admit(self, ep: Endpoint, query: str, raw: bytes | None, api_key: str | None, ip: str,
               headers: dict[str, str]) -> tuple[Params, Account | None, int]:
        """Binance's checks after routing and faults, in its order: body size, weight, key, timestamp, signature,
        unknown parameters, order count (the count headers go into ``headers``). Returns the parameters, the
        account (keyed endpoints) and the server time used; raises :class:`ApiError`."""
        venue = self.venue
        if raw is None:
            raise ApiError(-1000, "Request body too large.", 413)
        body = raw.decode("utf-8", "surrogateescape") if raw else ""
        params = Params(parse_pairs(query, body))
        now = venue.wall_ms()
        weight = ep.weight
        used = venue.limiter.weight(ip, weight(params) if callable(weight) else weight, now)
        headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        account = None
        security = ep.security
        if security != NONE:
            key = check_api_key(api_key, venue.keys)
            account = venue.accounts[key.api_key]
            if security == SIGNED:
                d = params.data
                check_timestamp(d.get("timestamp"), d.get("recvWindow"), now, venue.config.recv_window_max)
                verify_signature(key, query, body)
        params.check_known(ep.params)
        orders = ep.orders
        if orders != _NO_ORDERS:
            assert account is not None
            c10, c60 = venue.limiter.orders(account.key.api_key, orders[0], orders[1], now)
            headers["X-MBX-ORDER-COUNT-10S"] = str(c10)
            headers["X-MBX-ORDER-COUNT-1M"] = str(c60)
        return params, account, now

    async def answer(self, method: str, path: str, query: str, raw: bytes | None, api_key: str | None,
                     ip: str) -> Reply:
        """One REST request, from its parts: ``query`` is the raw query string, ``raw`` the body (None: larger
        than allowed), ``api_key`` the X-MBX-APIKEY header. Returns the status, the headers besides
        Content-Type (always JSON), and the body. Every outcome is an answer; nothing raises."""
        venue = self.venue
        headers: dict[str, str] = {}
        try:
            ep = self.table.get((method, path))
            if ep is None:
                status = 405 if path in self.paths else 404
                raise path_invalid(method, path, status)
            faults = venue.faults
            faulty = faults.on
            if faulty:
                delay = faults.latency_s()
                if delay:
                    await venue.clock.sleep(delay)
                if faults.burst():
                    limit = venue.limiter.weight_limit
                    raise ApiError(-1003, f"Too many requests; current limit is {limit} requests per minute. Please "
                                   "use the websocket for live updates to avoid polling the API.", 429,
                                   {"Retry-After": "1"})
            params, account, now = self._admit(ep, query, raw, api_key, ip, headers)
            if not (faulty and ep.order_fault):  # no order fault can hit this request
                result = ep.handler(Ctx(venue, params, account))
                if asyncio.iscoroutine(result):
                    result = await result
                return 200, headers, result if isinstance(result, bytes) else dumps(result)
            fault = faults.order_fault()
            if fault == "error-rejected":
                raise ApiError(-1001, _INTERNAL, 503)
            if fault == "timeout-rejected":
                await venue.clock.sleep(faults.cfg.timeout_seconds)
                raise ApiError(-1007, _TIMEOUT, 408)
            result = ep.handler(Ctx(venue, params, account))
            if asyncio.iscoroutine(result):
                result = await result
            if fault in ("error-executed", "timeout-executed") and account is not None:
                if isinstance(result, bytes):  # an order object printed directly (wire.order_bytes)
                    result = json.loads(result)
                for placed in result if isinstance(result, list) else [result]:
                    wire_id = placed.get("orderId", placed.get("algoId")) if isinstance(placed, dict) else None
                    if isinstance(wire_id, int):
                        faults.hide(account.key.api_key, wire_id, now)
            if fault == "error-executed":
                raise ApiError(-1000, _UNKNOWN_503, 503)
            if fault == "timeout-executed":
                await venue.clock.sleep(faults.cfg.timeout_seconds)
                raise ApiError(-1007, _TIMEOUT, 408)
            return 200, headers, result if isinstance(result, bytes) else dumps(result)
        except Exception as exc:
            return _failure(exc, headers, method, path, query)


def _failure(exc: Exception, headers: dict[str, str], method: str, path: str, query: str) -> Reply:
    """The answer to a request whose handling raised (called inside the ``except``: the traceback is logged)."""
    if isinstance(exc, ApiError):
        headers.update(exc.headers)
        return exc.status, headers, exc.body()
    log.exception("sandbox: unexpected error on %s %s%s", method, path, f"?{query}" if query else "")
    return 500, headers, error_body(-1000, "An unknown error occured while processing the request.")


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Last line of defence for routes outside the gateway (WebSocket upgrades, admin)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        err = path_invalid(request.method, request.path, exc.status) if exc.status in (404, 405) else ApiError(
            -1000, exc.reason or "error", exc.status)
        return web.Response(status=err.status, body=err.body(), content_type=_JSON)
    except ApiError as err:
        return web.Response(status=err.status, body=err.body(), headers=err.headers, content_type=_JSON)
    except Exception:
        log.exception("sandbox: unexpected error on %s %s", request.method, request.path_qs)
        body = error_body(-1000, "An unknown error occured while processing the request.")
        return web.Response(status=500, body=body, content_type=_JSON)
