"""Bad input never crashes the server or touches another account; funding reaches the user stream."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from urllib.parse import quote

import pytest

from kinetic_empire.sandbox import ApiKey
from kinetic_empire.sandbox.auth import sign
from tests.support.sandbox import SYM, Client, collect, run

pytestmark = pytest.mark.integration

NAMES = ["symbol", "side", "type", "quantity", "price", "timeInForce", "orderId", "origClientOrderId", "limit",
         "startTime", "endTime", "interval", "leverage", "marginType", "algoType", "triggerPrice", "batchOrders",
         "orderIdList", "reduceOnly", "closePosition", "newClientOrderId", "clientAlgoId", "algoId", "recvWindow",
         "dualSidePosition", "incomeType", "page", "fromId", "goodTillDate", "priceMatch", "bogus"]
VALUES = ["", "FILUSDT", "NEARUSDT", "BTCUSDT", "x", "BUY", "SELL", "LIMIT", "MARKET", "STOP_MARKET", "GTC", "GTX",
          "-1", "0", "1", "10", "4.2", "4.2001", "1e5", "99999999999999999999999", "true", "false", "[]",
          '[{"symbol":"FILUSDT"}]', "[1,2", "null", "\u00e9\u00e8", "%00", "1m", "CONDITIONAL", "🙂", " ", "&"]


def test_random_requests_get_binance_errors_never_500() -> None:
    rng = random.Random(7)

    async def body(sb, c: Client) -> None:
        await sb.step(3)
        paths = sorted(sb.gateway.table)
        seen: set[int] = set()
        for _ in range(800):
            method, path = rng.choice(paths)
            accepted = sb.gateway.table[(method, path)].params
            pool = sorted(accepted) if accepted and rng.random() < 0.9 else NAMES
            params = {rng.choice(pool): rng.choice(VALUES) for _ in range(rng.randint(0, 6))}
            if accepted and "symbol" in accepted and rng.random() < 0.7:
                params["symbol"] = SYM
            query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
            query = (query + "&" if query else "") + f"timestamp={int(time.time() * 1000)}"
            if rng.random() < 0.8:
                query += "&signature=" + sign(c.secret, query)
            r = await c.call(method, path, raw_query=query)
            assert r.status in (200, 400, 401, 404, 405), (method, path, params, r)
            if r.status != 200:
                assert set(r.data) == {"code", "msg"} and isinstance(r.data["code"], int), r
            seen.add(r.data.get("code", 0) if isinstance(r.data, dict) else 0)
        assert len(seen) >= 12, sorted(seen)  # the requests reached many different checks
        # garbage that is not even a query string, and JSON bodies (Binance takes form bodies only)
        for raw in ["%%%", "a=1&&&b", "=", "signature", "timestamp=abc&signature=", "%00x=%ff"]:
            r = await c.call("POST", "/fapi/v1/order", raw_query=raw)
            assert r.status == 400 and "code" in r.data
        async with c.session.post(sb.rest_url + "/fapi/v1/order", json={"symbol": SYM},
                                  headers={"X-MBX-APIKEY": c.key}) as resp:
            assert resp.status == 400 and "code" in await resp.json()
        assert (await c.public("/fapi/v1/ping")).status == 200

    run(body, timeout=60)


def test_accounts_are_isolated() -> None:
    k1, k2 = ApiKey.generate(), ApiKey.generate()

    async def body(sb, c: Client) -> None:
        await sb.step(3)
        a = Client(sb, c.session, k1.api_key, k1.api_secret)
        b = Client(sb, c.session, k2.api_key, k2.api_secret)
        o = (await a.order(side="BUY", type="MARKET", quantity="10")).data
        await sb.step(1)
        assert (await b.get("/fapi/v1/order", {"symbol": SYM, "orderId": o["orderId"]})).code == -2013
        assert (await b.delete("/fapi/v1/order", {"symbol": SYM, "orderId": o["orderId"]})).code == -2011
        assert (await b.get("/fapi/v3/positionRisk")).data == []
        assert (await a.get("/fapi/v3/positionRisk")).data[0]["positionAmt"] == "10.0"
        assert (await b.get("/fapi/v2/balance")).data[0]["balance"] == "10000.00000000"
        # each key signs for itself only
        crossed = Client(sb, c.session, k1.api_key, k2.api_secret)
        assert (await crossed.get("/fapi/v2/balance")).code == -1022

    run(body, keys=[k1, k2])


def test_funding_fee_reaches_income_and_user_stream() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        await c.order(side="BUY", type="MARKET", quantity="100")
        await sb.step(1)
        key = (await c.post("/fapi/v1/listenKey", signed=False)).data["listenKey"]
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey={key}") as ws:
            await sb.step(480)  # past 08:00 UTC, the next funding time
            upd = await collect(ws, lambda m: m["e"] == "ACCOUNT_UPDATE" and m["a"]["m"] == "FUNDING_FEE")
            assert upd["E"] == 1_690_848_000_000 + 8 * 3_600_000
        income = (await c.get("/fapi/v1/income", {"incomeType": "FUNDING_FEE"})).data
        assert len(income) == 1 and Decimal(income[0]["income"]) < 0  # a long pays a positive rate
        assert income[0]["tradeId"] == "" and income[0]["symbol"] == SYM

    run(body)
