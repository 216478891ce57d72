"""``GET /api/klines`` over real loopback HTTP against a stepped sandbox run: the feed's klines (warm-up and
live, the one in progress), the run's fills as entry and exit markers, and bad parameters refused with the
field named."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from kinetic_empire.binance.market import KEPT
from kinetic_empire.live.report import build_report
from tests.support.api import served
from tests.support.live import K, step

pytestmark = pytest.mark.integration
MINUTE = 60_000


def test_klines_history_in_progress_and_fills(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "klines"
    seen: list[int] = []
    entry: list[int] = []

    async def body() -> None:
        async with served(run_dir, warm_klines=2) as (sb, engine, gw, client):
            # default: the strategy's timeframe, warm-up history included, oldest first
            r = await client.get("/api/klines", params={"symbol": "FILUSDT"})
            assert r.status_code == 200, r.text
            hourly = r.json()
            assert hourly["symbol"] == "FILUSDT" and hourly["timeframe"] == "1h"
            assert hourly["timeframes"] == ["1m", "1h"]
            opens = [k["open_time"] for k in hourly["klines"]]
            assert len(opens) >= 3 and opens == sorted(set(opens))
            assert all(b - a == 60 * MINUTE for a, b in pairwise(opens))

            # 1m: the newest closed kline is the one the engine last saw; limit keeps the newest
            r = await client.get("/api/klines", params={"symbol": "FILUSDT", "timeframe": "1m", "limit": 5})
            minute = r.json()
            assert [k["open_time"] for k in minute["klines"]] == \
                [gw.view.last_kline["FILUSDT"].open_time - MINUTE * i for i in range(4, -1, -1)]
            last = minute["klines"][-1]
            assert last == (await client.get("/api/market", params={"symbol": "FILUSDT"})).json()["last_kline"]
            assert {"open", "high", "low", "close", "volume", "ts_event"} <= set(last)
            assert minute["in_progress"] is None  # the last message closed its kline

            # the opening update of the next kline: in progress, not closed
            await sb.step_updates(1)
            await engine.settle(0.01)
            forming = (await client.get("/api/klines", params={"symbol": "FILUSDT", "timeframe": "1m",
                                                                "limit": 5})).json()
            assert forming["klines"] == minute["klines"]
            assert forming["in_progress"]["open_time"] == last["open_time"] + MINUTE
            await sb.step_updates(K - 1)
            await sb.step_updates(1)
            await engine.settle(0.01)
            closed = (await client.get("/api/klines", params={"symbol": "FILUSDT", "timeframe": "1m",
                                                               "limit": 5})).json()
            assert closed["in_progress"] is None
            assert closed["klines"][-1]["open_time"] == forming["in_progress"]["open_time"]

            # a manual entry and a reduce-only exit: two markers, entry then exit, in the klines' time range
            price = Decimal(repr(engine.portfolio.last_price("FILUSDT")))
            r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "BUY", "quantity": "10",
                                                      "stop_price": str(price * Decimal("0.9")),
                                                      "take_profit_price": str(price * Decimal("1.1")),
                                                      "client_order_id": "chart-buy"})
            assert r.status_code == 200, r.text
            await step(sb, engine, 1)
            r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "SELL", "quantity": "4",
                                                      "reduce_only": True})
            assert r.status_code == 200, r.text
            await step(sb, engine, 1)
            answer = (await client.get("/api/klines", params={"symbol": "FILUSDT", "timeframe": "1m"})).json()
            fills = answer["fills"]
            assert [(f["side"], f["exit"]) for f in fills] == [("BUY", False), ("SELL", True)], fills
            assert fills[0]["client_order_id"] == "chart-buy-e" and Decimal(fills[0]["quantity"]) == 10
            first = answer["klines"][0]["open_time"]
            assert all(first <= f["ts_event"] for f in fills)
            entry.append(fills[0]["ts_event"])
            seen.extend(k["open_time"] for k in answer["klines"] if k["open_time"] >= fills[0]["ts_event"] - MINUTE)
            # a chart with the fills of the other symbol only: none here
            assert (await client.get("/api/klines", params={"symbol": "NEARUSDT"})).json()["fills"] == []

            # bad parameters: 4xx JSON naming the field, never a 5xx
            cases: list[tuple[dict[str, str | int], int, str]] = [
                ({"symbol": "BTCUSDT"}, 404, "symbol"),
                ({"symbol": "filusdt"}, 422, "symbol"),
                ({}, 422, "symbol"),
                ({"symbol": "FILUSDT", "timeframe": "3m"}, 404, "timeframe"),
                ({"symbol": "FILUSDT", "timeframe": "1 m"}, 422, "timeframe"),
                ({"symbol": "FILUSDT", "limit": 0}, 422, "limit"),
                ({"symbol": "FILUSDT", "limit": KEPT + 1}, 422, "limit"),
                ({"symbol": "FILUSDT", "limit": "ten"}, 422, "limit"),
            ]
            for params, status, field in cases:
                r = await client.get("/api/klines", params=params)
                assert r.status_code == status, (params, r.status_code, r.text)
                assert r.json()["field"] == field and r.json()["error"], (params, r.text)
            r = await client.get("/api/klines", params={"symbol": "FILUSDT", "timeframe": "3m"})
            assert "1m, 1h" in r.json()["error"]

    asyncio.run(body())

    # the run's report: a candle chart per traded symbol (the 1m klines the run received) with the trade marked
    html = (build_report(run_dir) / "report.html").read_text()
    assert "<h2>FILUSDT 1m · ema_cross</h2>" in html and "<h2>NEARUSDT 1m · rsi_reversion</h2>" in html
    figures = {m[1]: json.loads(m[2].replace("<\\/", "</")) for m in
               re.finditer(r'<script type="application/json" id="(price\d+)-data">(.*?)</script>', html)}
    fil = next(f for f in figures.values() if f["data"][0]["name"] == "FILUSDT")
    traces = {t.get("name"): t for t in fil["data"]}
    assert traces["FILUSDT"]["type"] == "candlestick" and set(seen) <= set(traces["FILUSDT"]["x"])
    assert traces["long entry"]["x"] == entry and len(traces["exit"]["x"]) == 1  # one trade, still open
