"""The user data stream against the local sandbox, its timers on a ManualClock: a 30-minute keep-alive and
a reconnect after a key closed without notice happen when the test moves time, not after real waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.binance.userstream import UserStream
from kinetic_empire.binance.venues import Venue
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.sandbox import SandboxConfig, SandboxServer
from tests.support.waiting import until

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data" / "sandbox"


def test_keepalive_and_a_lost_key_run_on_the_injected_clock() -> None:
    async def scenario() -> None:
        async with SandboxServer(SandboxConfig(data=[DATA])) as sb:
            rest = BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret))
            async with rest:
                clock = ManualClock()
                reconciles = 0

                async def reconcile() -> None:
                    nonlocal reconciles
                    reconciles += 1

                user = UserStream(rest, Venue("sandbox", sb.rest_url, sb.ws_url), lambda _m: None, reconcile,
                                  clock=clock, keepalive_s=1800, seed=5)
                task = asyncio.create_task(user.run())
                await asyncio.wait_for(user.ready.wait(), 20)
                await until(lambda: clock.sleepers == 1, "keep-alive timer armed")
                assert reconciles == 1 and user.connected and user.keys_created == 1
                first_key = user.listen_key
                assert first_key is not None and sb.account().listen_key == first_key
                requests = rest.stats.requests  # the POST so far

                await clock.advance(1799)
                assert rest.stats.requests == requests
                await clock.advance(1)
                await until(lambda: rest.stats.requests == requests + 1 and clock.sleepers == 1,
                            "keep-alive PUT sent, timer re-armed")
                assert user.listen_key == first_key and user.keys_created == 1

                # the key closed without notice: the reconnect is refused, a new key is made after the backoff
                sb.users.close(sb.account())
                await until(lambda: not user.connected and clock.sleepers == 1, "backing off after the close")
                assert user.listen_key == first_key
                await clock.advance((clock.next_deadline() or 0) - clock.monotonic())
                await until(lambda: user.listen_key is None and clock.sleepers == 1, "backing off after the refusal")
                assert user.keys_created == 1 and "InvalidStatus" in user.socket.last_error
                await clock.advance((clock.next_deadline() or 0) - clock.monotonic())
                await until(lambda: user.connected and user.keys_created == 2, "a new key and a new connection")
                assert user.listen_key != first_key and reconciles == 2 and user.reconnects == 1
                assert sb.account().listen_key == user.listen_key

                await user.stop()
                await asyncio.wait_for(task, 20)
                assert sb.account().listen_key is None  # closed on the venue (DELETE)

    asyncio.run(scenario())


def test_keepalive_follows_the_keys_age_across_reconnects() -> None:
    """Issue 12 item 8: a key lives 60 min after its last POST or PUT (reference 3.5). A reconnect at minute
    16 that reuses the key must not push the PUT from minute 30 to minute 46."""
    async def scenario() -> None:
        async with SandboxServer(SandboxConfig(data=[DATA])) as sb:
            rest = BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret))
            async with rest:
                clock = ManualClock()

                async def reconcile() -> None:
                    return None

                user = UserStream(rest, Venue("sandbox", sb.rest_url, sb.ws_url), lambda _m: None, reconcile,
                                  clock=clock, keepalive_s=1800, seed=5)
                task = asyncio.create_task(user.run())
                try:
                    await asyncio.wait_for(user.ready.wait(), 20)
                    await until(lambda: clock.sleepers == 1, "keep-alive timer armed")
                    key, posts = user.listen_key, rest.stats.requests
                    await clock.advance(1000)
                    assert rest.stats.requests == posts

                    user.drop()  # the network drops the connection; the reconnect reuses the key
                    await until(lambda: not user.connected and clock.sleepers == 1, "backing off")
                    await clock.advance((clock.next_deadline() or 0) - clock.monotonic())
                    await until(lambda: user.connected and user.reconnects == 1 and clock.sleepers == 1,
                                "reconnected, keep-alive timer armed")
                    assert user.listen_key == key and user.keys_created == 1 and rest.stats.requests == posts

                    await clock.advance(1800 - clock.monotonic())  # the key's 30th minute
                    await until(lambda: rest.stats.requests == posts + 1, "PUT at the key's age of 30 min",
                                hang_after_s=5)
                    assert getattr(user, "renewed_at", None) == 1800
                finally:
                    await user.stop()
                    await asyncio.wait_for(task, 20)

    asyncio.run(scenario())
