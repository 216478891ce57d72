"""The operator API over real loopback HTTP against a live engine on the local sandbox: every endpoint,
auth, manual orders and cancels reaching the venue and the journal, controls changing the risk state,
refused requests leaving no trace, and the SSE stream in order and resumable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from kinetic_empire.api.auth import COOKIE
from kinetic_empire.core.enums import TradingState
from kinetic_empire.core.events import CancelRequest, OperatorCommand, OrderIntent, OrderRequest
from kinetic_empire.live.report import build_report
from tests.support.api import TOKEN, journal, served, sse_messages
from tests.support.live import sandbox_position, step
from tests.support.waiting import until

pytestmark = pytest.mark.integration
PUBLIC = {"/", "/runs", "/static/vendor/plotly.min.js", "/static/{path:path}", "/login", "/api/health"}


def test_auth_pages_and_cookie_login(tmp_path: Path) -> None:
    async def body() -> None:
        async with served(tmp_path / "runs" / "auth") as (_sb, engine, gw, _client), \
                httpx.AsyncClient(base_url=gw.url) as anon:
            health = (await anon.get("/api/health")).json()
            assert health["ok"] is True and health["run_id"] == "auth" and health["uptime_s"] >= 0
            # every route the app has, but the few public ones, refuses a request without the token
            checked = 0
            for route in gw.app.routes:
                if not isinstance(route, APIRoute) or route.path in PUBLIC:
                    continue
                path = route.path.format(kind="runs", run_id="auth", name="report.html")
                for method in route.methods:
                    r = await anon.request(method, path, json={"command": "halt"}, params={"symbol": "FILUSDT"})
                    assert r.status_code == 401, (method, path, r.status_code)
                    assert r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
                    checked += 1
            assert checked >= 19
            r = await anon.get("/api/account", headers={"Authorization": "Bearer wrong-token"})
            assert r.status_code == 401 and "invalid" in r.json()["error"]
            r = await anon.get("/api/account", headers={"Authorization": f"Basic {TOKEN}"})
            assert r.status_code == 401
            r = await anon.post("/api/control", json={"command": "halt"})
            assert r.status_code == 401 and engine.risk.state is TradingState.ACTIVE
            # pages carry no data and need no token; plotly comes from the installed package
            assert (await anon.get("/")).status_code == 200
            assert (await anon.get("/runs")).status_code == 200
            js = await anon.get("/static/vendor/plotly.min.js")
            assert js.status_code == 200 and len(js.content) > 1_000_000
            assert (await anon.get("/static/../auth.py")).status_code == 404
            assert (await anon.get("/static/%2e%2e/auth.py")).status_code == 404
            # the browser's way in: /login sets an HttpOnly, SameSite=Strict cookie
            r = await anon.get("/login", params={"token": "nope"})
            assert r.status_code == 401 and COOKIE not in r.cookies
            r = await anon.get("/login", params={"token": TOKEN})
            assert r.status_code == 303 and r.headers["location"] == "/"
            cookie = r.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert (await anon.get("/api/account")).status_code == 200  # the cookie jar now has it
            # a cookie-authenticated POST needs the CSRF header; a wrong cookie is refused
            r = await anon.post("/api/control", json={"command": "pause"})
            assert r.status_code == 403 and "X-Kinetic-Request" in r.json()["error"]
            assert engine.risk.state is TradingState.ACTIVE
            r = await anon.post("/api/control", json={"command": "pause"}, headers={"X-Kinetic-Request": "1"})
            assert r.status_code == 200 and r.json()["risk"]["state"] == "REDUCING"
            anon.cookies.set(COOKIE, "forged")
            assert (await anon.get("/api/account")).status_code == 401

    asyncio.run(body())


def test_read_endpoints(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "reads"

    async def body() -> None:
        async with served(run_dir, warm_klines=30) as (sb, engine, _gw, client):
            cfg = (await client.get("/api/config")).json()
            assert cfg["run_id"] == "reads" and cfg["symbols"] == ["FILUSDT", "NEARUSDT"]
            assert [s["name"] for s in cfg["strategies"]] == ["ema_cross", "rsi_reversion"]
            assert cfg["strategies"][0]["params"] == {"fast": 5, "slow": 13}
            text = (await client.get("/api/config")).text
            assert sb.api_key not in text and sb.api_secret not in text and TOKEN not in text

            m = (await client.get("/api/market", params={"symbol": "FILUSDT"})).json()
            k = m["last_kline"]
            assert k["symbol"] == "FILUSDT" and m["last_price"] == k["close"] == engine.portfolio.last_price("FILUSDT")
            assert m["mark_price"] > 0 and m["feed_lag_ms"] >= 0
            r = await client.get("/api/market", params={"symbol": "BTCUSDT"})
            assert r.status_code == 404 and r.json()["field"] == "symbol"
            r = await client.get("/api/market", params={"symbol": "fil usdt"})
            assert r.status_code == 422 and r.json()["field"] == "symbol"
            assert (await client.get("/api/market")).json()["field"] == "symbol"

            acct = (await client.get("/api/account")).json()
            assert Decimal(acct["wallet_balance"]) == engine.portfolio.wallet_balance()
            assert Decimal(acct["equity"]) == engine.portfolio.equity()
            assert acct["balances"][0]["asset"] == "USDT"
            pos = (await client.get("/api/positions")).json()["positions"]
            assert {p["symbol"]: Decimal(p["quantity"]) for p in pos} == {
                p.symbol: p.quantity for p in engine.portfolio.positions() if p.quantity}
            orders = (await client.get("/api/orders")).json()["orders"]
            assert {o["client_order_id"] for o in orders} == {
                o.client_id for o in engine.translator.open_orders() if o.accepted}
            assert all(o["state"] in ("ACCEPTED", "PARTIALLY_FILLED") for o in orders)
            everything = (await client.get("/api/orders", params={"all": "true"})).json()["orders"]
            assert len(everything) >= len(orders)
            for o in everything:
                st = (await client.get("/api/order_state", params={"client_order_id": o["client_order_id"]})).json()
                assert st["state"] == o["state"]
            r = await client.get("/api/order_state", params={"client_order_id": "nope"})
            assert r.status_code == 404 and r.json()["field"] == "client_order_id"
            trades = (await client.get("/api/trades")).json()["trades"]
            assert len(trades) == len(engine.portfolio.trades)
            eq = (await client.get("/api/equity")).json()
            assert len(eq["points"]) >= 30 and Decimal(eq["initial_balance"]) == engine.initial_balance
            assert [p[0] for p in eq["points"]] == sorted(p[0] for p in eq["points"])
            ping = (await client.get("/api/execution/ping")).json()
            assert ping["ok"] and ping["round_trip_ms"] > 0
            status = (await client.get("/api/status")).json()
            assert status["risk"]["state"] == "ACTIVE" and status["health"]["market_stream"]["connected"]
            metrics = (await client.get("/metrics")).text
            for name in ("kinetic_api_request_duration_seconds_bucket", "kinetic_rest_request_duration_seconds",
                         "kinetic_request_weight_used", "kinetic_request_weight_limit", "kinetic_ws_reconnects_total",
                         "kinetic_feed_lag_seconds", "kinetic_journal_commit_seconds_count",
                         "kinetic_kline_to_order_seconds", "kinetic_fill_rate", "kinetic_reject_rate",
                         "kinetic_slippage_bps", "kinetic_orders_placed_total", 'kinetic_api_errors_total{code="404"}'):
                assert name in metrics, name
            doc = (await client.get("/openapi.json")).json()
            assert {"/api/order", "/api/cancel", "/api/control", "/api/stream", "/api/market"} <= set(doc["paths"])

            # reports: a finished run folder is listed and served, nothing else is
            report = run_dir.parent / "old" / "report"
            report.mkdir(parents=True)
            (report / "report.html").write_text("<html>old run</html>")
            (report / "metrics.json").write_text('{"total_return_pct": 1.5}')
            (run_dir.parent / "old" / "api_token").write_text("secret")
            runs = (await client.get("/api/runs")).json()
            old = next(r for r in runs["runs"] if r["id"] == "old")
            assert old["files"]["report.html"] == "/reports/runs/old/report.html"
            assert old["metrics"] == {"total_return_pct": 1.5}
            assert (await client.get(old["files"]["report.html"])).text == "<html>old run</html>"
            for bad in ("/reports/runs/old/api_token", "/reports/runs/..%2Fold/report.html",
                        "/reports/etc/old/report.html", "/reports/runs/.old/report.html"):
                r = await client.get(bad)
                assert r.status_code == 404 and r.json()["error"], bad

    asyncio.run(body())


def test_manual_order_and_cancel_reach_venue_and_journal(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "manual"

    async def body() -> None:
        async with served(run_dir, warm_klines=3) as (sb, engine, _gw, client):
            price = Decimal(repr(engine.portfolio.last_price("FILUSDT")))
            before = sandbox_position(sb, "FILUSDT")
            r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "BUY", "quantity": "12.3",
                                                      "stop_price": str(price * Decimal("0.9")),
                                                      "client_order_id": "op-buy-1"})
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["client_order_id"] == "op-buy-1-e" and answer["order_id"] > 0
            assert answer["state"] in ("ACCEPTED", "FILLED") and answer["denial"] is None
            await step(sb, engine, 1)
            assert sandbox_position(sb, "FILUSDT") == before + Decimal("12.3")
            st = (await client.get("/api/order_state", params={"client_order_id": "op-buy-1-e"})).json()
            assert st["state"] == "FILLED" and Decimal(st["order"]["filled_qty"]) == Decimal("12.3")
            pos = next(p for p in (await client.get("/api/positions")).json()["positions"] if p["symbol"] == "FILUSDT")
            assert pos["stop_price"] is not None  # the risk manager placed its stop, as for a strategy's entry
            events = journal(run_dir, engine)
            intents = [e for e in events if isinstance(e, OrderIntent) and e.intent_id == "op-buy-1"]
            assert len(intents) == 1, "the manual intent must be journaled, once"
            intent = intents[0]
            assert intent.strategy_id == "manual" and intent.quantity == Decimal("12.3")
            request = next(e for e in events if isinstance(e, OrderRequest) and e.client_order_id == "op-buy-1-e")
            assert events.index(intent) < events.index(request)
            # the same id twice: refused, nothing journaled
            r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "BUY", "quantity": "1",
                                                      "client_order_id": "op-buy-1"})
            assert r.status_code == 409 and r.json()["field"] == "client_order_id"

            # a resting limit order far below the market, then its cancel by client id
            low = (price * Decimal("0.8")).quantize(Decimal("0.001"))
            r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "BUY", "quantity": "5",
                                                      "price": str(low), "client_order_id": "op-limit"})
            assert r.status_code == 200 and r.json()["state"] == "ACCEPTED", r.text
            venue_open = {o.client_order_id for o in sb.account().open_orders("FILUSDT")}
            assert "op-limit-e" in venue_open
            r = await client.post("/api/cancel", json={"client_order_id": "op-limit-e"})
            assert r.status_code == 200 and r.json()["state"] == "CANCELLED", r.text
            assert "op-limit-e" not in {o.client_order_id for o in sb.account().open_orders("FILUSDT")}
            cancel = [e for e in journal(run_dir, engine) if isinstance(e, CancelRequest)]
            assert [(c.client_order_id, c.strategy_id) for c in cancel] == [("op-limit-e", "operator")]
            r = await client.post("/api/cancel", json={"client_order_id": "op-limit-e"})
            assert r.status_code == 409 and r.json()["state"] == "CANCELLED"
            r = await client.post("/api/cancel", json={"client_order_id": "never-placed"})
            assert r.status_code == 404

            # reduce-only: closes part of the position through the risk manager
            r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "SELL", "quantity": "2.3",
                                                      "reduce_only": True})
            assert r.status_code == 200 and r.json()["state"] in ("ACCEPTED", "FILLED"), r.text
            await step(sb, engine, 1)
            assert sandbox_position(sb, "FILUSDT") == before + Decimal("10")
            r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "BUY", "quantity": "1",
                                                      "reduce_only": True})
            assert r.status_code == 422 and r.json()["field"] == "side"
            text = (await client.get("/metrics")).text
            assert "kinetic_slippage_bps_count 2.0" in text, [x for x in text.splitlines() if "slippage_bps_count" in x]

    asyncio.run(body())
    # the run's report has the execution-quality section, with the manual orders in it
    report = build_report(run_dir)
    assert 'id="execution-quality"' in (report / "report.html").read_text()
    rows = (report / "execution_quality.csv").read_text().splitlines()
    assert any(r.startswith("op-buy-1-e,manual,FILUSDT,BUY,MARKET,") for r in rows), rows
    assert json.loads((report / "execution_quality.json").read_text())["filled_orders"] >= 2


def test_controls_change_the_risk_state_through_the_journal(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "controls"

    async def body() -> None:
        async with served(run_dir, warm_klines=3) as (sb, engine, _gw, client):
            r = await client.post("/api/control", json={"command": "pause", "cause": "news at 14:00"})
            assert r.status_code == 200 and r.json()["risk"]["state"] == "REDUCING"
            assert engine.risk.state is TradingState.REDUCING
            # an entry is now denied by the risk manager: journaled with its denial, answered 200 DENIED
            r = await client.post("/api/order", json={"symbol": "NEARUSDT", "side": "SELL", "quantity": "100"})
            assert r.status_code == 200 and r.json()["state"] == "DENIED"
            assert r.json()["denial"]["code"] in ("TRADING_REDUCING", "ENTRIES_PAUSED")
            r = await client.post("/api/control", json={"command": "resume"})
            assert r.json()["risk"]["state"] == "ACTIVE" and engine.risk.state is TradingState.ACTIVE
            r = await client.post("/api/control", json={"command": "halt", "symbol": "NEARUSDT"})
            assert r.json()["risk"]["symbols"]["NEARUSDT"] == "HALTED" and r.json()["risk"]["state"] == "ACTIVE"
            assert engine.risk.state_of("NEARUSDT") is TradingState.HALTED
            await client.post("/api/control", json={"command": "resume", "symbol": "NEARUSDT"})
            assert engine.risk.state_of("NEARUSDT") is TradingState.ACTIVE

            # flatten one symbol: the position opened by hand is closed on the venue
            r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "SELL", "quantity": "7"})
            assert r.status_code == 200 and r.json()["state"] != "DENIED", r.text
            await step(sb, engine, 1)
            assert sandbox_position(sb, "FILUSDT") != 0
            r = await client.post("/api/control", json={"command": "flatten", "symbol": "FILUSDT"})
            assert r.status_code == 200 and r.json()["risk"]["symbols"]["FILUSDT"] == "REDUCING"
            await step(sb, engine, 1)
            assert sandbox_position(sb, "FILUSDT") == 0
            assert not [o for o in sb.account().open_orders("FILUSDT")]
            r = await client.post("/api/control", json={"command": "cancel_all"})
            assert r.status_code == 200

            commands = [e for e in journal(run_dir, engine) if isinstance(e, OperatorCommand)]
            assert [(c.action, c.symbols, c.source) for c in commands] == [
                ("pause", (), "operator"), ("resume", (), "operator"), ("halt", ("NEARUSDT",), "operator"),
                ("resume", ("NEARUSDT",), "operator"), ("flatten", ("FILUSDT",), "operator"),
                ("cancel_all", (), "operator")]
            assert commands[0].cause == "news at 14:00"

    asyncio.run(body())


BAD_REQUESTS: list[tuple[str, Any, int, str | None]] = [
    ("/api/order", b"{not json", 400, "body"),
    ("/api/order", b"[1, 2]", 422, "body"),
    ("/api/order", {"symbol": "DOGEUSDT", "side": "BUY", "quantity": "1"}, 422, "symbol"),
    ("/api/order", {"symbol": "FILUSDT", "side": "BUY", "quantity": "-1"}, 422, "quantity"),
    ("/api/order", {"symbol": "FILUSDT", "side": "BUY", "quantity": "0"}, 422, "quantity"),
    ("/api/order", {"symbol": "FILUSDT", "side": "BUY", "quantity": "ten"}, 422, "quantity"),
    ("/api/order", {"symbol": "FILUSDT", "side": "BUY", "quantity": "NaN"}, 422, "quantity"),
    ("/api/order", {"symbol": "FILUSDT", "side": "BUY", "quantity": "Infinity"}, 422, "quantity"),
    ("/api/order", {"symbol": "NEARUSDT", "side": "BUY", "quantity": 5.8e307, "take_profit_price": 8.2e307}, 422,
     "quantity"),  # found by the fuzzer: such an intent made the risk manager raise instead of deny
    ("/api/order", {"symbol": "FILUSDT", "side": "HOLD", "quantity": "1"}, 422, "side"),
    ("/api/order", {"symbol": "FILUSDT", "side": "BUY"}, 422, "quantity"),
    ("/api/order", {"symbol": "FILUSDT", "side": "BUY", "quantity": "1", "price": "-3"}, 422, "price"),
    ("/api/order", {"symbol": "FILUSDT", "side": "BUY", "quantity": "1", "leverage": 100}, 422, "leverage"),
    ("/api/order", {"symbol": "FILUSDT", "side": "BUY", "quantity": "1", "client_order_id": "bad id!"}, 422,
     "client_order_id"),
    ("/api/order", b'{"symbol": "FILUSDT", "side": "BUY", "quantity": "1", "pad": "' + b"x" * 70_000 + b'"}', 413,
     "body"),
    ("/api/control", {"command": "self_destruct"}, 422, "command"),
    ("/api/control", {"command": "flatten", "symbol": "DOGEUSDT"}, 422, "symbol"),
    ("/api/control", {}, 422, "command"),
    ("/api/cancel", {"client_order_id": "../../etc"}, 404, "client_order_id"),  # Binance's id alphabet has . and /
    ("/api/cancel", {"client_order_id": "x" * 37}, 422, "client_order_id"),
    ("/api/cancel", {"client_order_id": 12}, 422, "client_order_id"),
]


def test_bad_input_is_refused_with_the_field_and_leaves_no_trace(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "bad"

    async def body() -> None:
        async with served(run_dir, warm_klines=3) as (sb, engine, _gw, client):
            journaled = len(journal(run_dir, engine))
            venue_orders = sb.account().exchange.all_orders("FILUSDT")
            klines = engine.feed.published
            for path, payload, status, field in BAD_REQUESTS:
                if isinstance(payload, bytes):
                    r = await client.post(path, content=payload, headers={"Content-Type": "application/json"})
                else:
                    r = await client.post(path, json=payload)
                assert r.status_code == status, (path, payload if not isinstance(payload, bytes) else payload[:40],
                                                 r.text[:200])
                assert r.headers["content-type"].startswith("application/json")
                assert r.json()["field"] == field and r.json()["error"], r.text[:200]
            assert len(journal(run_dir, engine)) == journaled  # nothing refused was journaled
            assert sb.account().exchange.all_orders("FILUSDT") == venue_orders  # nor reached the venue
            assert engine.risk.state is TradingState.ACTIVE
            await step(sb, engine, 2)  # and the engine keeps trading
            assert engine.feed.published > klines

    asyncio.run(body())


def test_stream_in_order_snapshot_first_and_resumable(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "sse"

    async def read(client: httpx.AsyncClient, got: list[str], headers: dict[str, str] | None = None) -> None:
        async with client.stream("GET", "/api/stream", headers=headers) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            async for chunk in r.aiter_text():
                got.append(chunk)

    async def body() -> None:
        async with served(run_dir, warm_klines=2, health_every_s=0.2) as (sb, engine, _gw, client):
            chunks: list[str] = []
            reader = asyncio.ensure_future(read(client, chunks))
            await until(lambda: "event: snapshot" in "".join(chunks), "the snapshot")
            r = await client.post("/api/order", json={"symbol": "FILUSDT", "side": "BUY", "quantity": "5"})
            cid = r.json()["client_order_id"]
            await step(sb, engine, 3)
            await until(lambda: f'"{cid}"' in "".join(chunks) and "event: fill" in "".join(chunks), "the fill")
            await until(lambda: "event: health" in "".join(chunks), "a health message")
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            first = sse_messages("".join(chunks))
            assert first[0]["event"] == "snapshot"
            snap = first[0]["data"]["data"]
            assert set(snap) == {"account", "positions", "orders", "risk", "health"}
            ids = [m["id"] for m in first[1:]]
            assert ids == list(range(first[0]["id"] + 1, first[0]["id"] + 1 + len(ids)))  # in order, no gap
            kinds = {m["event"] for m in first}
            assert {"kline", "market", "order_update", "fill", "account", "position", "health"} <= kinds, kinds
            for m in first[1:]:
                assert m["data"]["type"] == m["event"] and isinstance(m["data"]["ts_event"], int)
            ours = [m["data"]["data"]["state"] for m in first
                    if m["event"] == "order_update" and m["data"]["data"]["client_order_id"] == cid]
            assert ours[0] == "PENDING" and ours[-1] == "FILLED"
            fill = next(m for m in first if m["event"] == "fill")["data"]
            assert fill["ts_event"] == fill["data"]["ts_event"]  # the bus event's time

            # disconnected while the run went on: resume from the last id seen, nothing missed or repeated
            last = first[-1]["id"]
            await step(sb, engine, 2)
            await client.post("/api/control", json={"command": "pause"})
            resumed: list[str] = []
            reader = asyncio.ensure_future(read(client, resumed, {"Last-Event-ID": str(last)}))
            await until(lambda: '"TradingStateChanged"' in "".join(resumed), "the pause, replayed")
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            again = sse_messages("".join(resumed))
            assert again[0]["id"] == last + 1 and again[0]["event"] != "snapshot"
            assert [m["id"] for m in again] == list(range(last + 1, last + 1 + len(again)))
            # an id that left the ring (or never existed) starts over with a snapshot
            fresh: list[str] = []
            reader = asyncio.ensure_future(read(client, fresh, {"Last-Event-ID": "999999999"}))
            await until(lambda: "event: snapshot" in "".join(fresh), "a new snapshot")
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            assert sse_messages("".join(fresh))[0]["data"]["data"]["risk"]["state"] == "REDUCING"

    asyncio.run(body())


def test_token_file_is_private(tmp_path: Path) -> None:
    from kinetic_empire.api import resolve_token

    token, where = resolve_token(tmp_path, env={})
    assert where == str(tmp_path / "api_token") and len(token) >= 32
    assert (tmp_path / "api_token").read_text().strip() == token
    assert os.stat(tmp_path / "api_token").st_mode & 0o777 == 0o600
    assert resolve_token(tmp_path, env={"KINETIC_API_TOKEN": "x" * 20}) == ("x" * 20, "KINETIC_API_TOKEN")
