"""Orders, algo orders, positions and account endpoints: Binance's shapes, filters and error codes.

Prices refer to the real FILUSDT klines of 2023-08-01 in tests/data/sandbox: after three klines the last
price is 4.256, kline 3 opens at 4.256 and kline 5 dips to 4.239.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest

from kinetic_empire.core.clock import ManualClock
from kinetic_empire.resources import exchange_info_payload
from tests.support.sandbox import SYM, WALL0, Client, run

pytestmark = pytest.mark.integration

SAMPLES = str(Path(__file__).parents[1] / "data" / "api")  # real Binance payload samples (tests/data/README.md)
ORDER_KEYS = ["orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty", "executedQty", "cumQty",
              "cumQuote", "timeInForce", "type", "reduceOnly", "closePosition", "side", "positionSide", "stopPrice",
              "workingType", "priceProtect", "origType", "priceMatch", "selfTradePreventionMode", "goodTillDate",
              "time", "updateTime"]


def limit(price: str, qty: str = "10", side: str = "BUY", **kw: str) -> dict[str, str]:
    return {"symbol": SYM, "side": side, "type": "LIMIT", "timeInForce": "GTC", "quantity": qty, "price": price, **kw}


def test_limit_order_lifecycle_and_shapes() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        r = await c.post("/fapi/v1/order", limit("4.200", newClientOrderId="my-order_1"))
        assert r.status == 200, r
        o = r.data
        assert list(o) == ORDER_KEYS
        assert (o["status"], o["price"], o["origQty"], o["executedQty"], o["avgPrice"]) == (
            "NEW", "4.200", "10.0", "0.0", "0.000")
        assert isinstance(o["orderId"], int) and isinstance(o["updateTime"], int) and o["reduceOnly"] is False
        assert r.headers["X-MBX-ORDER-COUNT-10S"] == "1" and r.headers["X-MBX-ORDER-COUNT-1M"] == "1"
        assert (await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": o["orderId"]})).data == o
        assert (await c.get("/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "my-order_1"})).data == o
        assert (await c.get("/fapi/v1/openOrder", {"symbol": SYM, "orderId": o["orderId"]})).data == o
        assert [x["orderId"] for x in (await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data] == [o["orderId"]]
        assert len((await c.get("/fapi/v1/openOrders")).data) == 1
        dup = await c.post("/fapi/v1/order", limit("4.100", newClientOrderId="my-order_1"))
        assert dup.code == -4116
        r = await c.delete("/fapi/v1/order", {"symbol": SYM, "orderId": o["orderId"]})
        assert r.data["status"] == "CANCELED" and r.data["orderId"] == o["orderId"]
        r = await c.delete("/fapi/v1/order", {"symbol": SYM, "orderId": o["orderId"]})
        assert (r.status, r.code, r.data["msg"]) == (400, -2011, "Unknown order sent.")
        r = await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": 999})
        assert (r.code, r.data["msg"]) == (-2013, "Order does not exist.")
        assert (await c.get("/fapi/v1/order", {"symbol": SYM})).code == -1102
        assert (await c.get("/fapi/v1/openOrder", {"symbol": SYM, "orderId": o["orderId"]})).code == -2013
        await c.post("/fapi/v1/order", limit("4.100"))
        await c.post("/fapi/v1/order", limit("4.150"))
        r = await c.delete("/fapi/v1/allOpenOrders", {"symbol": SYM})
        assert r.data == {"code": 200, "msg": "The operation of cancel all open order is done."}
        assert (await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data == []
        orders = (await c.get("/fapi/v1/allOrders", {"symbol": SYM})).data
        assert [x["status"] for x in orders] == ["CANCELED"] * 3
        assert len((await c.get("/fapi/v1/allOrders", {"symbol": SYM, "orderId": orders[1]["orderId"]})).data) == 2
        # sample shape: every field of a real response is present with the same type
        with open(f"{SAMPLES}/order/POST_fapi_v1_order.LIMIT_NEW.nautilus_crate.json") as fh:
            sample = json.load(fh)
        assert {k: type(v) for k, v in sample.items()} == {k: type(o[k]) for k in sample}

    run(body)


def test_filters_and_order_errors() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)

        async def code(params: dict[str, str]) -> tuple[int, str]:
            r = await c.post("/fapi/v1/order", params)
            assert r.status == 400, r
            return r.code, r.data["msg"]

        assert (await code(limit("4.2001")))[0] == -1111
        assert (await code(limit("4.200", qty="10.05")))[0] == -1111
        assert await code(limit("4.200", qty="0")) == (-4003, "Quantity less than or equal to zero.")
        assert await code(limit("4.200", qty="1")) == (
            -4164, "Order's notional must be no smaller than 5 (unless you choose reduce only).")
        assert (await code(limit("4.600")))[0] == -4016  # PERCENT_PRICE: above mark x 1.05
        assert (await code(limit("3.900", side="SELL")))[0] == -4024  # below mark x 0.95
        assert await code({"symbol": SYM, "side": "BUY", "type": "MARKET", "quantity": "100000"}) == (
            -2019, "Margin is insufficient.")
        assert await code({"symbol": SYM, "side": "SELL", "type": "MARKET", "quantity": "10",
                           "reduceOnly": "true"}) == (-2022, "ReduceOnly Order is rejected.")
        assert (await code(limit("4.256", timeInForce="GTX")))[0] == -5022
        assert (await code(limit("4.100", timeInForce="FOK")))[0] == -5021
        assert await code({"symbol": SYM, "side": "SELL", "type": "STOP_MARKET", "quantity": "10",
                           "stopPrice": "4.0"}) == (
            -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.")
        assert (await code(limit("4.200", timeInForce="GTD")))[0] == -1102
        assert (await code(limit("4.200", timeInForce="GTD", goodTillDate="1")))[0] == -5040
        # reduce-only orders are exempt from MIN_NOTIONAL; a post-only below the market rests
        r = await c.post("/fapi/v1/order", limit("4.200", timeInForce="GTX"))
        assert r.status == 200 and r.data["timeInForce"] == "GTX"

    run(body)


def test_tick_and_step_filters() -> None:
    """-4014 and -4023 need a grid finer than the number of decimals allows: use a custom exchangeInfo."""
    info = copy.deepcopy(exchange_info_payload(False))
    fil = next(s for s in info["symbols"] if s["symbol"] == SYM)
    for f in fil["filters"]:
        if f["filterType"] == "PRICE_FILTER":
            f.update(tickSize="0.005", minPrice="0.005")
        if f["filterType"] in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            f.update(stepSize="0.5", minQty="0.5")

    async def body(sb, c: Client) -> None:
        await sb.step(3)
        r = await c.post("/fapi/v1/order", limit("4.201"))
        assert (r.code, r.data["msg"]) == (-4014, "Price not increased by tick size.")
        r = await c.post("/fapi/v1/order", limit("4.200", qty="10.3"))
        assert (r.code, r.data["msg"]) == (-4023, "Qty not increased by step size.")
        assert (await c.post("/fapi/v1/order", limit("4.200", qty="10.5"))).status == 200

    run(body, exchange_info=info)


def test_batch_orders_mixed_results() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        batch = [limit("4.200"), limit("4.200", qty="0"), {**limit("4.2"), "type": "STOP_MARKET"},
                 {"symbol": SYM, "side": "BUY", "type": "MARKET", "quantity": "10"}]
        r = await c.post("/fapi/v1/batchOrders", {"batchOrders": json.dumps(batch, separators=(",", ":"))})
        assert r.status == 200
        assert r.data[0]["status"] == "NEW" and r.data[3]["type"] == "MARKET"
        assert r.data[1] == {"code": -4003, "msg": "Quantity less than or equal to zero."}
        assert r.data[2]["code"] == -4120
        assert r.headers["X-MBX-ORDER-COUNT-10S"] == "5"
        ids = [r.data[0]["orderId"], 12345]
        r = await c.delete("/fapi/v1/batchOrders", {"symbol": SYM, "orderIdList": json.dumps(ids)})
        assert r.status == 200 and r.data[0]["status"] == "CANCELED" and r.data[1]["code"] == -2011
        r = await c.post("/fapi/v1/batchOrders", {"batchOrders": json.dumps([limit("4.2")] * 6)})
        assert r.status == 400
        assert (await c.post("/fapi/v1/batchOrders", {"batchOrders": "[{"})).code == -1130

    run(body)


def test_market_fill_positions_account_trades_income() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        r = await c.post("/fapi/v1/order", {"symbol": SYM, "side": "BUY", "type": "MARKET", "quantity": "10"})
        oid = r.data["orderId"]
        assert r.data["status"] == "NEW"  # fills at the next price update
        await sb.step(1)
        o = (await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": oid})).data
        assert (o["status"], o["avgPrice"], o["executedQty"], o["cumQuote"]) == ("FILLED", "4.256", "10.0", "42.5600")
        v2 = (await c.get("/fapi/v2/positionRisk", {"symbol": SYM})).data
        with open(f"{SAMPLES}/positionRisk/GET_fapi_v2_positionRisk.nautilus_crate.json") as fh:
            sample = json.load(fh)[0]
        assert set(sample) <= set(v2[0]) and {k: type(v) for k, v in sample.items()} == {
            k: type(v2[0][k]) for k in sample}
        assert (v2[0]["positionAmt"], v2[0]["entryPrice"], v2[0]["leverage"], v2[0]["marginType"]) == (
            "10.0", "4.256", "20", "cross")
        assert len((await c.get("/fapi/v2/positionRisk")).data) == len(sb.venue.rules)
        v3 = (await c.get("/fapi/v3/positionRisk")).data
        assert [p["symbol"] for p in v3] == [SYM] and "leverage" not in v3[0]
        fee = Decimal("42.56") * Decimal("0.0005")
        acct = (await c.get("/fapi/v2/account")).data
        with open(f"{SAMPLES}/account/GET_fapi_v2_account.nautilus_crate.json") as fh:
            sample = json.load(fh)
        assert set(sample) <= set(acct) and set(sample["assets"][0]) <= set(acct["assets"][0])
        assert set(sample["positions"][0]) <= set(acct["positions"][0])
        assert Decimal(acct["totalWalletBalance"]) == Decimal(10000) - fee
        v3a = (await c.get("/fapi/v3/account")).data
        assert [p["symbol"] for p in v3a["positions"]] == [SYM] and "feeTier" not in v3a
        bal = (await c.get("/fapi/v3/balance")).data
        with open(f"{SAMPLES}/balance/GET_fapi_v2_balance.nautilus_crate.json") as fh:
            assert set(json.load(fh)[0]) == set(bal[0])
        trades = (await c.get("/fapi/v1/userTrades", {"symbol": SYM})).data
        assert len(trades) == 1 and trades[0]["orderId"] == oid and trades[0]["buyer"] is True
        assert Decimal(trades[0]["commission"]) == fee and trades[0]["maker"] is False
        income = (await c.get("/fapi/v1/income")).data
        assert [(i["incomeType"], Decimal(i["income"])) for i in income] == [("COMMISSION", -fee)]
        assert isinstance(income[0]["tranId"], int) and isinstance(income[0]["tradeId"], str)
        # close it: realized PnL and a reduce-only order larger than the position is trimmed
        await c.post("/fapi/v1/order", {"symbol": SYM, "side": "SELL", "type": "MARKET", "quantity": "20",
                                        "reduceOnly": "true"})
        await sb.step(1)
        v3 = (await c.get("/fapi/v3/positionRisk")).data
        assert v3 == []
        kinds = [i["incomeType"] for i in (await c.get("/fapi/v1/income")).data]
        assert kinds.count("COMMISSION") == 2

    run(body, market_fills="next_update")  # figures computed for a fill at the next update (opt-in mode)


def test_leverage_margin_type_position_mode_and_config() -> None:
    async def body(sb, c: Client) -> None:
        r = await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": 10})
        assert r.data == {"leverage": 10, "maxNotionalValue": r.data["maxNotionalValue"], "symbol": SYM}
        assert isinstance(r.data["maxNotionalValue"], str)
        assert (await c.post("/fapi/v1/leverage", {"symbol": SYM, "leverage": 200})).code == -4028
        r = await c.post("/fapi/v1/marginType", {"symbol": SYM, "marginType": "CROSSED"})
        assert (r.code, r.data["msg"]) == (-4046, "No need to change margin type.")
        assert (await c.post("/fapi/v1/marginType", {"symbol": SYM, "marginType": "ISOLATED"})).data == {
            "code": 200, "msg": "success"}
        assert (await c.get("/fapi/v1/symbolConfig", {"symbol": SYM})).data[0]["marginType"] == "ISOLATED"
        r = await c.post("/fapi/v1/positionMargin", {"symbol": SYM, "amount": "10", "type": 1})
        assert r.code == -1130  # no position to add margin to
        assert (await c.post("/fapi/v1/marginType", {"symbol": SYM, "marginType": "CROSSED"})).status == 200
        assert (await c.get("/fapi/v1/positionSide/dual")).data == {"dualSidePosition": False}
        assert (await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "false"})).code == -4059
        r = await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})  # settable (flat, no orders)
        assert r.data == {"code": 200, "msg": "success"}
        assert (await c.get("/fapi/v1/positionSide/dual")).data == {"dualSidePosition": True}
        assert (await c.post("/fapi/v1/positionSide/dual", {"dualSidePosition": "false"})).status == 200
        cr = (await c.get("/fapi/v1/commissionRate", {"symbol": SYM})).data
        assert cr == {"symbol": SYM, "makerCommissionRate": "0.0002", "takerCommissionRate": "0.0005",
                      "rpiCommissionRate": "0"}
        br = (await c.get("/fapi/v1/leverageBracket", {"symbol": SYM})).data
        assert br[0]["symbol"] == SYM and isinstance(br[0]["brackets"][0]["maintMarginRatio"], float | int)
        sc = (await c.get("/fapi/v1/symbolConfig", {"symbol": SYM})).data
        assert sc[0]["leverage"] == 10 and sc[0]["marginType"] == "CROSSED"

    run(body)


def test_algo_orders_trigger_into_plain_orders() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        await c.order(side="BUY", type="MARKET", quantity="10")
        await sb.step(2)  # long 10 at 4.256; last 4.256
        algo = {"algoType": "CONDITIONAL", "symbol": SYM, "side": "SELL", "type": "STOP_MARKET",
                "triggerPrice": "4.245", "quantity": "10", "reduceOnly": "true", "clientAlgoId": "sl-1"}
        r = await c.post("/fapi/v1/algoOrder", algo)
        assert r.status == 200, r
        a = r.data
        assert (a["algoStatus"], a["orderType"], a["triggerPrice"], a["clientAlgoId"], a["activatePrice"]) == (
            "NEW", "STOP_MARKET", "4.245", "sl-1", "")
        assert isinstance(a["algoId"], int) and a["icebergQuantity"] is None
        tp = await c.post("/fapi/v1/algoOrder", {**algo, "type": "TAKE_PROFIT", "triggerPrice": "4.300",
                                                 "price": "4.300", "clientAlgoId": "tp-1"})
        assert tp.status == 200 and tp.data["timeInForce"] == "GTC"
        opened = (await c.get("/fapi/v1/openAlgoOrders", {"symbol": SYM})).data
        assert [x["algoId"] for x in opened] == [a["algoId"], tp.data["algoId"]]
        assert (await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data == []  # algo orders are separate
        got = (await c.get("/fapi/v1/algoOrder", {"clientAlgoId": "sl-1"})).data
        assert got["actualOrderId"] == "" and got["algoId"] == a["algoId"]
        # errors
        r = await c.post("/fapi/v1/algoOrder", {**algo, "triggerPrice": "4.300", "clientAlgoId": "x"})
        assert (r.code, r.data["msg"]) == (-2021, "Order would immediately trigger.")
        r = await c.post("/fapi/v1/algoOrder", {**algo, "closePosition": "true", "clientAlgoId": "x"})
        assert r.code == -4137
        r = await c.post("/fapi/v1/algoOrder", {**algo, "type": "TRAILING_STOP_MARKET", "callbackRate": "1",
                                                "clientAlgoId": "x"})
        assert r.code == -1106  # a trailing stop takes no triggerPrice
        trail = {k: v for k, v in algo.items() if k != "triggerPrice"}
        r = await c.post("/fapi/v1/algoOrder", {**trail, "type": "TRAILING_STOP_MARKET", "clientAlgoId": "x"})
        assert r.code == -1102  # ... but a callbackRate
        r = await c.post("/fapi/v1/algoOrder", {**trail, "type": "TRAILING_STOP_MARKET", "callbackRate": "12",
                                                "clientAlgoId": "x"})
        assert (r.code, r.data["msg"]) == (-2007, "Invalid callBack rate.")
        r = await c.post("/fapi/v1/algoOrder", {**trail, "type": "TRAILING_STOP_MARKET", "callbackRate": "1",
                                                "activatePrice": "4.100", "clientAlgoId": "x"})
        assert r.code == -2021  # a SELL arms on a rise: an activation price below the price is already passed
        r = await c.post("/fapi/v1/algoOrder", {**algo, "algoType": "VP", "clientAlgoId": "x"})
        assert r.code == -1130
        # kline 5 dips to 4.239: the stop fires at 4.245 and becomes a filled MARKET order with its own id
        await sb.step(1)
        got = (await c.get("/fapi/v1/algoOrder", {"algoId": a["algoId"]})).data
        assert got["algoStatus"] == "FINISHED" and got["actualOrderId"] != ""
        assert (got["actualPrice"], got["actualQty"]) == ("4.245", "10.0")
        actual = (await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": int(got["actualOrderId"])})).data
        assert (actual["status"], actual["type"], actual["origType"], actual["avgPrice"], actual["stopPrice"]) == (
            "FILLED", "MARKET", "STOP_MARKET", "4.245", "4.245")
        assert (await c.get("/fapi/v3/positionRisk")).data == []
        # the take-profit was reduce-only: it expired with the position
        tp_now = (await c.get("/fapi/v1/algoOrder", {"algoId": tp.data["algoId"]})).data
        assert tp_now["algoStatus"] == "EXPIRED"
        trades = (await c.get("/fapi/v1/userTrades", {"symbol": SYM})).data
        assert trades[-1]["orderId"] == actual["orderId"]
        assert Decimal(trades[-1]["realizedPnl"]) == Decimal("-0.11")
        r = await c.delete("/fapi/v1/algoOrder", {"algoId": a["algoId"]})
        assert r.code == -2011
        # cancel path
        r = await c.post("/fapi/v1/algoOrder", {**algo, "side": "BUY", "reduceOnly": "false", "triggerPrice": "4.400",
                                                "clientAlgoId": "entry"})
        assert r.status == 200
        d = await c.delete("/fapi/v1/algoOrder", {"algoId": r.data["algoId"]})
        assert d.data == {"algoId": r.data["algoId"], "clientAlgoId": "entry", "code": "200", "msg": "success"}
        assert (await c.get("/fapi/v1/algoOrder", {"algoId": r.data["algoId"]})).data["algoStatus"] == "CANCELED"
        assert len((await c.get("/fapi/v1/allAlgoOrders", {"symbol": SYM})).data) == 3
        r = await c.delete("/fapi/v1/algoOpenOrders", {"symbol": SYM})
        assert r.data["code"] == 200

    run(body, market_fills="next_update")  # figures computed for a fill at the next update (opt-in mode)


def test_partial_fills_from_max_fill_qty() -> None:
    from kinetic_empire.exchange.config import ExchangeConfig

    async def body(sb, c: Client) -> None:
        await sb.step(3)
        oid = (await c.order(side="BUY", type="MARKET", quantity="25")).data["orderId"]
        await sb.step_updates(1)
        o = (await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": oid})).data
        assert (o["status"], o["executedQty"]) == ("PARTIALLY_FILLED", "10.0")
        await sb.step_updates(2)
        o = (await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": oid})).data
        assert (o["status"], o["executedQty"]) == ("FILLED", "25.0")

    run(body, exchange=ExchangeConfig(max_fill_qty={SYM: Decimal(10)}),
        market_fills="next_update")  # the per-update cap is counted from the next update (opt-in mode)


def test_countdown_cancel_all_fires_unless_renewed() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        assert (await c.post("/fapi/v1/order", limit("4.100"))).status == 200

        async def open_count() -> int:
            return len((await c.get("/fapi/v1/openOrders", {"symbol": SYM})).data)

        r = await c.post("/fapi/v1/countdownCancelAll", {"symbol": SYM, "countdownTime": 5000})
        assert r.data == {"symbol": SYM, "countdownTime": "5000"}
        await clock.advance(4.9)
        assert await open_count() == 1
        await c.post("/fapi/v1/countdownCancelAll", {"symbol": SYM, "countdownTime": 5000})  # renewed: 5 s again
        await clock.advance(4.9)
        assert await open_count() == 1
        await clock.advance(0.2)
        assert await open_count() == 0
        assert (await c.post("/fapi/v1/order", limit("4.100"))).status == 200
        await c.post("/fapi/v1/countdownCancelAll", {"symbol": SYM, "countdownTime": 5000})
        await c.post("/fapi/v1/countdownCancelAll", {"symbol": SYM, "countdownTime": 0})  # 0 switches it off
        await clock.advance(60)
        assert await open_count() == 1

    clock = ManualClock(WALL0)
    run(body, clock=clock)
