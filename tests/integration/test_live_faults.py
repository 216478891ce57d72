"""The live engine's recovery paths against the sandbox's injected faults, over loopback.

Clock skew (-1021 and resync), 429 bursts, 5xx and timeouts after the order executed (never placed
twice; the grace before the lookup runs on the injected timer), a -1001 before execution (sent again once),
a timeout that executed nothing (closed as rejected after the look-up bound, never resent),
rejections reported once with the venue's code, bad keys, a venue answering garbage, production hosts refused.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kinetic_empire.binance.execution import BinanceExecution
from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.binance.translate import UserTranslator
from kinetic_empire.binance.venues import Venue
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.core.events import Alert, OrderAccepted, OrderFilled, OrderRejected, OrderRequest
from kinetic_empire.live.app import LiveEngine, PreflightError
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.doctor import Doctor
from kinetic_empire.sandbox import FaultConfig, RateLimitConfig, SandboxConfig, SandboxServer
from tests.support.live import DATA, step, stepped_engine

pytestmark = pytest.mark.integration


def order(cid: str, qty: str = "100", symbol: str = "FILUSDT", side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id=cid, strategy_id="test", symbol=symbol, side=side,
                        order_type=OrderType.MARKET, quantity=Decimal(qty), ts_event=0, ts_init=0)


def record(engine: LiveEngine) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {"accepted": [], "filled": [], "rejected": []}
    engine.bus.subscribe(OrderAccepted, seen["accepted"].append)
    engine.bus.subscribe(OrderFilled, seen["filled"].append)
    engine.bus.subscribe(OrderRejected, seen["rejected"].append)
    return seen


def venue_orders(sb: Any, cid: str, symbol: str = "FILUSDT") -> list[Any]:
    return [o for o in sb.account().exchange.all_orders(symbol) if o.client_order_id == cid]


def test_clock_skew_rejected_once_then_resynced(tmp_path: Path) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / "skew") as (sb, engine):
            seen = record(engine)
            sb.faults.cfg.enabled = True
            sb.faults.cfg.clock_skew_ms = 30_000  # the server's clock jumps 30 s ahead of ours
            engine.bus.publish(order("skew-1"))
            await engine.execution.drain()
            assert engine.rest.stats.resyncs == 1 and abs(engine.rest.offset_ms - 30_000) < 1000
            sb.faults.cfg.clock_skew_ms = -30_000  # and then 30 s behind: our timestamps are "ahead"
            engine.bus.publish(order("skew-2", side=Side.SELL))
            await engine.execution.drain()
            assert engine.rest.stats.resyncs == 2 and abs(engine.rest.offset_ms + 30_000) < 1000
            await step(sb, engine, 1)
            assert [e.client_order_id for e in seen["accepted"]] == ["skew-1", "skew-2"]
            assert len(venue_orders(sb, "skew-1")) == len(venue_orders(sb, "skew-2")) == 1
            assert {e.client_order_id for e in seen["filled"]} == {"skew-1", "skew-2"}

    asyncio.run(body())


def test_rate_limit_bursts_wait_and_place_each_order_once(tmp_path: Path) -> None:
    faults = FaultConfig(enabled=False, seed=3, rate_limit_burst_rate=0.4)

    async def body() -> None:
        async with stepped_engine(tmp_path / "burst", faults=faults) as (sb, engine):
            seen = record(engine)
            sb.faults.cfg.enabled = True
            for i in range(3):
                engine.bus.publish(order(f"burst-{i}", qty="10"))
            rows = await engine.rest.signed("GET", "/fapi/v2/positionRisk", {"symbol": "FILUSDT"})
            await engine.execution.drain()
            sb.faults.cfg.enabled = False
            assert rows and engine.rest.stats.rate_limited >= 1
            assert sorted(e.client_order_id for e in seen["accepted"]) == ["burst-0", "burst-1", "burst-2"]
            assert all(len(venue_orders(sb, f"burst-{i}")) == 1 for i in range(3))
            assert seen["rejected"] == []

    asyncio.run(body())


@pytest.mark.parametrize("fault", ["error_executed_rate", "timeout_executed"])
def test_unknown_outcome_after_execution_is_never_placed_twice(tmp_path: Path, fault: str) -> None:
    faults = FaultConfig(enabled=False, timeout_seconds=0.2, timeout_executed_share=1.0)

    async def body() -> None:
        async with stepped_engine(tmp_path / fault, faults=faults) as (sb, engine):
            seen = record(engine)
            cfg = sb.faults.cfg
            cfg.enabled = True
            if fault == "timeout_executed":
                cfg.timeout_rate = 1.0
            else:
                cfg.error_executed_rate = 1.0
            committed: list[int] = []

            def sent(r: OrderRequest) -> None:  # what a crash at this instant would leave in the journal
                db = sqlite3.connect(f"file:{engine.journal.path}?mode=ro", uri=True)
                committed.append(db.execute("SELECT COUNT(*) FROM events WHERE kind = 'OrderRequest' AND "
                                            "client_order_id = ?", (r.client_order_id,)).fetchone()[0])
                db.close()

            engine.execution._on_sent = sent
            engine.bus.publish(order("unknown-1"))
            await engine.execution.drain()
            assert committed == [1]  # the client id was durable before the request left
            cfg.enabled = False
            await step(sb, engine, 1)
            assert len(venue_orders(sb, "unknown-1")) == 1
            assert [e.client_order_id for e in seen["accepted"]] == ["unknown-1"]
            assert [e.client_order_id for e in seen["filled"]] == ["unknown-1"]
            assert engine.execution.unknown_resolved == 1 and seen["rejected"] == []

    asyncio.run(body())


def test_failure_before_execution_is_sent_again_once(tmp_path: Path) -> None:
    """-1001 is a definite failure (the venue did nothing): the REST client sends it again, same attempt."""
    faults = FaultConfig(enabled=False, timeout_seconds=0.2, timeout_executed_share=0.0)

    async def body() -> None:
        async with stepped_engine(tmp_path / "rejected", faults=faults) as (sb, engine):
            seen = record(engine)
            cfg = sb.faults.cfg
            attempts: list[str] = []

            async def recover_after_first_retry() -> None:
                while engine.rest.stats.retries == 0:
                    await asyncio.sleep(0.005)
                cfg.enabled = False

            engine.execution._on_sent = lambda r: attempts.append(r.client_order_id)
            watcher = asyncio.ensure_future(recover_after_first_retry())
            cfg.enabled = True
            cfg.error_rejected_rate = 1.0
            engine.bus.publish(order("again-1"))
            await engine.execution.drain()
            watcher.cancel()
            await step(sb, engine, 1)
            assert len(venue_orders(sb, "again-1")) == 1
            assert [e.client_order_id for e in seen["filled"]] == ["again-1"]
            assert seen["rejected"] == []
            assert engine.rest.stats.retries >= 1 and attempts == ["again-1"]

    asyncio.run(body())


def test_a_timeout_is_never_resent_even_when_nothing_executed(tmp_path: Path) -> None:
    """Issue 12 item 3: after a timeout the outcome is unknown; the port looks the order up until its bound
    (60 grace periods) and, not finding it, closes it as rejected with an Alert instead of sending it again."""
    faults = FaultConfig(enabled=False, timeout_seconds=0.2, timeout_executed_share=0.0)

    async def body() -> None:
        async with stepped_engine(tmp_path / "timeout", faults=faults) as (sb, engine):
            seen = record(engine)
            alerts: list[Alert] = []
            engine.bus.subscribe(Alert, alerts.append)
            cfg = sb.faults.cfg
            attempts: list[str] = []
            engine.execution._on_sent = lambda r: attempts.append(r.client_order_id)
            cfg.enabled = True
            cfg.timeout_rate = 1.0
            engine.bus.publish(order("again-1"))
            await engine.execution.drain()
            cfg.enabled = False
            await step(sb, engine, 1)
            assert venue_orders(sb, "again-1") == [] and attempts == ["again-1"]
            assert seen["filled"] == [] and [e.code for e in seen["rejected"]] == [-1007]
            assert "UNKNOWN_OUTCOME" in seen["rejected"][0].reason and "not resent" in seen["rejected"][0].reason
            assert [(a.kind, a.severity) for a in alerts] == [("order_outcome_unknown", "warning")]
            assert engine.execution.unknown_lookups >= 2

    asyncio.run(body())


def test_rejection_is_published_with_the_venue_code_and_logged_once(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / "reject") as (_sb, engine):
            seen = record(engine)
            with caplog.at_level(logging.INFO, logger="kinetic_empire.binance.execution"):
                engine.bus.publish(order("bad-1", qty="0.001"))
                engine.bus.publish(order("bad-2", qty="0.001"))
                await engine.execution.drain()
                engine.bus.publish(order("good-1", qty="10"))
                await engine.execution.drain()
            assert [(e.client_order_id, e.code) for e in seen["rejected"]] == [("bad-1", -1111), ("bad-2", -1111)]
            assert "Precision" in seen["rejected"][0].reason
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "-1111" in r.getMessage()]
            assert len(warnings) == 1
            assert [e.client_order_id for e in seen["accepted"]] == ["good-1"]  # the engine goes on

    asyncio.run(body())


@pytest.mark.parametrize("which", ["secret", "key"])
def test_bad_keys_stop_the_run_with_the_venue_code(tmp_path: Path, which: str) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / which, start=False) as (sb, engine):
            wrong = "x" * 64
            creds = Credentials(sb.api_key, wrong) if which == "secret" else Credentials(wrong, sb.api_secret)
            bad = LiveEngine(engine.config, engine.registry, engine.venue, creds, run_id="bad",
                             run_dir=tmp_path / "bad", check_streams=False)
            with pytest.raises(PreflightError) as info:
                await bad.start()
            await bad.shutdown()
            failed = [c for c in info.value.checks if c.failed]
            assert len(failed) == 1 and failed[0].name == "API keys"
            code = "-1022" if which == "secret" else "-2015"
            assert code in failed[0].detail and str(info.value).count(code) == 1
            assert wrong not in str(info.value) and sb.api_secret not in str(info.value)

    asyncio.run(body())


def test_a_venue_answering_garbage_fails_the_preflight_clearly() -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Access denied</body></html>", content_type="text/html")

    async def body() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", html)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            venue = Venue("custom", f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}")
            async with BinanceRest(venue.rest_url, None, max_retries=0) as rest:
                checks = await Doctor(rest, venue, ["FILUSDT"], {"FILUSDT": 2}).run()
        finally:
            await runner.cleanup()
        assert len(checks) == 1 and checks[0].failed
        assert "not JSON" in checks[0].detail and "Access denied" in checks[0].detail

    asyncio.run(body())


def test_production_hosts_are_refused() -> None:
    for url in ("https://fapi.binance.com", "wss://fstream.binance.com", "https://api.binance.com"):
        with pytest.raises(ConfigError, match="production"):
            Venue("custom", url, "wss://fstream.binancefuture.com") if url.startswith("http") else Venue(
                "custom", "https://demo-fapi.binance.com", url)
    with pytest.raises(ConfigError, match="production"):
        LiveConfig.from_mapping({"live": {"venue": "custom", "rest_url": "https://fapi.binance.com"},
                                 "strategies": [{"name": "ema_cross", "symbols": ["BTCUSDT"]}]})
    Venue("demo", "https://demo-fapi.binance.com", "wss://fstream.binancefuture.com")  # allowed


def test_weight_pacing_waits_for_the_next_minute_instead_of_a_429() -> None:
    import time

    from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer
    from tests.support.live import DATA

    now = int(time.time() * 1000)
    skew = (now // 60_000 + 1) * 60_000 - 1_500 - now  # the venue's clock 1.5 s before a new minute
    cfg = SandboxConfig(data=[DATA], limits=RateLimitConfig(weight_1m=40),
                        faults=FaultConfig(enabled=True, clock_skew_ms=skew))

    async def body() -> None:
        async with SandboxServer(cfg) as sb:
            rest = BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret), weight_limit=40)
            async with rest:
                await rest.sync_time()
                for _ in range(10):  # weight 5 each: 50 > 40 within one minute unless paced
                    await rest.signed("GET", "/fapi/v2/positionRisk", {"symbol": "FILUSDT"})
                assert rest.stats.rate_limited == 0
                assert 0 < rest.stats.paced_s < 5

    asyncio.run(body())


def test_unknown_outcome_grace_runs_on_the_injected_timer(tmp_path: Path) -> None:
    """The grace before looking an order up is timer time: nothing is looked up until the test moves it."""
    async def body() -> None:
        cfg = SandboxConfig(data=[DATA], limits=RateLimitConfig(enforce=False), warmup_klines=5,
                            faults=FaultConfig(enabled=True, error_executed_rate=1.0))
        async with SandboxServer(cfg) as sb:
            rest = await BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret, "sandbox"),
                                     max_retries=0).start()
            try:
                bus = EventBus()
                accepted: list[OrderAccepted] = []
                bus.subscribe(OrderAccepted, accepted.append)
                timer = ManualClock()
                translator = UserTranslator(bus.publish, sb.venue.market_clock.now_ms, lambda _s: 20)
                port = BinanceExecution(bus, rest, translator, unknown_grace_s=30.0, timer=timer)
                bus.publish(order("grace-1", "10"))
                for _ in range(500):  # the 5xx comes back, then the port waits on the timer
                    if timer.sleepers:
                        break
                    await asyncio.sleep(0.01)
                assert timer.sleepers == 1 and port.busy == 1
                sb.faults.cfg.enabled = False
                assert len(venue_orders(sb, "grace-1")) == 1 and accepted == []  # placed; not looked up yet
                await timer.advance(29.0)
                assert timer.sleepers == 1 and accepted == []
                await timer.advance(1.0)
                await port.drain(timeout=10)
                assert [e.client_order_id for e in accepted] == ["grace-1"] and port.unknown_resolved == 1
                assert len(venue_orders(sb, "grace-1")) == 1  # never placed twice
            finally:
                await rest.close()

    asyncio.run(body())
