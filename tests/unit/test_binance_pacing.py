"""Request-weight pacing (shared by the trading REST client and the downloader) on a ManualClock."""

from __future__ import annotations

import asyncio

import pytest

from kinetic_empire.binance.pacing import WEIGHT_HEADER, WeightPacer, header
from kinetic_empire.core.clock import ManualClock

NOON_15S = 1_693_569_615_000  # 2023-09-01 12:00:15 UTC: 45 s left in the venue's minute


def test_a_request_near_the_weight_limit_waits_for_the_venues_next_minute() -> None:
    async def scenario() -> None:
        clock = ManualClock(start_ms=NOON_15S)
        pacer = WeightPacer(clock, clock.now_ms, limit=100, headroom=0.9, margin_s=0.05)
        await pacer.wait(10)  # nothing reported yet: no pacing
        pacer.note({WEIGHT_HEADER: "75"})
        await pacer.wait(10)  # 75 + 10 <= 90
        assert pacer.used == 85 and clock.sleepers == 0  # counted while in flight
        waiting = asyncio.create_task(pacer.wait(10, "GET /fapi/v1/klines"))  # 85 + 10 > 90
        await asyncio.sleep(0)
        assert clock.sleepers == 1 and not waiting.done()
        assert clock.next_deadline() == pytest.approx(NOON_15S / 1000 + 45.05)
        await clock.advance(45.0)
        assert not waiting.done()
        await clock.advance(0.05)
        assert waiting.done() and pacer.used == 10 and pacer.paced_s == pytest.approx(45.05)
        pacer.note({WEIGHT_HEADER: "3"})  # the venue's new minute: its count restarted below ours
        assert pacer.used == 10
        pacer.note({WEIGHT_HEADER: "95"})
        await clock.advance(60)
        await pacer.wait(50)  # a new minute since that report: the venue's counter restarted, no wait
        assert clock.sleepers == 0 and pacer.paced_s == pytest.approx(45.05)

    asyncio.run(scenario())


def test_a_429_holds_back_every_request_for_its_retry_after() -> None:
    async def scenario() -> None:
        clock = ManualClock(start_ms=NOON_15S)
        pacer = WeightPacer(clock, clock.now_ms)
        pacer.block(7)
        pacer.block(2)  # a shorter one never shortens the wait
        order = asyncio.create_task(pacer.wait(0))  # weightless (an order placement) waits too
        query = asyncio.create_task(pacer.wait(5))
        await asyncio.sleep(0)
        assert clock.sleepers == 2 and clock.next_deadline() == pytest.approx(NOON_15S / 1000 + 7)
        await clock.advance(6.9)
        assert not order.done() and not query.done()
        await clock.advance(0.1)
        await asyncio.gather(order, query)
        assert pacer.paced_s == pytest.approx(14)  # seconds waited, summed over requests

    asyncio.run(scenario())


def test_weightless_requests_do_not_queue_behind_a_minute_wait() -> None:
    async def scenario() -> None:
        clock = ManualClock(start_ms=NOON_15S)
        pacer = WeightPacer(clock, clock.now_ms, limit=100)
        pacer.note({WEIGHT_HEADER: "90"})
        heavy = asyncio.create_task(pacer.wait(40))
        await asyncio.sleep(0)
        assert clock.sleepers == 1 and not heavy.done()
        await asyncio.wait_for(pacer.wait(0), 1)  # an order placement leaves at once
        light = asyncio.create_task(pacer.wait(1))  # a weighted request waits its turn
        await asyncio.sleep(0)
        assert not light.done()
        await clock.advance(45.05)
        await asyncio.gather(heavy, light)
        assert pacer.used == 41

    asyncio.run(scenario())


def test_headers_are_found_whatever_their_case() -> None:
    assert header({"x-mbx-used-weight-1m": "5"}, WEIGHT_HEADER) == "5"
    assert header({WEIGHT_HEADER: "6"}, "x-mbx-used-weight-1m") == "6"
    assert header({}, WEIGHT_HEADER) is None
