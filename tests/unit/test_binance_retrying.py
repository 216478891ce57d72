"""The one retry loop (shared by the trading REST client and the downloader) on a ManualClock.

A scripted request answers from a list; the classifier below maps each answer to done / retry / raise the
way the real clients do. Each attempt notes the clock's time, so the waits between attempts are read off.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any

import pytest

from kinetic_empire.binance.backoff import backoff_delay
from kinetic_empire.binance.pacing import WeightPacer
from kinetic_empire.binance.retrying import Retrier, RetriesExhausted, Retry
from kinetic_empire.core.clock import ManualClock

Outcome = str | Exception


class Script:
    """A request whose attempts answer ``outcomes`` in turn (an exception is raised), noting when each ran."""

    def __init__(self, clock: ManualClock, *outcomes: Outcome) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.at: list[float] = []

    async def __call__(self) -> str:
        self.at.append(self.clock.monotonic())
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def classify(outcome: Outcome) -> Retry | None:
    """"ok" and unknown exceptions are final; "busy", "wait N", "soon N", "hold N" and lost connections retry."""
    if isinstance(outcome, ConnectionError):
        return Retry(f"lost: {outcome}")
    if isinstance(outcome, Exception) or outcome == "ok":
        return None
    if outcome == "refused":
        raise PermissionError("refused for good")
    if outcome == "resynced":
        return Retry("clock resynced", counts=False)
    kind, _, seconds = outcome.partition(" ")
    if kind == "wait":  # a Retry-After obeyed exactly (the trading client's 429)
        return Retry(outcome, retry_after=float(seconds), backoff=False)
    if kind == "soon":  # at least the Retry-After, at least the backoff (the downloader's 5xx)
        return Retry(outcome, retry_after=float(seconds))
    if kind == "hold":  # every request waits (the downloader's 429)
        return Retry(outcome, retry_after=float(seconds), hold_all=True)
    return Retry(outcome)


async def started(clock: ManualClock, run: Coroutine[Any, Any, str]) -> asyncio.Task[str]:
    """``run`` as a task, once its first attempt was made (time moves only after that)."""
    task = asyncio.create_task(run)
    await asyncio.sleep(0)
    assert clock.sleepers >= 1 or task.done()
    return task


def retrier(clock: ManualClock, *, max_retries: int = 4, spread: float = 0.0, seed: int = 7) -> Retrier:
    pacer = WeightPacer(clock, clock.now_ms)
    return Retrier(clock, pacer, random.Random(seed), max_retries, base_delay=1.0, max_delay=3.0, spread=spread)


def test_retries_wait_a_growing_capped_backoff_then_return_the_value() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        r = retrier(clock)  # no jitter: 0.5 * min(3, 2^(n-1)) s
        script = Script(clock, "busy", ConnectionError("reset"), "busy", "busy", "ok")
        told: list[tuple[str, float, int]] = []
        run = asyncio.create_task(r.run(script, classify, on_retry=lambda t, d, n: told.append((t.cause, d, n)),
                                        what="GET /x"))
        await asyncio.sleep(0)
        assert script.at == [0.0] and clock.sleepers == 1 and not run.done()
        await clock.advance(0.49)
        assert script.at == [0.0]  # the first wait is not over
        await clock.advance(10)
        assert await run == "ok"
        assert script.at == [0.0, 0.5, 1.5, 3.0, 4.5]  # waits 0.5, 1, 1.5 (capped), 1.5
        assert told == [("busy", 0.5, 1), ("lost: reset", 1.0, 2), ("busy", 1.5, 3), ("busy", 1.5, 4)]
        assert r.retries == 4 and r.slept == pytest.approx(4.5) and r.pacer.paced_s == 0

    asyncio.run(scenario())


def test_the_backoff_is_jittered_from_the_injected_rng() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        r = retrier(clock, spread=0.5, seed=11)
        script = Script(clock, "busy", "busy", "busy", "ok")
        run = await started(clock, r.run(script, classify))
        await clock.advance(10)
        assert await run == "ok"
        same = random.Random(11)
        expected = [backoff_delay(n, 1.0, 3.0, same, 0.5) for n in (1, 2, 3)]
        assert [b - a for a, b in zip(script.at, script.at[1:], strict=False)] == pytest.approx(expected)

    asyncio.run(scenario())


def test_a_retry_after_is_honoured() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        r = retrier(clock)
        script = Script(clock, "wait 7", "soon 0.1", "soon 9", "ok")
        run = await started(clock, r.run(script, classify))
        await clock.advance(6.99)
        assert len(script.at) == 1  # exactly the Retry-After, no backoff on top: not before 7 s
        await clock.advance(30)
        assert await run == "ok"
        # 7 (as asked); max(backoff 1, 0.1) = 1; max(backoff 1.5, 9) = 9
        assert script.at == [0.0, 7.0, 8.0, 17.0]

    asyncio.run(scenario())


def test_a_retry_after_that_holds_all_requests_is_waited_out_by_every_request() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        r = retrier(clock)
        script = Script(clock, "hold 5", "ok")
        run = asyncio.create_task(r.run(script, classify, cost=1))
        await asyncio.sleep(0)
        other = asyncio.create_task(r.pacer.wait(0))  # any request on the same pacer, even a weightless one
        await asyncio.sleep(0)
        assert clock.sleepers == 2 and not other.done()
        await clock.advance(4.99)
        assert not other.done() and len(script.at) == 1
        await clock.advance(0.01)
        assert await run == "ok" and other.done()
        assert script.at == [0.0, 5.0]
        assert r.slept == 0 and r.pacer.paced_s == pytest.approx(10)  # both waits were the pacer's

    asyncio.run(scenario())


def test_after_max_retries_the_request_gives_up() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        r = retrier(clock, max_retries=2)
        script = Script(clock, "busy", "busy", "busy", "never asked")
        run = await started(clock, r.run(script, classify, what="GET /x",
                                         give_up=lambda last, n: LookupError(f"{n} attempts, last {last.cause}")))
        await clock.advance(60)
        with pytest.raises(LookupError, match=r"^3 attempts, last busy$"):
            await run
        assert script.at == [0.0, 0.5, 1.5] and r.retries == 2  # no wait after the last attempt
        assert clock.sleepers == 0 and script.outcomes == ["never asked"]

        lost = ConnectionError("reset")  # no give_up of the caller's: the last exception itself
        run = await started(clock, r.run(Script(clock, ConnectionError("first"), lost, lost), classify))
        await clock.advance(60)
        with pytest.raises(ConnectionError) as raised:
            await run
        assert raised.value is lost

        run = await started(clock, r.run(Script(clock, "busy", "busy", "busy"), classify, what="GET /y"))
        await clock.advance(60)
        with pytest.raises(RetriesExhausted, match=r"^GET /y: giving up after 3 attempts \(last: busy\)$"):
            await run

    asyncio.run(scenario())


def test_a_final_outcome_is_raised_at_once() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        r = retrier(clock)
        bad = ValueError("rejected")
        script = Script(clock, bad, "never asked")
        with pytest.raises(ValueError) as raised:
            await r.run(script, classify)
        assert raised.value is bad and script.at == [0.0] and r.retries == 0
        with pytest.raises(PermissionError, match="refused for good"):  # the classifier's own error
            await r.run(Script(clock, "refused"), classify)
        assert clock.monotonic() == 0 and clock.sleepers == 0

    asyncio.run(scenario())


def test_an_uncounted_retry_goes_again_at_once_outside_the_budget() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        r = retrier(clock, max_retries=0)
        script = Script(clock, "resynced", "ok")
        assert await r.run(script, classify) == "ok"
        assert script.at == [0.0, 0.0] and r.retries == 0

    asyncio.run(scenario())
