"""A forced IP ban (issue 11, sandbox side): the sandbox answers HTTP 418 with Binance's -1003 body and a
``Retry-After`` (reference 6.1: "stop every request until the ban ends"), and the adapter's REST client must
back off for the whole ban, every request, not hammer the venue. Time is a ManualClock shared by both ends."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.sandbox import RateLimitConfig, SandboxServer
from tests.support.sandbox import SYM, WALL0, config
from tests.support.waiting import until

pytestmark = pytest.mark.integration


def test_a_forced_ban_answers_418_and_the_client_waits_it_out() -> None:
    clock = ManualClock(WALL0)

    async def body() -> None:
        cfg = config(admin=True, limits=RateLimitConfig(enforce=True))
        async with SandboxServer(cfg, clock=clock) as sb, aiohttp.ClientSession() as http:
            await sb.step(3)
            rest = BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret), clock=clock, max_retries=2)
            async with rest:
                await rest.signed("GET", "/fapi/v2/balance")
                async with http.post(f"{sb.rest_url}/sandbox-admin/ban", params={"seconds": "120"}) as r:
                    assert r.status == 200 and (await r.json())["bannedUntil"] == WALL0 + 120_000
                # the raw answer, as Binance gives it
                async with http.get(f"{sb.rest_url}/fapi/v1/ping") as r:
                    body = await r.json()
                    assert r.status == 418 and body["code"] == -1003
                    assert body["msg"].startswith("Way too many requests; IP(") and "banned until" in body["msg"]
                    assert r.headers["Retry-After"] == "120"

                base = clock.sleepers  # the sandbox's own timers
                sent = rest.stats.requests
                first = asyncio.create_task(rest.signed("GET", "/fapi/v2/positionRisk", {"symbol": SYM}))
                await until(lambda: clock.sleepers >= base + 1, "the client waiting out the ban")
                assert rest.stats.requests == sent + 1 and rest.stats.rate_limited == 1
                second = asyncio.create_task(rest.request("GET", "/fapi/v1/ticker/price", {"symbol": SYM}))
                await until(lambda: clock.sleepers >= base + 2, "a second request held back too")
                await clock.advance(119)
                await asyncio.sleep(0.05)  # real I/O time for anything that wrongly leaves now
                assert rest.stats.requests == sent + 1, "a request left during the ban"
                assert not first.done() and not second.done()
                await clock.advance(2)
                rows, price = await asyncio.wait_for(asyncio.gather(first, second), 10)
                assert rows[0]["symbol"] == SYM and price["symbol"] == SYM
                assert rest.stats.requests == sent + 3 and rest.stats.rate_limited == 1

                # a ban can be lifted early
                async with http.post(f"{sb.rest_url}/sandbox-admin/ban", params={"seconds": "600"}):
                    pass
                async with http.get(f"{sb.rest_url}/fapi/v1/ping") as r:
                    assert r.status == 418 and r.headers["Retry-After"] == "600"
                async with http.post(f"{sb.rest_url}/sandbox-admin/ban", params={"seconds": "0"}) as r:
                    assert (await r.json())["bannedUntil"] == 0
                await rest.signed("GET", "/fapi/v2/balance")

    asyncio.run(asyncio.wait_for(body(), 60))
