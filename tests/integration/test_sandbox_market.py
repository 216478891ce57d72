"""Market-data endpoints: shapes and types as Binance's, and never a kline from the future."""

from __future__ import annotations

import itertools
import json

import pytest

from kinetic_empire.resources import exchange_info_payload
from tests.support.sandbox import SYM, Client, run

pytestmark = pytest.mark.integration

T0 = 1_690_848_000_000  # 2023-08-01 00:00 UTC, first kline of the test data
MIN = 60_000
# the first klines of FILUSDT-1m-2023-08 (open, high, low, close, volume)
K0 = ("4.255", "4.256", "4.252", "4.252", "25259.1")


def test_ping_time_exchange_info() -> None:
    async def body(sb, c: Client) -> None:
        assert (await c.public("/fapi/v1/ping")).data == {}
        r = await c.public("/fapi/v1/time")
        assert isinstance(r.data["serverTime"], int)
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "2"
        info = (await c.public("/fapi/v1/exchangeInfo")).data
        snap = exchange_info_payload(False)
        # only the replayed symbols are listed (the snapshot has more): each listed symbol trades
        assert sorted(s["symbol"] for s in info["symbols"]) == ["FILUSDT", "NEARUSDT"]
        assert len(snap["symbols"]) > 2 and {s["status"] for s in info["symbols"]} == {"TRADING"}
        fil = next(s for s in info["symbols"] if s["symbol"] == SYM)
        assert fil == next(s for s in snap["symbols"] if s["symbol"] == SYM)
        assert info["rateLimits"] == snap["rateLimits"] and isinstance(info["serverTime"], int)

    run(body)


