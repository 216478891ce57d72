"""The preflight's user-stream check survives a dropped connection, as the market check does.

The soak's background faults drop a stream connection now and then (``ws_drop_rate``, drawn per connection from a
seeded RNG, acted on at the connection's first message). The user-stream check gave up at the first close, so a
preflight whose margin and leverage settings made the venue send an ACCOUNT_CONFIG_UPDATE into a connection drawn
for a drop refused to start the engine. It now opens the stream again (3 connections within the same timeout);
a stream that keeps closing still fails it.

On the sandbox over loopback: each connection the check opens gets a real leverage change (its ACCOUNT_CONFIG_UPDATE
is the connection's first message); the sandbox drops the 1st and 2nd (seed 8, rate 0.5) and lets the 3rd through.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.binance.rest import KEYED, BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.binance.venues import Venue
from kinetic_empire.live import doctor
from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer
from kinetic_empire.sandbox.config import FaultConfig
from tests.support.waiting import until

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data" / "sandbox"
SEED = 8


def dropped(n: int, rate: float) -> bool:
    """Whether the sandbox drops its ``n``-th connection at its first message (its per-connection RNG)."""
    return random.Random(f"{SEED}:ws:{n}").random() < rate


async def check_with_events(rate: float) -> tuple[str | Exception, int, int]:
    """Run the user-stream check while every connection it opens gets one event; returns its answer, the
    connections it opened and the drops."""
    cfg = SandboxConfig(data=[DATA], speed=600, limits=RateLimitConfig(enforce=False), warmup_klines=5,
                        faults=FaultConfig(enabled=True, seed=SEED, ws_drop_rate=rate))
    async with SandboxServer(cfg) as sb, BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret,
                                                                          "sandbox")) as rest:
        key = str((await rest.request("POST", "/fapi/v1/listenKey", security=KEYED))["listenKey"])
        url = Venue("sandbox", sb.rest_url, sb.ws_url).user_stream_url(key)
        check = asyncio.ensure_future(doctor._user_stream_alive(url, 60))
        served: list[Any] = []
        leverage = 2
        while True:
            def new_connection() -> bool:
                return any(c not in served for c in sb.users.conns.get(key, ()))

            await until(lambda: check.done() or new_connection(), "the check's next connection or its answer")
            if check.done():
                break
            served.extend(c for c in sb.users.conns.get(key, ()) if c not in served)
            leverage = 5 - leverage  # 3, 2, 3: a real change, so the venue announces it
            await rest.signed("POST", "/fapi/v1/leverage", {"symbol": "FILUSDT", "leverage": leverage})
        return check.result(), len(served), sb.venue.faults.counts.get("ws-drop", 0)


def test_user_stream_check_opens_the_stream_again_after_a_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "USER_STREAM_SETTLE_S", 60.0)  # wait for the event, however slow the machine
    assert [dropped(n, 0.5) for n in (1, 2, 3)] == [True, True, False]
    got, connections, drops = asyncio.run(check_with_events(0.5))
    assert got == "connected with the listenKey, ping answered, ACCOUNT_CONFIG_UPDATE received", got
    assert (connections, drops) == (3, 2)


def test_a_user_stream_that_keeps_closing_still_fails_in_three_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "USER_STREAM_SETTLE_S", 60.0)
    got, connections, drops = asyncio.run(check_with_events(1.0))
    assert isinstance(got, ConnectionError) and "3 connections" in str(got), got
    assert (connections, drops) == (3, 3)
