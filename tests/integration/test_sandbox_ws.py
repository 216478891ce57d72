"""WebSocket market streams and the user data stream, over real sockets."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest
import websockets

from kinetic_empire.core.clock import ManualClock
from tests.support.sandbox import SYM, WALL0, Client, collect, recv_json, run

pytestmark = pytest.mark.integration

T0 = 1_690_848_000_000


def test_kline_stream_updates_then_close() -> None:
    async def body(sb, c: Client) -> None:
        async with c.session.ws_connect(f"{sb.ws_url}/market/ws/filusdt@kline_1m") as ws:
            await sb.step(1)
            msgs = [await recv_json(ws) for _ in range(5)]
        assert [m["k"]["x"] for m in msgs] == [False, False, False, False, True]
        assert [m["k"]["c"] for m in msgs] == ["4.255", "4.256", "4.252", "4.252", "4.252"]
        final = msgs[-1]
        assert final["e"] == "kline" and final["s"] == SYM and final["E"] >= final["k"]["T"]
        k = final["k"]
        assert (k["t"], k["T"], k["i"], k["o"], k["h"], k["l"], k["c"], k["v"]) == (
            T0, T0 + 59_999, "1m", "4.255", "4.256", "4.252", "4.252", "25259.1")
        assert msgs[0]["k"]["h"] == "4.255" and msgs[1]["k"]["h"] == "4.256"  # the high is reached mid-kline
        assert isinstance(k["n"], int) and isinstance(k["q"], str)

    run(body)


def test_combined_streams_and_higher_intervals() -> None:
    async def body(sb, c: Client) -> None:
        url = f"{sb.ws_url}/market/stream?streams=filusdt@kline_5m/nearusdt@markPrice@1s"
        async with c.session.ws_connect(url) as ws:
            await sb.step(5)
            msgs = []
            while True:
                try:
                    msgs.append(await recv_json(ws, 0.3))
                except TimeoutError:
                    break
        klines = [m["data"] for m in msgs if m["stream"] == "filusdt@kline_5m"]
        marks = [m["data"] for m in msgs if m["stream"] == "nearusdt@markPrice@1s"]
        assert len(klines) == 25 and [k["k"]["x"] for k in klines].count(True) == 1 and klines[-1]["k"]["x"]
        assert klines[-1]["k"]["t"] == T0 and klines[-1]["k"]["T"] == T0 + 5 * 60_000 - 1
        assert len(marks) == 20 and marks[0]["e"] == "markPriceUpdate" and marks[0]["s"] == "NEARUSDT"
        assert set(marks[0]) >= {"p", "i", "P", "r", "T", "E"}

    run(body)


def test_subscribe_list_unsubscribe_on_routed_paths() -> None:
    async def body(sb, c: Client) -> None:
        async with c.session.ws_connect(f"{sb.ws_url}/market/ws") as ws:
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["filusdt@aggTrade", "filusdt@ticker",
                                                                            "filusdt@miniTicker"], "id": 1}))
            assert await recv_json(ws) == {"result": None, "id": 1}
            await ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": ["filusdt@miniTicker"], "id": 2}))
            assert await recv_json(ws) == {"result": None, "id": 2}
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
            assert await recv_json(ws) == {"result": ["filusdt@aggTrade", "filusdt@ticker"], "id": 3}
            await sb.step_updates(1)
            got = {(await recv_json(ws))["e"] for _ in range(2)}
            assert got == {"aggTrade", "24hrTicker"}
            await ws.send_str(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 4}))
            assert await recv_json(ws) == {"result": None, "id": 4}
            await sb.step_updates(1)
            assert set(await recv_json(ws)) == {"stream", "data"}
        async with c.session.ws_connect(f"{sb.ws_url}/public/ws/filusdt@bookTicker") as ws:
            await sb.step_updates(1)
            b = await recv_json(ws)
            assert b["e"] == "bookTicker" and set(b) == {"e", "u", "E", "T", "s", "b", "B", "a", "A"}
        async with websockets.connect(f"{sb.ws_url}/market/ws/!markPrice@arr") as ws2:  # an independent client library
            await sb.step_updates(1)
            arr = json.loads(await asyncio.wait_for(ws2.recv(), 3))
            assert sorted(x["s"] for x in arr) == ["FILUSDT", "NEARUSDT"]

    run(body)


def test_malformed_messages_get_errors_and_the_connection_stays_up() -> None:
    async def body(sb, c: Client) -> None:
        async with c.session.ws_connect(f"{sb.ws_url}/market/ws") as ws:
            await ws.send_str("not json")
            err = await recv_json(ws)
            assert err["code"] == 3 and err["msg"].startswith("Invalid JSON")
            await ws.send_str(json.dumps({"method": "DANCE", "id": 7}))
            err = await recv_json(ws)
            assert err["code"] == 2 and err["id"] == 7 and "unknown variant" in err["msg"]
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["filusdt@kline_1m"], "id": -4}))
            assert (await recv_json(ws))["code"] == 2
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": [3], "id": 8}))
            assert (await recv_json(ws))["code"] == 2
            await ws.send_str(json.dumps({"params": [], "id": 9}))
            assert (await recv_json(ws))["msg"] == "Invalid request: missing field `method`"
            await ws.send_str(json.dumps([1, 2]))
            assert (await recv_json(ws))["code"] == 2
            await ws.send_bytes(b"\x00\x01")
            assert (await recv_json(ws))["code"] == 3
            await clock.advance(1.0)  # stay under 10 messages a second
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["filusdt@kline_1m"], "id": 10}))
            assert await recv_json(ws) == {"result": None, "id": 10}
            await sb.step_updates(1)
            assert (await recv_json(ws))["e"] == "kline"

    clock = ManualClock(WALL0)
    run(body, clock=clock)


def test_incoming_message_flood_closes_the_connection_and_server_pings() -> None:
    async def body(sb, c: Client) -> None:
        async with c.session.ws_connect(f"{sb.ws_url}/ws", autoping=False) as ws:
            msg = await asyncio.wait_for(ws.receive(), 3)
            assert msg.type == aiohttp.WSMsgType.PING
            await ws.pong(msg.data)
        async with c.session.ws_connect(f"{sb.ws_url}/ws") as ws:
            for i in range(12):
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            while True:
                msg = await asyncio.wait_for(ws.receive(), 3)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
            assert ws.close_code == 1008

    run(body, ws_ping_interval_s=0.2)


async def _listen(c: Client) -> str:
    return (await c.post("/fapi/v1/listenKey", signed=False)).data["listenKey"]


def test_user_stream_order_trade_and_account_updates() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        key = await _listen(c)
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey={key}") as ws:
            r = await c.order(side="BUY", type="MARKET", quantity="10", newClientOrderId="buy-1")
            new = await recv_json(ws)
            assert new["e"] == "ORDER_TRADE_UPDATE"
            o = new["o"]
            assert (o["x"], o["X"], o["c"], o["i"], o["S"], o["o"], o["q"]) == (
                "NEW", "NEW", "buy-1", r.data["orderId"], "BUY", "MARKET", "10.0")
            # filled on arrival (no price update played), at the ask: last 4.256 + one tick
            trade = await recv_json(ws)
            o = trade["o"]
            assert (o["x"], o["X"], o["l"], o["L"], o["z"], o["N"], o["m"], o["rp"]) == (
                "TRADE", "FILLED", "10.0", "4.257", "10.0", "USDT", False, "0.00000000")
            assert Decimal(o["n"]) == Decimal("0.021285") and isinstance(o["t"], int)
            acct = await recv_json(ws)
            assert acct["e"] == "ACCOUNT_UPDATE" and acct["a"]["m"] == "ORDER"
            assert acct["a"]["B"][0]["a"] == "USDT" and Decimal(acct["a"]["B"][0]["wb"]) == Decimal("9999.978715")
            p = acct["a"]["P"][0]
            assert (p["s"], p["pa"], p["ep"], p["ps"], p["mt"]) == (SYM, "10.0", "4.257", "BOTH", "cross")
            lim = await c.order(side="SELL", type="LIMIT", timeInForce="GTC", quantity="10", price="4.400")
            assert (await recv_json(ws))["o"]["X"] == "NEW"
            await c.delete("/fapi/v1/order", {"symbol": SYM, "orderId": lim.data["orderId"]})
            assert (await recv_json(ws))["o"]["x"] == "CANCELED"
            lev = await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": 9})
            assert lev.status == 200
            cfg = await recv_json(ws)
            assert cfg["e"] == "ACCOUNT_CONFIG_UPDATE" and cfg["ac"] == {"s": SYM, "l": 9}
        # the other path forms deliver too; the combined one wraps events with the listenKey as stream
        async with c.session.ws_connect(f"{sb.ws_url}/private/stream?listenKey={key}") as ws:
            await c.order(side="SELL", type="LIMIT", timeInForce="GTC", quantity="10", price="4.400")
            msg = await recv_json(ws)
            assert msg["stream"] == key and msg["data"]["e"] == "ORDER_TRADE_UPDATE"
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws/{key}") as ws:
            await c.order(side="SELL", type="LIMIT", timeInForce="GTC", quantity="10", price="4.400")
            assert (await recv_json(ws))["o"]["x"] == "NEW"
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey=nope")
        assert err.value.status == 400

    run(body)


def test_user_stream_algo_updates() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        await c.order(side="BUY", type="MARKET", quantity="10")
        await sb.step(2)
        key = await _listen(c)
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey={key}&events=ALGO_UPDATE/"
                                        "ORDER_TRADE_UPDATE") as ws:
            r = await c.post("/fapi/v1/algoOrder", {"algoType": "CONDITIONAL", "symbol": SYM, "side": "SELL",
                                                    "type": "STOP_MARKET", "triggerPrice": "4.245", "quantity": "10",
                                                    "reduceOnly": "true", "clientAlgoId": "sl"})
            new = await recv_json(ws)
            assert new["e"] == "ALGO_UPDATE" and new["o"]["X"] == "NEW" and new["o"]["aid"] == r.data["algoId"]
            assert new["o"]["caid"] == "sl" and new["o"]["ai"] == ""
            await sb.step(1)
            seq = [await recv_json(ws) for _ in range(4)]
            assert [(m["e"], m["o"]["X"]) for m in seq] == [  # Binance: the placed order first, then TRIGGERED
                ("ORDER_TRADE_UPDATE", "NEW"), ("ALGO_UPDATE", "TRIGGERED"), ("ORDER_TRADE_UPDATE", "FILLED"),
                ("ALGO_UPDATE", "FINISHED")]
            actual = seq[1]["o"]["ai"]
            assert actual and str(seq[0]["o"]["i"]) == actual and seq[2]["o"]["L"] == "4.245"
            assert seq[3]["o"]["ap"] == "4.245" and seq[3]["o"]["aq"] == "10.0"
            assert seq[2]["o"]["ot"] == "STOP_MARKET" and seq[2]["o"]["o"] == "MARKET"

    run(body)


def test_listen_key_expires() -> None:
    async def body(sb, c: Client) -> None:
        key = await _listen(c)
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey={key}") as ws:
            while not sb.users.conns.get(key):  # the server has attached the connection to the key
                await asyncio.sleep(0.001)
            await clock.advance(0.25)
            assert key in sb.users.by_key  # valid for 300 ms
            await clock.advance(0.1)
            msg = await recv_json(ws, 3)
            assert msg == {"e": "listenKeyExpired", "E": msg["E"], "listenKey": key}
            closing = await asyncio.wait_for(ws.receive(), 3)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        r = await c.call("PUT", "/fapi/v1/listenKey", signed=False)
        assert r.code == -1125
        assert (await _listen(c)) != key

    clock = ManualClock(WALL0)
    run(body, clock=clock, listen_key_validity_ms=300, listen_key_check_interval_s=0.05)


def test_margin_call_near_liquidation() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": 50})
        key = await _listen(c)
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey={key}&events=MARGIN_CALL") as ws:
            await c.order(side="BUY", type="MARKET", quantity="100")
            await sb.step(1)
            mc = await collect(ws, lambda m: m["e"] == "MARGIN_CALL")
            row = mc["p"][0]
            assert row["s"] == SYM and row["pa"] == "100.0" and set(row) == {"s", "ps", "pa", "mt", "iw", "mp", "up",
                                                                             "mm"}

    run(body, margin_call_ratio=Decimal("0.0001"))


def test_routes_are_policed_like_binance() -> None:
    """Book data only on /public, other market streams only on /market, user data only on /private;
    an unrouted path gets /public-class data only, and the legacy /ws/<listenKey> connects but stays
    silent (Binance since 2026-04-23), unless ``legacy_routes`` asks for the old behaviour."""
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        key = await _listen(c)
        both = "filusdt@kline_1m/filusdt@bookTicker"
        async with c.session.ws_connect(f"{sb.ws_url}/public/stream?streams={both}") as pub, \
                c.session.ws_connect(f"{sb.ws_url}/market/stream?streams={both}") as mkt, \
                c.session.ws_connect(f"{sb.ws_url}/stream?streams={both}") as unrouted, \
                c.session.ws_connect(f"{sb.ws_url}/ws/{key}") as legacy, \
                c.session.ws_connect(f"{sb.ws_url}/market/ws?listenKey={key}") as wrong, \
                c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey={key}") as private:
            await pub.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            assert await recv_json(pub) == {"result": ["filusdt@kline_1m", "filusdt@bookTicker"], "id": 1}
            await sb.step_updates(1)
            await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="10", price="4.100")
            assert (await recv_json(private))["e"] == "ORDER_TRADE_UPDATE"
            await sb.step_updates(1)
            await sb.flush()
            for ws, want in ((pub, {"filusdt@bookTicker"}), (mkt, {"filusdt@kline_1m"}),
                             (unrouted, {"filusdt@bookTicker"})):
                got = [await recv_json(ws), await recv_json(ws)]
                assert {m["stream"] for m in got} == want
            for ws in (pub, mkt, unrouted, legacy, wrong):
                with pytest.raises(TimeoutError):
                    await recv_json(ws, 0.2)

    run(body)

    async def legacy(sb, c: Client) -> None:
        await sb.step(3)
        key = await _listen(c)
        async with c.session.ws_connect(f"{sb.ws_url}/ws/{key}") as ws, \
                c.session.ws_connect(f"{sb.ws_url}/ws/filusdt@kline_1m") as kl:
            await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="10", price="4.100")
            assert (await recv_json(ws))["o"]["x"] == "NEW"
            await sb.step_updates(1)
            assert (await recv_json(kl))["e"] == "kline"

    run(legacy, legacy_routes=True)
