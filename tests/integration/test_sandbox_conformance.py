"""Where the sandbox used to differ from Binance (issue 12 item 18), each checked over real sockets.

Sources: Binance's error-code list (-1101 "Duplicate values for a parameter detected."); the klines
endpoint's documented behaviour (``startTime`` alone returns the first ``limit`` klines from it).
"""

from __future__ import annotations

import time

import pytest

from kinetic_empire.sandbox.auth import sign
from tests.support.sandbox import SYM, Client, run

pytestmark = pytest.mark.integration

FIRST_OPEN = 1_690_848_000_000  # the first replayed FILUSDT kline: 2023-08-01 00:00 UTC


def test_a_parameter_given_twice_is_refused_with_1101() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(2)
        r = await c.call("GET", "/fapi/v1/klines", raw_query=f"symbol={SYM}&interval=1m&symbol=NEARUSDT",
                         signed=False, key=False)
        assert (r.status, r.data) == (400, {"code": -1101, "msg": "Duplicate values for a parameter detected."})
        q = f"symbol={SYM}&side=BUY&side=SELL&type=MARKET&quantity=1&timestamp={int(time.time() * 1000)}"
        r = await c.call("POST", "/fapi/v1/order", raw_query=q + "&signature=" + sign(c.secret, q))
        assert r.data["code"] == -1101
        assert (await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data == []  # nothing was placed

    run(body)


def test_an_oversized_body_is_a_4xx_with_a_binance_error() -> None:
    async def body(sb, c: Client) -> None:
        big = "a=" + "x" * (2 << 20)
        async with c.session.post(sb.rest_url + "/fapi/v1/order", data=big, headers={
                "X-MBX-APIKEY": c.key, "Content-Type": "application/x-www-form-urlencoded"}) as resp:
            assert resp.status == 413
            data = await resp.json()
            assert set(data) == {"code", "msg"}
        assert (await c.public("/fapi/v1/ping")).status == 200

    run(body)


def test_klines_from_a_start_before_the_data_return_the_first_klines() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(5)
        year_before = FIRST_OPEN - 365 * 86_400_000
        r = await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "startTime": year_before, "limit": 3})
        assert [row[0] for row in r.data] == [FIRST_OPEN, FIRST_OPEN + 60_000, FIRST_OPEN + 120_000]
        r = await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "startTime": FIRST_OPEN + 60_000,
                                               "limit": 2})
        assert [row[0] for row in r.data] == [FIRST_OPEN + 60_000, FIRST_OPEN + 120_000]

    run(body)