def test_klines_stop_at_the_replay_clock() -> None:
    async def body(sb, c: Client) -> None:
        assert (await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m"})).data == []
        await sb.step(3)
        rows = (await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m"})).data
        assert len(rows) == 3
        first = rows[0]
        assert first[0] == T0 and first[6] == T0 + MIN - 1 and tuple(first[1:6]) == K0
        assert [type(v) for v in first] == [int, str, str, str, str, str, int, str, int, str, str, str]
        # two updates into the fourth kline: it is visible, still open, and only partly formed
        await sb.step_updates(2)
        rows = (await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m"})).data
        assert len(rows) == 4 and rows[-1][0] == T0 + 3 * MIN
        r = await c.public("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "startTime": T0 + 10 * MIN})
        assert r.data == []

    run(body)


def test_klines_ranges_and_aggregation() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(30)
        get = c.public
        rows = (await get("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "limit": 5})).data
        assert [r[0] for r in rows] == [T0 + i * MIN for i in range(25, 30)]
        rows = (await get("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "startTime": T0 + 1, "limit": 2})).data
        assert [r[0] for r in rows] == [T0 + MIN, T0 + 2 * MIN]
        rows = (await get("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "endTime": T0 + 5 * MIN,
                                              "limit": 2})).data
        assert [r[0] for r in rows] == [T0 + 4 * MIN, T0 + 5 * MIN]
        rows = (await get("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "startTime": T0 + 2 * MIN,
                                              "endTime": T0 + 9 * MIN, "limit": 3})).data
        assert [r[0] for r in rows] == [T0 + 2 * MIN, T0 + 3 * MIN, T0 + 4 * MIN]
        ones = (await get("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "limit": 30})).data
        fives = (await get("/fapi/v1/klines", {"symbol": SYM, "interval": "5m"})).data
        assert len(fives) == 6
        for i, k in enumerate(fives):
            part = ones[5 * i: 5 * i + 5]
            assert k[0] == part[0][0] and k[6] == part[0][0] + 5 * MIN - 1
            assert k[1] == part[0][1] and k[4] == part[-1][4]
            assert float(k[2]) == max(float(p[2]) for p in part)
            assert float(k[3]) == min(float(p[3]) for p in part)
            assert abs(float(k[5]) - sum(float(p[5]) for p in part)) < 1e-6
        hour = (await get("/fapi/v1/klines", {"symbol": SYM, "interval": "1h"})).data
        assert len(hour) == 1 and hour[0][6] == T0 + 3_600_000 - 1  # still open: closes in the future
        assert (await get("/fapi/v1/klines", {"symbol": SYM, "interval": "2m"})).code == -1120
        assert (await get("/fapi/v1/klines", {"symbol": "NOPE", "interval": "1m"})).code == -1121
        weights = []
        for limit in (99, 100, 500, 1000, 1001):
            r = await get("/fapi/v1/klines", {"symbol": SYM, "interval": "1m", "limit": limit})
            weights.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
        assert [b - a for a, b in itertools.pairwise(weights)] == [2, 5, 5, 10]  # Binance's weight by limit
        mark = (await get("/fapi/v1/markPriceKlines", {"symbol": SYM, "interval": "1m", "limit": 2})).data
        assert mark == ones[-2:]
        idx = (await get("/fapi/v1/indexPriceKlines", {"pair": SYM, "interval": "1m", "limit": 2})).data
        assert [k[0] for k in idx] == [k[0] for k in mark]

    run(body)


def test_tickers_premium_index_funding_depth() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(600)  # ten hours: past the 08:00 funding time
        t = (await c.public("/fapi/v1/ticker/24hr", {"symbol": SYM})).data
        keys = ["symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "lastPrice", "lastQty",
                "openPrice", "highPrice", "lowPrice", "volume", "quoteVolume", "openTime", "closeTime", "firstId",
                "lastId", "count"]
        assert list(t) == keys
        assert t["openPrice"] == K0[0] and t["openTime"] == T0
        assert all(isinstance(t[k], str) for k in keys[:11]) and all(isinstance(t[k], int) for k in keys[11:])
        both = (await c.public("/fapi/v1/ticker/24hr")).data
        assert {x["symbol"] for x in both} == {"FILUSDT", "NEARUSDT"}
        for path in ("/fapi/v1/ticker/price", "/fapi/v2/ticker/price"):
            p = (await c.public(path, {"symbol": SYM})).data
            assert p == {"symbol": SYM, "price": t["lastPrice"], "time": p["time"]}
        b = (await c.public("/fapi/v1/ticker/bookTicker", {"symbol": SYM})).data
        assert b["bidPrice"] == t["lastPrice"] and float(b["askPrice"]) > float(b["bidPrice"])
        pi = (await c.public("/fapi/v1/premiumIndex", {"symbol": SYM})).data
        assert list(pi) == ["symbol", "markPrice", "indexPrice", "estimatedSettlePrice", "lastFundingRate",
                            "interestRate", "nextFundingTime", "time"]
        assert float(pi["markPrice"]) == float(t["lastPrice"]) and pi["nextFundingTime"] == T0 + 16 * 3_600_000
        assert pi["lastFundingRate"] == "0.00010000"
        fr = (await c.public("/fapi/v1/fundingRate", {"symbol": SYM})).data
        assert [f["fundingTime"] for f in fr] == [T0, T0 + 8 * 3_600_000]
        assert set(fr[0]) == {"symbol", "fundingRate", "fundingTime", "markPrice", "rateType"}
        d = (await c.public("/fapi/v1/depth", {"symbol": SYM, "limit": 5})).data
        assert len(d["bids"]) == 5 and d["bids"][0][0] == t["lastPrice"]
        assert (await c.public("/fapi/v1/depth", {"symbol": SYM, "limit": 7})).code == -1130
        assert (await c.public("/fapi/v1/ticker/24hr", {"symbol": "NOPE"})).code == -1121

    run(body)


def test_replay_path_visits_high_and_low() -> None:
    """Four updates per kline: open, low, high, close for a kline that closed up (reference: replay module)."""

    async def body(sb, c: Client) -> None:
        seen = []
        for _ in range(4):
            await sb.step_updates(1)
            seen.append((await c.public("/fapi/v1/ticker/price", {"symbol": SYM})).data["price"])
        assert seen == ["4.255", "4.256", "4.252", "4.252"]  # kline 0 closed down: open, high, low, close
        assert json.dumps(seen)

    run(body)
