"""The preflight's market-stream check survives one dropped connection (found by the short soak under load).

The soak's background faults drop a stream connection now and then (``ws_drop_rate``, drawn per connection
from a seeded RNG). Under load, the connection a drop was drawn for was once the resumed engine's preflight
check, which gave up at the first close: "market stream: no close frame received or sent", and the engine
refused to start. The check now opens the stream again when it closes before its first message; a stream
that keeps closing still fails it. Here the sandbox drops the 1st and 2nd connections on their first message
(seed 8, rate 0.5) and lets the 3rd through.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from kinetic_empire.binance.venues import Venue
from kinetic_empire.binance.wire import stream_name
from kinetic_empire.live.doctor import _first_message
from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer
from kinetic_empire.sandbox.config import FaultConfig

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data" / "sandbox"
SEED, RATE = 8, 0.5


def dropped(n: int) -> bool:
    """Whether the sandbox drops its ``n``-th connection at its first message (its per-connection RNG)."""
    return random.Random(f"{SEED}:ws:{n}").random() < RATE


def test_market_stream_check_opens_the_stream_again_after_a_drop() -> None:
    assert [dropped(1), dropped(2), dropped(3)] == [True, True, False]

    async def body() -> None:
        faults = FaultConfig(enabled=True, seed=SEED, ws_drop_rate=RATE)
        cfg = SandboxConfig(data=[DATA], speed=600, limits=RateLimitConfig(enforce=False), warmup_klines=5,
                            faults=faults)
        async with SandboxServer(cfg) as sb:
            url = Venue("sandbox", sb.rest_url, sb.ws_url).market_stream_url([stream_name("FILUSDT", "1m")])
            once = await _first_message(url, 10, attempts=1)  # connection 1: dropped, and one try gives up
            assert isinstance(once, Exception) and "no close frame" in str(once), once
            got = await _first_message(url, 10)  # connections 2 (dropped) and 3
            assert got == "kline received", got
            assert sb.venue.faults.counts["ws-drop"] == 2
            always = SandboxConfig(data=[DATA], speed=600, limits=RateLimitConfig(enforce=False), warmup_klines=5,
                                   faults=FaultConfig(enabled=True, seed=SEED, ws_drop_rate=1.0))
        async with SandboxServer(always) as sb:  # a stream that always closes still fails, in 3 connections
            url = Venue("sandbox", sb.rest_url, sb.ws_url).market_stream_url([stream_name("FILUSDT", "1m")])
            failed = await _first_message(url, 10)
            assert isinstance(failed, ConnectionError) and "3 connections" in str(failed), failed

    asyncio.run(body())
