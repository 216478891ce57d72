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
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
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
from .pacing import WeightPacer
from .retrying import Retrier, Retry
from .signing import Credentials, Signer, encode
from .venues import weight_of

log = logging.getLogger(__name__)

NONE, KEYED, SIGNED = "NONE", "KEYED", "SIGNED"


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
    ) -> None:
        self.base = rest_url.rstrip("/")
        self.credentials = credentials
        self.recv_window_ms = recv_window_ms
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
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
        self._signer: Signer | None = None
        self._signed_with: Credentials | None = None
        self.retrier = Retrier(self.clock, self.pacer, random.Random(seed), max_retries, backoff_s, backoff_max_s)

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self) -> BinanceRest:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=32, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout,
                                                  trace_configs=self._trace)
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> BinanceRest:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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

        return await self.retrier.run(lambda: self._once(method, path, params, security, endpoint), classify,
                                      cost=weight_of(method, path, params), what=endpoint, on_retry=on_retry)

    async def _resync(self, endpoint: str) -> None:
        self.stats.resyncs += 1
        old = self.offset_ms
        await self.sync_time()
        log.warning("clock resync after -1021 on %s: offset %d ms -> %d ms", endpoint, old, self.offset_ms)

    def _signer_of(self, credentials: Credentials | None) -> Signer:
        """The signer of ``credentials`` (made once; again if the credentials are replaced)."""
        if self._signer is None or self._signed_with is not credentials:
            assert credentials is not None
            self._signer, self._signed_with = Signer(credentials.api_secret), credentials
        return self._signer

    async def _once(self, method: str, path: str, params: Mapping[str, Any], security: str, endpoint: str) -> Any:
        self.stats.paced_s = self.pacer.paced_s  # the retrier paced this attempt
        headers: dict[str, str] = {}
        if security != NONE:
            if self.credentials is None:
                from .errors import AuthError

                raise AuthError(-2014, "no API key configured (set KINETIC_BINANCE_API_KEY and "
                                "KINETIC_BINANCE_API_SECRET, or a .env file)", 401, endpoint)
            headers["X-MBX-APIKEY"] = self.credentials.api_key
        if security == SIGNED:
            query = self._signer_of(self.credentials).query(params, self.server_ms(), self.recv_window_ms)
        else:
            query = encode(params)
        url = URL(f"{self.base}{path}?{query}" if query else f"{self.base}{path}", encoded=True)
        self.stats.requests += 1
        sent = False
        try:
            async with self.session.request(method, url, headers=headers) as reply:
                sent = True
                body = await reply.read()
                status = reply.status
                self.pacer.note(reply.headers)
                self.stats.used_weight = self.pacer.used
        except aiohttp.ClientConnectorError as exc:
            raise UnavailableError(-1001, f"cannot connect: {exc.os_error or exc}", 0, endpoint) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.stats.unknown_status += 1
            what = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            code = -1007 if isinstance(exc, TimeoutError) else -1000
            raise UnknownStatusError(code, f"request {what} {'after' if sent else 'while'} sending", 0,
                                     endpoint) from None
        if status >= 300:
            error = error_from_reply(status, body, reply.headers, endpoint)
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
            raise error_from_reply(400, body, reply.headers, endpoint)
        return data
