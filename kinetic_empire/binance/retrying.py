"""The one retry loop for HTTP requests to Binance: the trading REST client's and the downloader's.

Each request runs under the shared :class:`~.pacing.WeightPacer`; what happens after an attempt is the
caller's decision, returned by its *classifier*: ``None`` (done: return the value, or raise the exception
as it is), a :class:`Retry` (wait, then try again), or an exception the classifier raises itself. So the
callers' differences are data: the trading client never retries an unknown outcome of an order placement
and resyncs its clock once on -1021 (a :class:`Retry` that ``counts=False``); the downloader returns
replies, holds every request back for a 429's Retry-After and gives up with its own message.

Waits: retry ``n`` (1, 2, ...) waits :func:`~.backoff.backoff_delay` (``base·2^(n-1)``, capped, jittered),
or at least the venue's Retry-After, or exactly it (``backoff=False``). After ``max_retries`` retries the
next retryable outcome gives up: ``give_up(last, attempts)`` is raised, or else the last exception itself.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..core.clock import Clock
from ..core.errors import KineticError
from .backoff import backoff_delay
from .pacing import WeightPacer

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Retry:
    """A classifier's answer "try again", and how long to wait first."""

    cause: str
    """What went wrong, for the log and the give-up message."""
    retry_after: float | None = None
    """Seconds the venue asked for (Retry-After): the wait is at least this long."""
    backoff: bool = True
    """Add the policy's jittered backoff (the wait is the larger of the two); False: wait just ``retry_after``."""
    hold_all: bool = False
    """Hold every request of the pacer back for the wait (a rate limit is per IP), not only this one."""
    counts: bool = True
    """False: retry at once, outside the retry budget (the cause was put right, e.g. the clock resynced)."""


class RetriesExhausted(KineticError):
    """A request still failed after the last retry and the caller named no error of its own."""


@dataclass(slots=True)
class Retrier:
    """Runs one request's attempts under pacing; one per client, shared by all its requests."""

    clock: Clock
    pacer: WeightPacer
    rng: random.Random
    max_retries: int
    base_delay: float
    max_delay: float
    spread: float = 0.5
    """Jitter: the backoff is multiplied by a random factor in ``[0.5, 0.5 + spread)``."""
    retries: int = 0
    """Retries made so far (statistics)."""
    slept: float = 0.0
    """Seconds this retrier waited itself (waits it left to the pacer count in ``pacer.paced_s``)."""

    def delay(self, retry: Retry, n: int) -> float:
        """How long retry number ``n`` (1, 2, ...) waits."""
        wait = backoff_delay(n, self.base_delay, self.max_delay, self.rng, self.spread) if retry.backoff else 0.0
        return wait if retry.retry_after is None else max(wait, retry.retry_after)

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        classify: Callable[[T | Exception], Awaitable[Retry | None]],
        *,
        cost: int = 0,
        what: str = "",
        on_retry: Callable[[Retry, float, int], None] | None = None,
        give_up: Callable[[Retry, int], BaseException] | None = None,
    ) -> T:
        """``attempt()``'s value once ``classify`` accepts it; ``cost`` is the request weight for pacing.

        ``on_retry(retry, delay, n)`` is told of each counted retry before its wait.
        """
        retries = 0
        while True:
            await self.pacer.wait(cost, what)
            failure: Exception | None = None
            try:
                value = await attempt()
            except Exception as exc:  # the classifier decides; what it leaves alone is raised unchanged
                failure = exc
            retry = await classify(value if failure is None else failure)
            if retry is None:
                if failure is not None:
                    raise failure
                return value
            if not retry.counts:
                continue
            if retries >= self.max_retries:
                if give_up is not None:
                    raise give_up(retry, retries + 1)
                if failure is not None:
                    raise failure
                raise RetriesExhausted(f"{what}: giving up after {retries + 1} attempts (last: {retry.cause})")
            retries += 1
            self.retries += 1
            delay = self.delay(retry, retries)
            if on_retry is not None:
                on_retry(retry, delay, retries)
            if retry.hold_all:
                self.pacer.block(delay)  # the next attempt's pacing waits it out, with every other request
            else:
                self.slept += delay
                await self.clock.sleep(delay)
