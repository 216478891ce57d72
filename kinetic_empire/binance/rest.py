"""Async REST client for Binance USD-M: signing, server time, weight pacing, retries, error mapping.

Retry policy (reference 6.1):
* 429/418: wait ``Retry-After`` (every request waits, not only the one refused), then retry;
* -1021: resync the clock once and retry once;
* -1001/-1008/"Service Unavailable", and connection failures before anything was sent: back off and
  retry (the venue did nothing);
* 5xx/408/-1000/-1007 and timeouts after the request left: retried only for idempotent requests.
  An order placement (``idempotent=False``) gets :class:`UnknownStatusError` instead, so the
  execution port can look the order up by its client id before deciding anything;
* business rejections (any other code) are raised at once and never retried.

The loop is :mod:`.retrying`'s, shared with the downloader; this module only classifies outcomes.

Pacing (:mod:`.pacing`, shared with the downloader too): the ``X-MBX-USED-WEIGHT-1M`` header of every reply
says how much of the minute's weight is used; a request that would go past ``weight_headroom`` of the
limit waits for the next minute.

Time comes from the injected clock: the venue's time is the clock's plus the measured ``offset_ms``.

Transport: the order endpoints (:data:`FAST_PATHS`: placement, look-up, cancels) go through :mod:`.http_client`, a
lean keep-alive client (about a tenth of aiohttp's CPU per request, which sits on every order's latency); everything
else, and any request that client declines, goes through aiohttp. Both map failures alike: nothing sent ->
:class:`UnavailableError`, sent without a usable reply -> :class:`UnknownStatusError` (-1007 timed out, -1000 other).
aiohttp trace configs (request metrics) see the lean client's requests too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from ..core.clock import Clock, LiveClock
from .errors import (
    BinanceError,
    RateLimitError,
    TimestampError,
    UnavailableError,
    UnknownStatusError,
    VenueResponseError,
    error_from_reply,
    is_error_object,
)
from .http_client import ConnectFailed, ExchangeFailed, HttpClient, HttpFailure, InFlight, Reply, Unsupported
from .pacing import WeightPacer
from .retrying import Retrier, Retry
from .signing import Credentials, Signer, encode
from .venues import weight_of

log = logging.getLogger(__name__)

NONE, KEYED, SIGNED = "NONE", "KEYED", "SIGNED"

FAST_PATHS = frozenset({"/fapi/v1/order", "/fapi/v1/algoOrder", "/fapi/v1/allOpenOrders"})
"""Paths sent through the lean client (the order path's latency is theirs)."""
_REHEARSAL = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001", "reduceOnly": "false",
              "newClientOrderId": "rehearsal-e", "newOrderRespType": "RESULT"}  # rehearse_signing's: never sent


@dataclass(slots=True)
class RestStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    unknown_status: int = 0
    resyncs: int = 0
    used_weight: int = 0
    paced_s: float = 0.0


