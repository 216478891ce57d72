"""Real, unmodified Binance clients against the sandbox: ccxt (REST and pro WebSocket), the official
``binance-futures-connector``, python-binance and Binance's ``binance-sdk-derivatives-trading-usds-futures``.
Only their base URLs change, as the reference's section 10.2 says."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt
import ccxt.pro as ccxtpro
import pytest

from tests.support.ccxt_sandbox import point_ccxt
from tests.support.sandbox import SYM, Client, run
from tests.support.waiting import until

pytestmark = pytest.mark.integration

MARKET = "FIL/USDT:USDT"


def test_ccxt_binanceusdm() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        ex = point_ccxt(ccxtpro.binanceusdm({"apiKey": sb.api_key, "secret": sb.api_secret,
                                             "options": {"fetchCurrencies": False}}), sb)
        try:
            markets = await ex.load_markets()
            assert MARKET in markets and markets[MARKET]["precision"]["price"] == 0.001
            bal = await ex.fetch_balance()
            assert bal["USDT"]["total"] == 10000 and bal["USDT"]["free"] == 10000
            assert (await ex.set_leverage(5, MARKET))["leverage"] == 5
            with pytest.raises(ccxt.MarginModeAlreadySet):
                await ex.set_margin_mode("cross", MARKET)
            # a market order fills on arrival, at the ask (last 4.256 + one tick): ccxt asks for RESULT and
            # gets the final state, and sees its position at once, with no price update in between
            mo = await ex.create_order(MARKET, "market", "buy", 10)
            assert (mo["status"], mo["type"], mo["filled"], mo["average"]) == ("closed", "market", 10.0, 4.257)
            pos = await ex.fetch_positions([MARKET])
            assert len(pos) == 1 and pos[0]["contracts"] == 10 and pos[0]["side"] == "long"
            assert pos[0]["entryPrice"] == 4.257 and pos[0]["leverage"] in (5, None)
            got = await ex.fetch_order(mo["id"], MARKET)
            assert (got["status"], got["filled"], got["average"]) == ("closed", 10.0, 4.257)
            await sb.step(1)
            # limit: place, list, cancel
            lo = await ex.create_order(MARKET, "limit", "buy", 10, 4.1)
            assert [o["id"] for o in await ex.fetch_open_orders(MARKET)] == [lo["id"]]
            assert (await ex.cancel_order(lo["id"], MARKET))["status"] == "canceled"
            # stop: goes to algoOrder
            so = await ex.create_order(MARKET, "market", "sell", 10, None, {"stopLossPrice": 4.2, "reduceOnly": True})
            assert so["info"]["algoStatus"] == "NEW" and so["triggerPrice"] == 4.2
            trig = await ex.fetch_open_orders(MARKET, params={"trigger": True})
            assert [o["id"] for o in trig] == [so["id"]]
            assert (await ex.fetch_order(so["id"], MARKET, {"trigger": True}))["status"] == "open"
            await ex.cancel_order(so["id"], MARKET, {"trigger": True})
            assert await ex.fetch_open_orders(MARKET, params={"trigger": True}) == []
            # Binance error codes come back in the exception
            with pytest.raises(ccxt.ExchangeError, match="-2019"):
                await ex.create_order(MARKET, "market", "buy", 1_000_000)
            with pytest.raises(ccxt.ExchangeError, match="-4164"):
                await ex.create_order(MARKET, "limit", "buy", 1, 4.1)
            with pytest.raises(ccxt.ExchangeError, match="-2011"):
                await ex.cancel_order("123", MARKET)
            # batch, market data, trades
            placed = await ex.create_orders([
                {"symbol": MARKET, "type": "limit", "side": "buy", "amount": 10, "price": 4.1},
                {"symbol": MARKET, "type": "limit", "side": "buy", "amount": 10, "price": 4.0},
            ])
            assert len(placed) == 2 and all(p["status"] == "open" for p in placed)
            await ex.cancel_all_orders(MARKET)
            ohlcv = await ex.fetch_ohlcv(MARKET, "1m", limit=3)
            assert ohlcv[-1][0] == 1_690_848_000_000 + 4 * 60_000 - 60_000
            ticker = await ex.fetch_ticker(MARKET)
            assert ticker["last"] == 4.256
            fr = await ex.fetch_funding_rate(MARKET)
            assert fr["fundingRate"] == 0.0001
            trades = await ex.fetch_my_trades(MARKET)
            assert len(trades) == 1 and trades[0]["order"] == mo["id"]
            tiers = await ex.fetch_leverage_tiers([MARKET])
            assert tiers[MARKET][0]["maxLeverage"] == 75
            # ccxt pro: klines and order updates over the sandbox's WebSocket
            watcher = asyncio.ensure_future(ex.watch_ohlcv(MARKET, "1m"))
            while not sb.venue.hub.has("filusdt@kline_1m"):  # ccxt has subscribed
                await asyncio.sleep(0.01)
            await sb.step(1)
            candles = await asyncio.wait_for(watcher, 5)
            assert candles[-1][0] >= 1_690_848_000_000 + 4 * 60_000
            orders = asyncio.ensure_future(ex.watch_orders(MARKET))
            while not any(sb.users.conns.values()):  # ccxt's user stream is attached to its listenKey
                await asyncio.sleep(0.01)
            await ex.create_order(MARKET, "limit", "buy", 10, 4.1)
            update = await asyncio.wait_for(orders, 5)
            assert update[-1]["status"] == "open" and update[-1]["price"] == 4.1
        finally:
            await ex.close()

    run(body, timeout=60)


def test_ccxt_pro_trades_and_order_books() -> None:
    """ccxt pro's watch_trades (``@trade``) and watch_order_book (``@depth@100ms`` diffs synced to a REST
    snapshot by update ids), twice, on the routes ccxt picks (``/public/ws``)."""
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        ex = point_ccxt(ccxtpro.binanceusdm({"apiKey": sb.api_key, "secret": sb.api_secret,
                                             "options": {"fetchCurrencies": False}}), sb)
        try:
            await ex.load_markets()
            trades = asyncio.ensure_future(ex.watch_trades(MARKET))
            book = asyncio.ensure_future(ex.watch_order_book(MARKET))
            await until(lambda: sb.venue.hub.has("filusdt@trade") and sb.venue.hub.has("filusdt@depth@100ms"),
                        "ccxt subscribed to trades and the book")
            await sb.step_updates(1)
            got = await asyncio.wait_for(trades, 5)
            assert got[-1]["symbol"] == MARKET and got[-1]["price"] == 4.256 and got[-1]["amount"] > 0
            while not book.done():  # ccxt takes its REST snapshot, then needs the diff that follows it
                await sb.step_updates(1)
                await asyncio.wait({book}, timeout=0.2)  # paces the steps only: the loop ends on the event
            for _ in range(2):  # and it keeps the book in step with later diffs
                nxt = asyncio.ensure_future(ex.watch_order_book(MARKET))
                await sb.step_updates(1)
                ob = await asyncio.wait_for(nxt, 5)
                top = (await c.public("/fapi/v1/ticker/bookTicker", {"symbol": SYM})).data
                assert (ob["bids"][0][0], ob["asks"][0][0]) == (float(top["bidPrice"]), float(top["askPrice"]))
                assert ob["bids"][0][0] < ob["asks"][0][0] and len(ob["bids"]) >= 100
        finally:
            await ex.close()

    run(body, timeout=60)


def test_binance_futures_connector() -> None:
    """binance-futures-connector 4.2.0 signs everything in the query string (ccxt uses the body)."""
    pytest.importorskip("binance.um_futures", reason="test dependency: pip install binance-futures-connector==4.2.0")
    from binance.error import ClientError
    from binance.um_futures import UMFutures

    async def body(sb, c: Client) -> None:
        await sb.step(3)
        um = UMFutures(key=sb.api_key, secret=sb.api_secret, base_url=sb.rest_url)

        def session() -> dict[str, Any]:
            out: dict[str, Any] = {}
            out["time"] = um.time()
            out["info"] = um.exchange_info()
            out["klines"] = um.klines(SYM, "1m", limit=2)
            out["mark"] = um.mark_price(SYM)
            out["lev"] = um.change_leverage(symbol=SYM, leverage=3)
            out["order"] = um.new_order(symbol=SYM, side="BUY", type="LIMIT", quantity=10, price="4.1",
                                        timeInForce="GTC")
            out["query"] = um.query_order(symbol=SYM, orderId=out["order"]["orderId"])
            out["open"] = um.get_orders(symbol=SYM)
            out["cancel"] = um.cancel_order(symbol=SYM, orderId=out["order"]["orderId"])
            out["account"] = um.account()
            out["balance"] = um.balance()
            out["risk"] = um.get_position_risk(symbol=SYM)
            out["algo"] = um.sign_request("POST", "/fapi/v1/algoOrder", {
                "algoType": "CONDITIONAL", "symbol": SYM, "side": "BUY", "type": "STOP_MARKET",
                "triggerPrice": "4.5", "quantity": "10"})
            out["listen"] = um.new_listen_key()
            try:
                um.new_order(symbol=SYM, side="SELL", type="STOP_MARKET", quantity=10, stopPrice="4.0")
            except ClientError as err:
                out["err"] = (err.status_code, err.error_code, err.error_message)
            return out

        out = await asyncio.to_thread(session)
        assert out["klines"][-1][0] == 1_690_848_120_000
        assert out["lev"]["leverage"] == 3 and out["order"]["status"] == "NEW"
        assert out["query"]["orderId"] == out["order"]["orderId"]
        assert [o["orderId"] for o in out["open"]] == [out["order"]["orderId"]]
        assert out["cancel"]["status"] == "CANCELED"
        assert out["account"]["availableBalance"] == "10000.00000000"
        assert out["risk"] == [] and out["algo"]["algoStatus"] == "NEW"  # v3: only symbols in use
        assert len(out["listen"]["listenKey"]) == 64
        assert out["err"][:2] == (400, -4120)

    run(body, timeout=60)


def test_python_binance() -> None:
    """python-binance (the most used community client): only its futures base URL changes."""
    pytest.importorskip("binance.client", reason="test dependency: pip install python-binance")
    from binance.client import Client as PyBinance
    from binance.exceptions import BinanceAPIException

    async def body(sb, c: Client) -> None:
        await sb.step(3)

        def session() -> dict[str, Any]:
            client = PyBinance(sb.api_key, sb.api_secret, ping=False)
            client.FUTURES_URL = sb.rest_url + "/fapi"
            out: dict[str, Any] = {}
            out["info"] = client.futures_exchange_info()
            out["klines"] = client.futures_klines(symbol=SYM, interval="1m", limit=2)
            out["lev"] = client.futures_change_leverage(symbol=SYM, leverage=4)
            out["limit"] = client.futures_create_order(symbol=SYM, side="BUY", type="LIMIT", timeInForce="GTC",
                                                       quantity=10, price=4.1)
            out["open"] = client.futures_get_open_orders(symbol=SYM)
            out["cancel"] = client.futures_cancel_order(symbol=SYM, orderId=out["limit"]["orderId"])
            out["market"] = client.futures_create_order(symbol=SYM, side="BUY", type="MARKET", quantity=10)
            out["stop"] = client.futures_create_order(symbol=SYM, side="SELL", type="STOP_MARKET", quantity=10,
                                                      stopPrice=4.0, reduceOnly="true")
            out["balance"] = client.futures_account_balance()
            out["fees"] = client.futures_commission_rate(symbol=SYM)
            try:
                client.futures_create_order(symbol=SYM, side="BUY", type="MARKET", quantity=1_000_000)
            except BinanceAPIException as err:
                out["err"] = (err.status_code, err.code)
            return out

        out = await asyncio.to_thread(session)
        assert SYM in {s["symbol"] for s in out["info"]["symbols"]}
        assert out["klines"][-1][0] == 1_690_848_120_000
        assert out["lev"]["leverage"] == 4 and out["limit"]["status"] == "NEW"
        assert [o["orderId"] for o in out["open"]] == [out["limit"]["orderId"]]
        assert out["cancel"]["status"] == "CANCELED"
        assert out["market"]["type"] == "MARKET" and out["market"]["origQty"] == "10.0"
        # python-binance routes conditional types to the algo endpoint, as Binance requires now
        assert out["stop"]["algoType"] == "CONDITIONAL" and out["stop"]["algoStatus"] == "NEW"
        assert out["balance"][0]["asset"] == "USDT"
        assert out["fees"]["takerCommissionRate"] == "0.0005"
        assert out["err"] == (400, -2019)

    run(body, timeout=60)


def test_binance_official_derivatives_sdk() -> None:
    """Binance's own binance-sdk-derivatives-trading-usds-futures: only base_path changes."""
    sdk = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures",
                              reason="test dependency: pip install binance-sdk-derivatives-trading-usds-futures")
    from binance_common.configuration import ConfigurationRestAPI
    from binance_common.errors import BadRequestError
    from binance_sdk_derivatives_trading_usds_futures.rest_api.models import (
        NewOrderSideEnum,
        NewOrderTimeInForceEnum,
        NewOrderTypeEnum,
    )

    async def body(sb, c: Client) -> None:
        await sb.step(3)

        def session() -> dict[str, Any]:
            cfg = ConfigurationRestAPI(api_key=sb.api_key, api_secret=sb.api_secret, base_path=sb.rest_url)
            api = sdk.DerivativesTradingUsdsFutures(config_rest_api=cfg).rest_api
            out: dict[str, Any] = {}
            out["info"] = api.exchange_information().data()
            out["lev"] = api.change_initial_leverage(SYM, 3).data()
            # the SDK sends quantity as str(float): "6.0" for a step of 1
            out["limit"] = api.new_order(SYM, NewOrderSideEnum.BUY, NewOrderTypeEnum.LIMIT, quantity=6,
                                         price=4.1, time_in_force=NewOrderTimeInForceEnum.GTC).data()
            out["open"] = api.current_all_open_orders(symbol=SYM).data()
            out["cancel_all"] = api.cancel_all_open_orders(SYM).data()
            out["market"] = api.new_order(SYM, NewOrderSideEnum.BUY, NewOrderTypeEnum.MARKET, quantity=10).data()
            out["algo"] = api.new_algo_order("CONDITIONAL", SYM, "SELL", "STOP_MARKET", quantity=10,
                                             trigger_price=4.0).data()
            out["algos"] = api.current_all_algo_open_orders(symbol=SYM).data()
            out["account"] = api.account_information_v3().data()
            out["listen"] = api.start_user_data_stream().data()
            try:
                api.new_order(SYM, NewOrderSideEnum.BUY, NewOrderTypeEnum.LIMIT, quantity=1, price=4.1,
                              time_in_force=NewOrderTimeInForceEnum.GTC)
            except BadRequestError as err:
                out["err"] = str(err)
            return out

        out = await asyncio.to_thread(session)
        assert SYM in {s.symbol for s in out["info"].symbols}
        assert out["lev"].leverage == 3
        assert out["limit"].status == "NEW" and out["limit"].orig_qty == "6.0"
        assert [o.order_id for o in out["open"]] == [out["limit"].order_id]
        assert out["cancel_all"].code == 200
        assert out["market"].type == "MARKET" and out["market"].status == "NEW"  # the SDK's default: ACK
        assert out["algo"].algo_status == "NEW" and [a.algo_id for a in out["algos"]] == [out["algo"].algo_id]
        assert out["account"].total_wallet_balance == "9999.97871500"  # the market buy filled at once: fee paid
        assert len(out["listen"].listen_key) == 64
        assert "-4164" in out["err"]  # notional below the minimum

    run(body, timeout=60)
