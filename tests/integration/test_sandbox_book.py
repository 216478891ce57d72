"""The sandbox's book and market fills, over real loopback sockets.

Binance fills a MARKET order when it arrives, against the book of that moment (a buy at the ask, a sell
at the bid, walking down the levels when one is not enough), and ``newOrderRespType=RESULT`` answers the
final state. The sandbox derives that book from the klines (``sandbox/orderbook.py``) and serves the same
book on REST depth, bookTicker and the book streams. ``market_fills="next_update"`` is the opt-in mode
in which a market order waits for the next price update, as in a backtest.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from kinetic_empire.sandbox import SandboxConfig, SandboxServer
from kinetic_empire.sandbox.orderbook import BookConfig
from tests.support.sandbox import DATA, SYM, Client, recv_json, run

pytestmark = pytest.mark.integration

LAST = Decimal("4.256")  # FILUSDT's close after three klines
TICK = Decimal("0.001")


async def _book(c: Client, limit: int = 5) -> tuple[list[list[str]], list[list[str]]]:
    d = (await c.public("/fapi/v1/depth", {"symbol": SYM, "limit": limit})).data
    return d["bids"], d["asks"]


def test_market_order_fills_on_arrival_at_the_ask_and_result_answers_filled() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        bids, asks = await _book(c)
        assert (Decimal(bids[0][0]), Decimal(asks[0][0])) == (LAST, LAST + TICK)
        updates = sb.venue.updates_played
        r = await c.order(side="BUY", type="MARKET", quantity="10", newOrderRespType="RESULT")
        assert r.status == 200, r
        assert (r.data["status"], r.data["executedQty"], r.data["avgPrice"], r.data["cumQuote"]) == (
            "FILLED", "10.0", "4.257", "42.5700")
        assert sb.venue.updates_played == updates  # no price update was needed
        pos = (await c.get("/fapi/v3/positionRisk", {"symbol": SYM})).data
        assert (pos[0]["positionAmt"], pos[0]["entryPrice"]) == ("10.0", "4.257")
        # the default answer (ACK) is the order as accepted, although it has filled already, as on Binance
        ack = await c.order(side="SELL", type="MARKET", quantity="4")
        assert (ack.data["status"], ack.data["executedQty"]) == ("NEW", "0.0")
        got = (await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": ack.data["orderId"]})).data
        assert (got["status"], got["avgPrice"]) == ("FILLED", "4.256")  # a sell takes the bid
        trades = (await c.get("/fapi/v1/userTrades", {"symbol": SYM})).data
        assert [(t["side"], t["price"], t["maker"]) for t in trades] == [("BUY", "4.257", False),
                                                                        ("SELL", "4.256", False)]

    run(body)


def test_next_update_mode_is_opt_in() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        r = await c.order(side="BUY", type="MARKET", quantity="10", newOrderRespType="RESULT")
        assert (r.data["status"], r.data["executedQty"]) == ("NEW", "0.0")
        assert [p["positionAmt"] for p in (await c.get("/fapi/v3/positionRisk", {"symbol": SYM})).data] == ["0.0"]
        await sb.step_updates(1)  # the next kline's open
        got = (await c.get("/fapi/v1/order", {"symbol": SYM, "orderId": r.data["orderId"]})).data
        assert (got["status"], got["avgPrice"]) == ("FILLED", "4.256")

    run(body, market_fills="next_update")
    with pytest.raises(ValueError, match="market_fills must be 'arrival' or 'next_update', not 'later'"):
        SandboxServer(SandboxConfig(data=[DATA], market_fills="later"))


def test_a_large_order_walks_the_book() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        _bids, asks = await _book(c, 10)
        level = Decimal(asks[0][1])
        assert all(Decimal(q) == level for _, q in asks) and [Decimal(p) for p, _ in asks] == [
            LAST + TICK * i for i in range(1, 11)]
        qty = level * 2 + Decimal("1.0")  # two whole levels and part of a third
        r = await c.order(side="BUY", type="MARKET", quantity=str(qty), newOrderRespType="RESULT")
        assert r.data["status"] == "FILLED", r
        trades = (await c.get("/fapi/v1/userTrades", {"symbol": SYM})).data
        assert [(Decimal(t["price"]), Decimal(t["qty"])) for t in trades] == [
            (LAST + TICK, level), (LAST + 2 * TICK, level), (LAST + 3 * TICK, Decimal("1.0"))]
        avg = (level * (2 * LAST + 3 * TICK) + (LAST + 3 * TICK)) / qty
        assert abs(Decimal(r.data["avgPrice"]) - avg) < Decimal("1e-6")
        assert LAST + TICK < Decimal(r.data["avgPrice"]) < LAST + 3 * TICK

    # a thin book: each level holds 0.02% of the kline's volume (13441.4 -> 2.6 FIL)
    run(body, book=BookConfig(level_volume_share=0.0002))


def test_spread_from_ticks_and_from_the_kline_range() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        b = (await c.public("/fapi/v1/ticker/bookTicker", {"symbol": SYM})).data
        assert (Decimal(b["bidPrice"]), Decimal(b["askPrice"])) == (LAST - 2 * TICK, LAST + 2 * TICK)
        bids, asks = await _book(c)
        assert (bids[0], asks[0]) == ([b["bidPrice"], b["bidQty"]], [b["askPrice"], b["askQty"]])
        r = await c.order(side="SELL", type="MARKET", quantity="10", newOrderRespType="RESULT")
        assert r.data["avgPrice"] == "4.254"

    run(body, book=BookConfig(spread_ticks=4))

    async def wide(sb, c: Client) -> None:
        await sb.step(3)  # the third kline ranged 4.252..4.256: four ticks, half of it is two
        b = (await c.public("/fapi/v1/ticker/bookTicker", {"symbol": SYM})).data
        assert (Decimal(b["bidPrice"]), Decimal(b["askPrice"])) == (LAST - TICK, LAST + TICK)

    run(wide, book=BookConfig(range_spread_share=0.5))
    with pytest.raises(ValueError, match=r"book\.spread_ticks must be at least 1, not 0"):
        BookConfig(spread_ticks=0)


def test_book_streams_depth_snapshots_diffs_and_trades() -> None:
    async def body(sb, c: Client) -> None:
        await sb.step(3)
        await sb.step_updates(1)  # the fourth kline's open, with no stream subscribed
        before_b, before_a = await _book(c, 1000)
        url = f"{sb.ws_url}/public/stream?streams=filusdt@depth5/filusdt@depth@100ms/filusdt@trade"
        async with c.session.ws_connect(url) as ws:
            await sb.step_updates(1)  # down to the kline's low: the book moves two ticks
            got = {}
            for _ in range(3):
                msg = await recv_json(ws)
                got[msg["stream"]] = msg["data"]
            snap, diff, trade = got["filusdt@depth5"], got["filusdt@depth@100ms"], got["filusdt@trade"]
            bids, asks = await _book(c)
            snapshot_b, snapshot_a = await _book(c, 1000)
            assert (snap["e"], snap["b"], snap["a"]) == ("depthUpdate", bids, asks)
            assert snap["u"] == snap["U"] == snap["pu"] + 1
            assert diff["pu"] == diff["u"] - 1  # a diff against the previous update's book, even the first one
            assert _apply(before_b, diff["b"], True) == snapshot_b and _apply(before_a, diff["a"], False) == snapshot_a
            assert (trade["e"], trade["s"], trade["X"]) == ("trade", SYM, "MARKET")
            assert Decimal(trade["p"]) == Decimal(bids[0][0])
            # the next price update: a diff holds only the changed levels, chained by pu
            await sb.step_updates(1)
            nxt = {}
            for _ in range(3):
                msg = await recv_json(ws)
                nxt[msg["stream"]] = msg["data"]
            d2 = nxt["filusdt@depth@100ms"]
            assert d2["pu"] == diff["u"] and d2["U"] == diff["u"] + 1
            new_bids, new_asks = await _book(c, 1000)
            assert _apply(snapshot_b, d2["b"], True) == new_bids and _apply(snapshot_a, d2["a"], False) == new_asks

    run(body)


def _apply(levels: list[list[str]], changes: list[list[str]], bids: bool) -> list[list[str]]:
    """A client's book side after a depth diff: quantity "0" removes a level, any other sets it."""
    side = {p: q for p, q in levels}
    for p, q in changes:
        if q == "0":
            side.pop(p, None)
        else:
            side[p] = q
    return [[p, q] for p, q in sorted(side.items(), key=lambda x: -Decimal(x[0]) if bids else Decimal(x[0]))]
