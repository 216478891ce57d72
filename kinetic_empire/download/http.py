"""One HTTP client for both sources: bounded retries with backoff, Retry-After, request-weight pacing.

Binance bans an IP (HTTP 418, two minutes up to three days) that keeps sending after a 429, so the
client slows down *before* the limit using the ``X-MBX-USED-WEIGHT-1M`` header, holds every request
back for a 429/418's Retry-After, and gives up with a clear message rather than retrying forever. The
pacing and the retry loop are the trading REST client's (:mod:`kinetic_empire.binance.pacing`,
:mod:`kinetic_empire.binance.retrying`); what differs is the answer: replies here, typed errors there.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from kinetic_empire.binance.pacing import WeightPacer, header
from kinetic_empire.binance.retrying import Retrier, Retry
from kinetic_empire.core.clock import Clock, LiveClock
from kinetic_empire.core.errors import KineticError

_RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})
_LIMIT_STATUSES = frozenset({418, 429})


class DownloadError(KineticError):
    """A download failed (bad input, unreachable source, bad file); the message says what and where."""


class ChecksumError(DownloadError):
    """An archive file does not match its published SHA-256."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. Delays are in seconds: ``base_delay * 2**attempt``, capped, times 0.5-1 (jitter)."""

    max_retries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 60.0
    max_retry_after: float = 300.0
    """A longer Retry-After (an IP ban) is reported instead of waited out."""


@dataclass(slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        return json.loads(self.body)

    def binance_error(self) -> tuple[int | None, str]:
        """Binance's ``{"code", "msg"}`` error body, or (None, start of the body) for anything else."""
        try:
            data = self.json()
            return int(data["code"]), str(data.get("msg", ""))
        except (ValueError, KeyError, TypeError):
            return None, self.body[:200].decode("utf-8", "replace").strip()


@dataclass
class HttpClient:
    """GETs with retries and pacing; one per download run, shared by every task.

    ``weight_limit`` is the IP's REQUEST_WEIGHT per minute; when the last reported use plus the next
    request's weight would pass ``pace_ratio`` of it, requests wait for the next minute window.
    """

    session: aiohttp.ClientSession
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=LiveClock)
    weight_limit: int = 2400
    pace_ratio: float = 0.8
    concurrency: int = 4
    on_bytes: Callable[[int], None] | None = None
    rng: random.Random = field(default_factory=random.Random)
    _slots: asyncio.Semaphore | None = None
    _pacer: WeightPacer | None = None
    _retrier: Retrier | None = None

    @property
    def pacer(self) -> WeightPacer:
        if self._pacer is None:
            self._pacer = WeightPacer(self.clock, self.clock.now_ms, limit=self.weight_limit,
                                      headroom=self.pace_ratio, margin_s=0.5)
        return self._pacer

    @property
    def retrier(self) -> Retrier:
        if self._retrier is None:
            p = self.policy
            self._retrier = Retrier(self.clock, self.pacer, self.rng, p.max_retries, p.base_delay, p.max_delay)
        return self._retrier

    @property
    def retries(self) -> int:
        """Retries made so far (for the summary and tests)."""
        return self.retrier.retries

    @property
    def waited(self) -> float:
        """Seconds spent waiting on pacing, Retry-After and backoff."""
        return self.retrier.slept + self.pacer.paced_s

    async def get(self, url: str, params: Mapping[str, Any] | None = None, *, weight: int = 0, what: str = "") -> Reply:
        """The reply to ``GET url``: 2xx, 404 and other 4xx are returned; 429/418/5xx/timeouts retried."""
        what = what or url

        async def attempt() -> Reply:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.concurrency)
            async with self._slots:
                reply = await self._fetch(url, params)
            self.pacer.note(reply.headers)
            return reply

        async def classify(outcome: Reply | Exception) -> Retry | None:
            if isinstance(outcome, Exception):
                if isinstance(outcome, (TimeoutError, aiohttp.ClientError, OSError)):
                    return Retry(f"{type(outcome).__name__}: {outcome}".rstrip(": "))
                return None
            return self._classify(outcome, what)

        def give_up(last: Retry, attempts: int) -> DownloadError:
            return DownloadError(f"{what}: giving up after {attempts} attempts (last: {last.cause})")

        return await self.retrier.run(attempt, classify, cost=weight, what=what, give_up=give_up)

    def _classify(self, reply: Reply, what: str) -> Retry | None:
        """None for a reply to return, a Retry for one to try again; a refusal too long to wait is raised."""
        if reply.status in _LIMIT_STATUSES:
            retry_after = _retry_after(reply.headers)
            if retry_after is not None and retry_after > self.policy.max_retry_after:
                code, msg = reply.binance_error()
                raise DownloadError(
                    f"{what}: Binance refused requests for {retry_after:.0f} s (HTTP {reply.status}"
                    f"{f' {code}' if code else ''}: {msg}); the IP is rate-limited or banned, try again later"
                )
            # with a Retry-After every request waits it out, not only this one
            return Retry(f"HTTP {reply.status} (rate limit)", retry_after, hold_all=retry_after is not None)
        if reply.status in _RETRY_STATUSES:
            return Retry(f"HTTP {reply.status} {reply.binance_error()[1][:80]}".strip(), _retry_after(reply.headers))
        return None

    async def _fetch(self, url: str, params: Mapping[str, Any] | None) -> Reply:
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout)
        async with self.session.get(url, params=params, timeout=timeout) as resp:
            chunks: list[bytes] = []
            async for chunk in resp.content.iter_chunked(1 << 16):
                chunks.append(chunk)
                if self.on_bytes is not None:
                    self.on_bytes(len(chunk))
            return Reply(resp.status, dict(resp.headers), b"".join(chunks), str(resp.url))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = header(headers, "Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None
