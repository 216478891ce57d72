"""The kline feed's backfill runs outside the WebSocket read loop (issue 12 item 9), against the local sandbox.

A 429's Retry-After (minutes, on Binance) holds every REST request of the client; a backfill that waits for
it inside the read loop stops reading, so pongs go unread and the connection is lost again and again. Here
the real REST client is held for 3 minutes on an injected clock: the feed must take further messages at
once, and publish the missing klines and the held messages in open-time order, each once, after the wait.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kinetic_empire.binance.market import KlineFeed
from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.venues import Venue
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.events import KlineClosed
from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer
from tests.support.waiting import until

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data" / "sandbox"


def message(row: list[Any], closed: bool = True) -> str:
    """A kline stream event (reference 8.2) built from the venue's own REST row."""
    return json.dumps({"stream": "filusdt@kline_1m", "data": {"e": "kline", "E": int(row[6]) + 1, "s": "FILUSDT", "k": {
        "t": row[0], "T": row[6], "s": "FILUSDT", "i": "1m", "o": row[1], "c": row[4], "h": row[2], "l": row[3],
        "v": row[5], "x": closed}}})


def test_a_rate_limited_backfill_never_stops_the_reader() -> None:
    async def body() -> None:
        cfg = SandboxConfig(data=[DATA], limits=RateLimitConfig(enforce=False), warmup_klines=20)
        async with SandboxServer(cfg) as sb:
            clock = ManualClock()
            async with BinanceRest(sb.rest_url, clock=clock) as rest:
                rows = await rest.get("/fapi/v1/klines", {"symbol": "FILUSDT", "interval": "1m", "limit": 10})
                rows = rows[:-1]  # the last row may still be open
                published: list[KlineClosed] = []
                feed = KlineFeed(rest, Venue("sandbox", sb.rest_url, sb.ws_url), [("FILUSDT", "1m")],
                                 lambda k, _t: published.append(k), clock.now_ms, clock=clock)
                feed.last_open[("FILUSDT", "1m")] = int(rows[0][0])  # as after a warm-up

                rest.pacer.block(180)  # what a 429 with Retry-After: 180 does to every request of the client
                await asyncio.wait_for(feed.handle(message(rows[3])), 5)  # proves rows 1-2 missing
                await asyncio.wait_for(feed.handle(message(rows[4], closed=False)), 5)
                await asyncio.wait_for(feed.handle(message(rows[4])), 5)
                await asyncio.wait_for(feed.handle(message(rows[3])), 5)  # a repeat
                assert published == [] and feed.backfilling == 1  # the reader went on; the backfill waits
                await until(lambda: clock.sleepers == 1, "the backfill waits for the Retry-After")

                await clock.advance(180)
                await until(lambda: feed.backfilling == 0, "backfill done")
                assert [k.open_time for k in published] == [int(r[0]) for r in rows[1:5]]
                assert feed.backfilled == 2 and feed.duplicates == 1 and feed.gaps == 1
                await feed.stop()

    asyncio.run(body())


def test_a_warm_up_longer_than_one_page_is_fetched_in_pages_in_order() -> None:
    """Live indicators may need more history than one /fapi/v1/klines page (1500): e.g. EMA(200), ~3000."""

    async def body() -> None:
        cfg = SandboxConfig(data=[DATA], limits=RateLimitConfig(enforce=False), warmup_klines=2_000)
        async with SandboxServer(cfg) as sb:
            clock = ManualClock()
            async with BinanceRest(sb.rest_url, clock=clock) as rest:
                feed = KlineFeed(rest, Venue("sandbox", sb.rest_url, sb.ws_url), [("FILUSDT", "1m")],
                                 lambda k, _t: None, clock.now_ms, clock=clock)
                got = (await feed.warm_up(1_800))[("FILUSDT", "1m")]
                times = [k.open_time for k in got]
                assert len(times) == 1_800 and times == sorted(set(times))
                assert set(np.diff(times)) == {60_000}  # no hole between the pages
                assert feed.last_open[("FILUSDT", "1m")] == times[-1]
                more = (await feed.warm_up(5_000))[("FILUSDT", "1m")]  # more than the venue has: all it has
                assert 1_800 < len(more) < 5_000 and more[-len(got):] == got
                assert more[0].open_time == sb.replay.times[0]
                await feed.stop()

    asyncio.run(body())
