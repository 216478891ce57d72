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


def test_modify_order_changes_a_resting_limit_in_place() -> None:
    """PUT /fapi/v1/order (Binance: LIMIT only, price and quantity both sent, ids kept, AMENDMENT event)."""

    async def body(sb, c: Client) -> None:
        await sb.step(3)
        listen = (await c.post("/fapi/v1/listenKey", signed=False)).data["listenKey"]
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws/{listen}") as ws:
            placed = (await c.order(side="BUY", type="LIMIT", quantity="10", price="4.100", timeInForce="GTC",
                                    newClientOrderId="mod-1")).data
            changed = await c.call("PUT", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "mod-1",
                                                              "side": "BUY", "quantity": "12", "price": "4.050"})
            assert changed.status == 200, changed
            assert (changed.data["orderId"], changed.data["clientOrderId"]) == (placed["orderId"], "mod-1")
            assert (changed.data["origQty"], changed.data["price"], changed.data["status"]) == ("12.0", "4.050", "NEW")
            got = (await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": placed["orderId"]})).data
            assert (got["origQty"], got["price"]) == ("12.0", "4.050")
            events = []
            while len(events) < 2:
                msg = await ws.receive_json(timeout=5)
                if msg.get("e") == "ORDER_TRADE_UPDATE":
                    events.append((msg["o"]["x"], msg["o"]["q"], msg["o"]["p"]))
            assert events == [("NEW", "10.0", "4.100"), ("AMENDMENT", "12.0", "4.050")]

        same = await c.call("PUT", "/fapi/v1/order", {"symbol": SYM, "orderId": placed["orderId"], "side": "BUY",
                                                       "quantity": "12", "price": "4.050"})
        assert same.data == {"code": -5027, "msg": "No need to modify the order."}
        tiny = await c.call("PUT", "/fapi/v1/order", {"symbol": SYM, "orderId": placed["orderId"], "side": "BUY",
                                                       "quantity": "1", "price": "4.050"})
        assert tiny.data["code"] == -5029
        missing = await c.call("PUT", "/fapi/v1/order", {"symbol": SYM, "orderId": 999, "side": "BUY",
                                                          "quantity": "1", "price": "4.050"})
        assert missing.data["code"] == -2013
        mkt = (await c.order(side="BUY", type="MARKET", quantity="10")).data
        wrong = await c.call("PUT", "/fapi/v1/order", {"symbol": SYM, "orderId": mkt["orderId"], "side": "BUY",
                                                        "quantity": "11", "price": "4.2"})
        assert wrong.data["code"] in (-5025, -2013)  # a market order: not modifiable (or already filled)
        assert (await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": placed["orderId"]})).data["price"] == "4.050"

    run(body)


def test_ccxt_edit_order_works_against_the_sandbox() -> None:
    import ccxt.pro as ccxtpro

    from tests.support.ccxt_sandbox import point_ccxt

    async def body(sb, c: Client) -> None:
        await sb.step(3)
        ex = point_ccxt(ccxtpro.binanceusdm({"apiKey": sb.api_key, "secret": sb.api_secret,
                                             "options": {"fetchCurrencies": False}}), sb)
        try:
            await ex.load_markets()
            o = await ex.create_order("FIL/USDT:USDT", "limit", "buy", 10, 4.1)
            edited = await ex.edit_order(o["id"], "FIL/USDT:USDT", "limit", "buy", 11, 4.05)
            assert (edited["id"], edited["amount"], edited["price"], edited["status"]) == (o["id"], 11, 4.05, "open")
        finally:
            await ex.close()

    run(body)


def test_an_order_executed_under_a_5xx_is_queryable_only_after_the_configured_delay() -> None:
    """The race behind issue 12 item 3: Binance may answer 5xx for an order it executed, and not find it yet."""
    from kinetic_empire.core.clock import ManualClock
    from kinetic_empire.sandbox import FaultConfig

    async def body(sb, c: Client) -> None:
        await sb.step(3)
        r = await c.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="10", price="4.100",
                          newClientOrderId="late-1")
        assert r.status == 503  # executed, but the client cannot know
        sb.venue.faults.cfg.update({"error_executed_rate": 0.0})
        lookup = {"symbol": SYM, "origClientOrderId": "late-1"}
        assert (await c.get("/fapi/v1/order", lookup)).data["code"] == -2013  # not visible yet
        assert [o["clientOrderId"] for o in (await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data] == ["late-1"]
        await clock.advance(2.0)
        assert (await c.get("/fapi/v1/order", lookup)).data["status"] == "NEW"

    clock = ManualClock(1_700_000_000_000)
    run(body, clock=clock, faults=FaultConfig(enabled=True, error_executed_rate=1.0, unknown_visible_after_ms=1500))


def test_account_config_update_only_on_a_real_change() -> None:
    """Binance says nothing when a setting does not change (the doctor must not wait for it: issue 12 item 6)."""
    from tests.support.sandbox import recv_json

    async def body(sb, c: Client) -> None:
        await sb.step(2)
        listen = (await c.post("/fapi/v1/listenKey", signed=False)).data["listenKey"]
        async with c.session.ws_connect(f"{sb.ws_url}/private/ws?listenKey={listen}") as ws:
            for lev in (7, 7, 8):
                assert (await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": lev})).status == 200
            seen = [await recv_json(ws), await recv_json(ws)]  # a second 7 would come before the 8
            assert [(m["e"], m["ac"]["l"]) for m in seen] == [("ACCOUNT_CONFIG_UPDATE", 7),
                                                               ("ACCOUNT_CONFIG_UPDATE", 8)]
        assert (await c.post("/fapi/v1/marginType", {"symbol": SYM, "marginType": "CROSSED"})).data["code"] == -4046

    run(body)