class BinanceRest:
    """One venue's REST API. ``start()`` opens the HTTP session; ``close()`` closes it."""

    def __init__(
        self,
        rest_url: str,
        credentials: Credentials | None = None,
        *,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        max_retries: int = 4,
        backoff_s: float = 0.25,
        backoff_max_s: float = 8.0,
        weight_limit: int = 2400,
        weight_headroom: float = 0.9,
        clock: Clock | None = None,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        seed: int | None = None,
        lean_orders: bool = True,
        keep_warm_s: float | None = None,
    ) -> None:
        self.base = rest_url.rstrip("/")
        self.credentials = credentials
        self.recv_window_ms = recv_window_ms
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.timeout_s = timeout_s
        self.lean_orders = lean_orders
        """Send :data:`FAST_PATHS` through :mod:`.http_client` (else everything goes through aiohttp)."""
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.weight_limit = weight_limit
        self.weight_headroom = weight_headroom
        self.clock = clock or LiveClock()
        self.offset_ms = 0
        """The venue's time minus the clock's, measured by :meth:`sync_time`."""
        self.stats = RestStats()
        self.pacer = WeightPacer(self.clock, self.server_ms, limit=weight_limit, headroom=weight_headroom)
        self._trace = trace_configs
        self._session: aiohttp.ClientSession | None = None
        self._lean: HttpClient | None = None
        self._warming: asyncio.Future[int] | None = None
        self.keep_warm_s = keep_warm_s
        """Every this many seconds (the injected clock) the lean client's idle connections are pinged, so an order
        never pays a handshake after a quiet spell (:meth:`HttpClient.keep_warm`); None: off."""
        self._keeping_warm: asyncio.Task[None] | None = None
        self._signer: Signer | None = None
        self._signed_with: Credentials | None = None
        self.retrier = Retrier(self.clock, self.pacer, random.Random(seed), max_retries, backoff_s, backoff_max_s)

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self, *, connections: int = 2) -> BinanceRest:
        """Open the session; the lean client opens ``connections`` (at most :data:`MAX_WARM_CONNECTIONS`) ahead of the
        first order and keeps them warm: as many as a kline's orders may need at once (a flip sends two per symbol
        together), so none of them pays a handshake (on Binance a TLS one: tens of ms or more)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=32, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout,
                                                  trace_configs=self._trace)
        if self._lean is None and self.lean_orders:
            try:
                self._lean = HttpClient(self.base, clock=self.clock, timeout_s=self.timeout_s)
            except Unsupported as exc:
                log.info("order endpoints through aiohttp: %s", exc)
            else:  # connected before the first order needs it (in the background: start does not wait)
                connections = max(1, min(connections, MAX_WARM_CONNECTIONS))
                self._lean.max_idle = max(self._lean.max_idle, connections)  # kept when released, not closed
                self._warming = asyncio.ensure_future(self._lean.warm(connections))
                if self.keep_warm_s:
                    ping = self._lean.request_bytes("GET", KEEP_WARM_PATH, None, b"")
                    self._keeping_warm = asyncio.ensure_future(self._lean.keep_warm(
                        ping, self.keep_warm_s, connections=connections, on_reply=self._note_ping))
        if self.credentials is not None:  # the signer and the encoder's name cache, made before the first order
            self._signer_of(self.credentials).query(_WARM_PARAMS, 0, self.recv_window_ms)
        return self

    def _note_ping(self, reply: Reply) -> None:
        self.pacer.note(reply.headers)

    async def close(self) -> None:
        for task in (self._warming, self._keeping_warm):
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
        self._warming = self._keeping_warm = None
        if self._lean is not None:
            await self._lean.close()
            self._lean = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> BinanceRest:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def lean_client(self) -> HttpClient | None:
        """The lean client of the order endpoints (None before :meth:`start`, or when aiohttp carries them)."""
        return self._lean

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("BinanceRest.start() was not called")
        return self._session

    # ------------------------------------------------------------------------------ time
    def server_ms(self) -> int:
        """Our best estimate of the venue's server time."""
        return self.clock.now_ms() + self.offset_ms

    async def sync_time(self) -> int:
        """Measure ``offset = serverTime - midpoint(send, receive)`` and sign with it from now on."""
        before = self.clock.now_ms()
        data = await self.request("GET", "/fapi/v1/time")
        after = self.clock.now_ms()
        try:
            server = int(data["serverTime"])
        except (TypeError, KeyError, ValueError):
            answer = str(data)[:80]
            raise VenueResponseError(0, f"/fapi/v1/time answered {answer!r}", 200, "GET /fapi/v1/time") from None
        self.offset_ms = server - (before + after) // 2
        return self.offset_ms

    # ------------------------------------------------------------------------------ requests
    async def get(self, path: str, params: Mapping[str, Any] | None = None, security: str = NONE) -> Any:
        return await self.request("GET", path, params, security=security)

    async def signed(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                     *, idempotent: bool = True) -> Any:
        return await self.request(method, path, params, security=SIGNED, idempotent=idempotent)

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        security: str = NONE,
        idempotent: bool = True,
    ) -> Any:
        """Send with retries per the module's policy; return the decoded JSON or raise a BinanceError."""
        params = params or {}
        endpoint = f"{method} {path}"
        return await self._retried(method, path, params, security, idempotent, endpoint,
                                   lambda: self._once(method, path, params, security, endpoint))

    def send_signed_now(self, method: str, path: str, params: Mapping[str, Any], *,
                        idempotent: bool = True) -> Started | None:
        """Write a signed request on an idle kept-alive connection of the lean client now, without yielding to the
        event loop; :meth:`Started.answer` (awaited in a task) gives the same result, errors and retries as
        :meth:`signed`. None, with nothing sent, when it cannot go out at once (not an order endpoint, no idle
        connection, a rate-limit wait, no key): use :meth:`signed`.

        So an order leaves inside the handler that decided it, not one loop turn later."""
        lean = self._lean
        if (lean is None or path not in FAST_PATHS or self.credentials is None or weight_of(method, path, params)
                or self.pacer.blocked()):
            return None
        endpoint = f"{method} {path}"
        query, headers = self._prepare(params, SIGNED)
        target = f"{path}?{query}" if query else path
        try:
            data = lean.request_bytes(method, target, headers, b"")
        except Unsupported:
            return None
        sent = lean.begin(data)
        if sent is None:
            return None
        self.stats.requests += 1
        return Started(self._finish_started(lean, sent, method, path, params, idempotent, endpoint, target, headers),
                       lambda: lean.abandon(sent))

    async def _finish_started(self, lean: HttpClient, sent: InFlight, method: str, path: str,
                              params: Mapping[str, Any], idempotent: bool, endpoint: str, target: str,
                              headers: dict[str, str]) -> Any:
        """The answer to a request :meth:`send_signed_now` wrote, as :meth:`request` gives it (retries included)."""
        value: Any = None
        failure: Exception | None = None
        try:  # read at once: the deadline runs on this task from now on
            reply = await self._lean_reply(lean, sent, method, target, headers, endpoint)
            value = self._answer(reply.status, reply.body, reply.headers, endpoint)
        except asyncio.CancelledError:
            lean.abandon(sent)
            raise
        except Exception as exc:
            failure = exc
        first = True

        async def attempt() -> Any:
            nonlocal first
            if first:  # the request already sent: its outcome
                first = False
                if failure is not None:
                    raise failure
                return value
            return await self._once(method, path, params, SIGNED, endpoint)

        return await self._retried(method, path, params, SIGNED, idempotent, endpoint, attempt)

    async def _retried(self, method: str, path: str, params: Mapping[str, Any], security: str, idempotent: bool,
                       endpoint: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
        resynced = False

        async def classify(outcome: Any) -> Retry | None:
            nonlocal resynced
            if not isinstance(outcome, BinanceError):
                return None  # a value, or a failure that is not the venue's answer
            if isinstance(outcome, TimestampError):
                if resynced:
                    return None
                resynced = True
                await self._resync(endpoint)
                return Retry(str(outcome), counts=False)
            if not outcome.retryable or (isinstance(outcome, UnknownStatusError) and not idempotent):
                return None
            if isinstance(outcome, RateLimitError):  # every request is held back already (see _once)
                return Retry(str(outcome), retry_after=outcome.retry_after, backoff=False)
            return Retry(str(outcome))

        def on_retry(retry: Retry, delay: float, n: int) -> None:
            self.stats.retries += 1
            log.info("retrying %s in %.2f s after %s (attempt %d)", endpoint, delay, retry.cause, n + 1)

        return await self.retrier.run(attempt, classify, cost=weight_of(method, path, params), what=endpoint,
                                      on_retry=on_retry)

    async def _resync(self, endpoint: str) -> None:
        self.stats.resyncs += 1
        old = self.offset_ms
        await self.sync_time()
        log.warning("clock resync after -1021 on %s: offset %d ms -> %d ms", endpoint, old, self.offset_ms)

    def rehearse_signing(self) -> None:
        """Sign an order-shaped query and drop it (nothing sent): the next order's signing finds its code warm."""
        if self.credentials is not None:
            self._signer_of(self.credentials).query(_REHEARSAL, 0, self.recv_window_ms)

    def _signer_of(self, credentials: Credentials | None) -> Signer:
        """The signer of ``credentials`` (made once; again if the credentials are replaced)."""
        if self._signer is None or self._signed_with is not credentials:
            assert credentials is not None
            self._signer, self._signed_with = Signer(credentials.api_secret), credentials
        return self._signer

    def _prepare(self, params: Mapping[str, Any], security: str) -> tuple[str, dict[str, str]]:
        """The query string (signed if asked) and the key header."""
        headers: dict[str, str] = {}
        if security != NONE:
            if self.credentials is None:
                from .errors import AuthError

                raise AuthError(-2014, "no API key configured (set KINETIC_BINANCE_API_KEY and "
                                "KINETIC_BINANCE_API_SECRET, or a .env file)", 401, "signing")
            headers["X-MBX-APIKEY"] = self.credentials.api_key
        if security == SIGNED:
            return self._signer_of(self.credentials).query(params, self.server_ms(), self.recv_window_ms), headers
        return encode(params), headers

    async def _once(self, method: str, path: str, params: Mapping[str, Any], security: str, endpoint: str) -> Any:
        self.stats.paced_s = self.pacer.paced_s  # the retrier paced this attempt
        try:
            query, headers = self._prepare(params, security)
        except BinanceError as exc:
            exc.endpoint = endpoint
            raise
        self.stats.requests += 1
        lean = self._lean
        reply: Any = None
        if lean is not None and path in FAST_PATHS:
            reply = await self._lean_send(lean, method, path, query, headers, endpoint)
        if reply is None:
            status, body, reply_headers = await self._aiohttp_send(method, path, query, headers, endpoint)
        else:
            status, body, reply_headers = reply.status, reply.body, reply.headers
        return self._answer(status, body, reply_headers, endpoint)

    def _answer(self, status: int, body: bytes, reply_headers: Mapping[str, str], endpoint: str) -> Any:
        """A reply's JSON, or the BinanceError it means (noting its weight and rate limits)."""
        self.pacer.note(reply_headers)
        self.stats.used_weight = self.pacer.used
        if status >= 300:
            error = error_from_reply(status, body, reply_headers, endpoint)
            if isinstance(error, RateLimitError):
                self.stats.rate_limited += 1
                self.pacer.block(error.retry_after)
            elif isinstance(error, UnknownStatusError):
                self.stats.unknown_status += 1
            raise error
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            snippet = body[:80].decode("utf-8", "replace")
            raise VenueResponseError(0, f"HTTP {status} with a body that is not JSON: {snippet!r}", status,
                                     endpoint) from None
        if is_error_object(data):
            raise error_from_reply(400, body, reply_headers, endpoint)
        return data

    async def _aiohttp_send(self, method: str, path: str, query: str, headers: dict[str, str],
                            endpoint: str) -> tuple[int, bytes, Mapping[str, str]]:
        url = URL(f"{self.base}{path}?{query}" if query else f"{self.base}{path}", encoded=True)
        sent = False
        try:
            async with self.session.request(method, url, headers=headers) as reply:
                sent = True
                body = await reply.read()
                return reply.status, body, reply.headers
        except aiohttp.ClientConnectorError as exc:
            raise UnavailableError(-1001, f"cannot connect: {exc.os_error or exc}", 0, endpoint) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.stats.unknown_status += 1
            what = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            code = -1007 if isinstance(exc, TimeoutError) else -1000
            raise UnknownStatusError(code, f"request {what} {'after' if sent else 'while'} sending", 0,
                                     endpoint) from None

    async def _lean_send(self, lean: HttpClient, method: str, path: str, query: str, headers: dict[str, str],
                         endpoint: str) -> Any:
        """The reply through the lean client, mapped as :meth:`_aiohttp_send` maps aiohttp's failures; None if
        that client declined the request before sending it (the caller sends it through aiohttp)."""
        target = f"{path}?{query}" if query else path
        try:
            if self._trace:
                return await self._lean_traced(lean, method, target, headers)
            return await lean.request(method, target, headers)
        except Unsupported as exc:
            log.debug("%s through aiohttp: %s", endpoint, exc)
            return None
        except ConnectFailed as exc:
            raise UnavailableError(-1001, str(exc), 0, endpoint) from None
        except ExchangeFailed as exc:
            raise self._unknown(exc, endpoint) from None

    def _unknown(self, exc: ExchangeFailed, endpoint: str) -> UnknownStatusError:
        self.stats.unknown_status += 1
        what = "timed out" if exc.timed_out else f"failed: {exc}"
        return UnknownStatusError(-1007 if exc.timed_out else -1000,
                                  f"request {what} {'after' if exc.answered else 'while'} sending", 0, endpoint)

    async def _lean_reply(self, lean: HttpClient, sent: InFlight, method: str, target: str, headers: dict[str, str],
                          endpoint: str) -> Reply:
        """The reply to a request already written (:meth:`send_signed_now`), traced and mapped as
        :meth:`_lean_send`'s (the trace's start and headers-sent hooks run now, just after the write)."""
        try:
            if self._trace:
                return cast(Reply, await self._lean_traced(lean, method, target, headers, sent))
            return await lean.finish(sent)
        except ExchangeFailed as exc:
            raise self._unknown(exc, endpoint) from None

    async def _lean_traced(self, lean: HttpClient, method: str, target: str, headers: dict[str, str],
                           sent: InFlight | None = None) -> Any:
        """:meth:`HttpClient.request` announcing itself to the aiohttp trace configs as aiohttp would (``sent``: the
        request was written already; the hooks are told now)."""
        # declined (Unsupported) before anything is announced
        data = lean.request_bytes(method, target, headers, b"") if sent is None else b""
        session, url, h = self.session, URL(f"{self.base}{target}", encoded=True), CIMultiDict(headers)
        traces = [(tc, tc.trace_config_ctx()) for tc in self._trace or ()]
        for tc, ctx in traces:
            if tc.on_request_start:
                await tc.on_request_start.send(session, ctx, aiohttp.TraceRequestStartParams(method, url, h))

        async def on_sent() -> None:
            for tc, ctx in traces:
                if tc.on_request_headers_sent:
                    await tc.on_request_headers_sent.send(session, ctx,
                                                          aiohttp.TraceRequestHeadersSentParams(method, url, h))

        try:
            reply = await (lean.exchange(data, on_sent=on_sent) if sent is None else lean.finish(sent, on_sent))
        except HttpFailure as exc:
            for tc, ctx in traces:
                await tc.on_request_exception.send(session, ctx,
                                                   aiohttp.TraceRequestExceptionParams(method, url, h, exc))
            raise
        for tc, ctx in traces:  # the end hooks read .status and .headers, which a Reply has
            await tc.on_request_end.send(session, ctx, aiohttp.TraceRequestEndParams(method, url, h,
                                                                                      cast(Any, reply)))
        return reply


class Started:
    """A request :meth:`BinanceRest.send_signed_now` wrote: await :meth:`answer` once, or :meth:`abandon` it."""

    __slots__ = ("_abandon", "_answer")

    def __init__(self, answer: Coroutine[Any, Any, Any], abandon: Callable[[], None]) -> None:
        self._answer = answer
        self._abandon = abandon

    def answer(self) -> Coroutine[Any, Any, Any]:
        return self._answer

    def abandon(self) -> None:
        """Never to be awaited (the task that would have was cancelled before it ran): the connection is dropped
        (the request was sent; its outcome is the venue's to tell). A no-op once the answer was awaited."""
        self._answer.close()
        self._abandon()


KEEP_WARM_PATH = "/fapi/v1/ping"
"""What :meth:`HttpClient.keep_warm` asks the venue (weight 1, unsigned)."""

MAX_WARM_CONNECTIONS = 32
"""At most this many order connections are opened ahead and kept warm (aiohttp's pool limit is the same)."""
KEEP_WARM_S = 7.5
"""The live engine's keep-warm interval: no order connection rests past about 11 s (Binance drops idle ones
after about 15 s; the lean client retires them at ``idle_s`` = 15 s)."""

_WARM_PARAMS = dict.fromkeys(
    ("symbol", "side", "positionSide", "type", "timeInForce", "quantity", "price", "stopPrice", "reduceOnly",
     "closePosition", "workingType", "priceProtect", "newClientOrderId", "origClientOrderId", "clientAlgoId",
     "algoType", "triggerPrice", "newOrderRespType"), "1")
"""Parameter names an order request uses: encoded once at start (the encoder caches their quoted forms)."""
