"""Signing, keys, timestamps and parameter errors, exactly as Binance answers them (reference 2 and 6)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from kinetic_empire.sandbox.auth import sign, verify_signature
from kinetic_empire.sandbox.endpoints import ep
from kinetic_empire.sandbox.errors import ApiError
from tests.support.sandbox import SYM, Client, Reply, run

pytestmark = pytest.mark.integration

VECTOR_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
VECTOR_TEXT = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
               "&timestamp=1591702613943")
VECTOR_SIG = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"


def test_binance_test_vector_query_body_and_mixed() -> None:
    assert sign(VECTOR_SECRET, VECTOR_TEXT) == VECTOR_SIG
    verify_signature(VECTOR_SECRET, VECTOR_TEXT + "&signature=" + VECTOR_SIG, "")
    verify_signature(VECTOR_SECRET, "", VECTOR_TEXT + "&signature=" + VECTOR_SIG)
    # mixed: query and body are concatenated with nothing in between ("...timeInForce=GTCquantity=1...")
    q, b = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC", "quantity=1&price=9000&timestamp=1591702613943"
    verify_signature(VECTOR_SECRET, q, b + "&signature=" + sign(VECTOR_SECRET, q + b))
    verify_signature(VECTOR_SECRET, q, b + "&signature=" + sign(VECTOR_SECRET, q + b).upper())
    with pytest.raises(ApiError) as err:
        verify_signature(VECTOR_SECRET, VECTOR_TEXT.replace("9000", "9001") + "&signature=" + VECTOR_SIG, "")
    assert err.value.code == -1022


def test_signature_accepted_in_query_body_and_rejected_when_wrong() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(2)
        r = await c.get("/fapi/v2/balance")
        assert r.status == 200 and r.data[0]["asset"] == "USDT"
        r = await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": 7}, in_body=True)
        assert r.status == 200 and r.data["leverage"] == 7
        # split between query and body
        ts = int(time.time() * 1000)
        q, b = f"symbol={SYM}&leverage=8", f"timestamp={ts}"
        sig = sign(c.secret, q + b)
        async with c.session.post(f"{sb.rest_url}/fapi/v1/leverage?{q}", data=f"{b}&signature={sig}",
                                  headers={"X-MBX-APIKEY": c.key,
                                           "Content-Type": "application/x-www-form-urlencoded"}) as resp:
            assert resp.status == 200, await resp.text()
        # signed one encoding, sent another: Binance hashes the raw bytes
        q = urlencode({"symbol": SYM, "leverage": 9, "timestamp": int(time.time() * 1000)})
        bad = q.replace("leverage=9", "leverage=09")
        r = await c.post("/fapi/v1/leverage", raw_query=f"{bad}&signature={sign(c.secret, q)}")
        assert (r.status, r.code) == (400, -1022)
        assert r.data["msg"] == "Signature for this request is not valid."
        r = await c.get("/fapi/v2/balance", raw_query=f"timestamp={int(time.time() * 1000)}")
        assert (r.status, r.code) == (400, -1102)

    run(body)


def test_bad_keys_give_401() -> None:
    async def body(sb, c: Client) -> None:
        r = await c.get("/fapi/v2/balance", key=False)
        assert (r.status, r.code) == (401, -2014)
        other = Client(sb, c.session, key="A" * 64, secret="x")
        r = await other.get("/fapi/v2/balance")
        assert (r.status, r.code) == (401, -2015)
        assert r.data["msg"] == "Invalid API-key, IP, or permissions for action."
        bad = Client(sb, c.session, key="not a key!", secret="x")
        assert (await bad.get("/fapi/v2/balance")).code == -2014
        # a right key with the wrong secret is a signature error
        wrong = Client(sb, c.session, secret="y" * 64)
        assert (await wrong.get("/fapi/v2/balance")).code == -1022

    run(body)


def test_timestamp_and_recv_window() -> None:
    async def body(sb, c: Client) -> None:
        c.time_offset = -10_000
        r = await c.get("/fapi/v2/balance")
        assert (r.status, r.code) == (400, -1021)
        assert r.data["msg"] == "Timestamp for this request is outside of the recvWindow."
        r = await c.get("/fapi/v2/balance", {"recvWindow": 20_000})
        assert r.status == 200
        c.time_offset = 5_000
        r = await c.get("/fapi/v2/balance")
        assert r.code == -1021 and "ahead of the server's time" in r.data["msg"]
        c.time_offset = 0
        r = await c.get("/fapi/v2/balance", {"recvWindow": 70_000})
        assert r.code == -1130
        r = await c.get("/fapi/v2/balance", {"timestamp": "soon"})
        assert r.code == -1100

    run(body)


def test_parameter_errors() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(2)
        r = await c.order(side="BUY", type="LIMIT", quantity="10", price="4.2")
        assert (r.status, r.code) == (400, -1102) and "'timeInForce'" in r.data["msg"]
        r = await c.order(side="BUY", type="LIMIT", quantity="10", timeInForce="GTC")
        assert r.code == -1102 and "'price'" in r.data["msg"]
        r = await c.order(side="BUY", type="LIMIT", quantity="abc", price="4.2", timeInForce="GTC")
        assert r.code == -1100 and "'quantity'" in r.data["msg"]
        r = await c.order(side="BUY", type="LIMIT", quantity="1E-5", price="4.2", timeInForce="GTC")
        assert r.code == -1100
        r = await c.order(side="HOLD", type="LIMIT", quantity="10", price="4.2", timeInForce="GTC")
        assert (r.code, r.data["msg"]) == (-1117, "Invalid side.")
        r = await c.order(side="BUY", type="LIMIT_MAKER", quantity="10", price="4.2", timeInForce="GTC")
        assert (r.code, r.data["msg"]) == (-1116, "Invalid orderType.")
        r = await c.order(side="BUY", type="LIMIT", quantity="10", price="4.2", timeInForce="GTE")
        assert (r.code, r.data["msg"]) == (-1115, "Invalid timeInForce.")
        r = await c.order(side="BUY", type="MARKET", quantity="10", colour="red")
        assert r.code == -1104
        r = await c.order(side="BUY", type="MARKET", quantity="10", price="4.2")
        assert r.code == -1106
        r = await c.order(side="BUY", type="MARKET", quantity="10", newClientOrderId="bad id!")
        assert r.code == -1100
        r = await c.post("/fapi/v1/order", {"symbol": "NOPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"})
        assert (r.code, r.data["msg"]) == (-1121, "Invalid symbol.")
        r = await c.post("/fapi/v1/order", {"symbol": SYM, "side": "BUY", "type": "MARKET", "quantity": "10",
                                            "positionSide": "LONG"})
        assert r.code == -4061

    run(body)


def test_unknown_paths_methods_and_crashes_are_json() -> None:
    async def body(sb, c: Client) -> None:
        r = await c.public("/fapi/v1/nothing")
        assert r.status == 404 and r.code == -5000
        r = await c.call("PATCH", "/fapi/v1/order", signed=False, key=False)
        assert r.status == 405 and r.code == -5000
        r = await c.public("/")
        assert r.status == 404 and isinstance(r.data, dict)

        def boom(ctx):
            raise RuntimeError("bug")

        e = ep("GET", "/fapi/v1/boom", boom)
        sb.gateway.table[("GET", e.path)] = e
        r = await c.public("/fapi/v1/boom")
        assert (r.status, r.data) == (500, {"code": -1000, "msg": "An unknown error occured while processing the "
                                                                  "request."})
        assert (await c.public("/fapi/v1/ping")).status == 200  # still up

    run(body)


def test_listen_key_needs_key_not_signature() -> None:
    async def body(sb, c: Client) -> None:
        r = await c.post("/fapi/v1/listenKey", signed=False)
        assert r.status == 200 and len(r.data["listenKey"]) == 64
        again = await c.post("/fapi/v1/listenKey", signed=False)
        assert again.data == r.data  # the active key is returned and extended
        assert (await c.call("PUT", "/fapi/v1/listenKey", signed=False)).data == r.data
        assert (await c.delete("/fapi/v1/listenKey", signed=False)).data == {}
        r = await c.call("PUT", "/fapi/v1/listenKey", signed=False)
        assert (r.status, r.code) == (400, -1125)
        r = await c.post("/fapi/v1/listenKey", signed=False, key=False)
        assert r.code == -2014

    run(body)


def _reply_repr() -> None:
    repr(Reply(200, {}, {}))
