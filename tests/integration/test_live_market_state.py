"""Over real sockets against the local sandbox: a strategy that defines on_mark_price / on_ticker gets the
``@markPrice@1s`` and ``@ticker`` streams as events; one that doesn't opens neither; ``self.state`` survives a
crash and ``--resume`` (the counter goes on from the journal)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.core.events import StrategyStateSaved
from kinetic_empire.live.app import LiveEngine
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.journal import read_events
from kinetic_empire.live.sandbox_venue import local_sandbox, sandbox_config
from kinetic_empire.sandbox import RateLimitConfig, SandboxServer
from kinetic_empire.strategy.registry import build_registry
from tests.integration.test_resume import crash, resumed
from tests.support.live import DATA, RISK, START, K, step

pytestmark = pytest.mark.integration

PROBES = Path(__file__).resolve().parents[1] / "data" / "strategies_market"


def config(*names: str) -> LiveConfig:
    strategies = [{"name": n, "symbols": [sym], "timeframe": "1m"} for n, sym in zip(names, ("FILUSDT", "NEARUSDT"))]
    return LiveConfig.from_mapping({"live": {"window": 60}, "strategies": strategies, "risk": RISK,
                                    "sandbox": {"data": str(DATA), "speed": 0, "start": START,
                                                "updates_per_kline": K}})


@contextlib.asynccontextmanager
async def probe_engine(run_dir: Path, cfg: LiveConfig) -> AsyncIterator[tuple[SandboxServer, LiveEngine]]:
    registry = build_registry([PROBES])
    sb_cfg = sandbox_config(cfg, registry)
    sb_cfg.limits = RateLimitConfig(enforce=False)
    async with local_sandbox(cfg, registry, sb_cfg) as (sb, venue, creds):
        engine = LiveEngine(cfg, registry, venue, creds, run_id=run_dir.name, run_dir=run_dir, check_streams=False,
                            unknown_grace_s=0.05)
        await engine.start()
        try:
            yield sb, engine
        finally:
            await engine.shutdown()


def probe(engine: LiveEngine, symbol: str = "FILUSDT") -> Any:
    (runner,) = [r for r in engine.runners if r.symbol == symbol]
    return runner.strategy


def test_mark_and_ticker_streams_reach_only_the_strategy_that_asked(tmp_path: Path) -> None:
    async def body() -> None:
        async with probe_engine(tmp_path / "marks", config("mark_probe", "klines_only")) as (sb, engine):
            url = await engine.feed._url()
            assert "filusdt@markPrice@1s" in url and "filusdt@ticker" in url
            assert "nearusdt@markPrice" not in url and "nearusdt@ticker" not in url  # klines_only asked for neither
            await step(sb, engine, 3)
            s = probe(engine)
            assert s.state["klines"] == 3
            assert s.state["marks"] >= 3 and s.state["tickers"] >= 3  # one per price update played
            last = float((await engine.rest.get("/fapi/v1/premiumIndex", {"symbol": "FILUSDT"}))["markPrice"])
            assert s.mark_price == pytest.approx(last) and s.state["last"] == pytest.approx(last)
            assert s.next_funding_time % (8 * 3_600_000) == 0 and s.next_funding_time > engine.clock.now_ms()
            assert s.funding_rate == pytest.approx(float(sb.config.exchange.funding_rate))  # the sandbox's setting
            assert engine.feed.market_events > 0
            assert probe(engine, "NEARUSDT").state["n"] == 3

    asyncio.run(body())


def test_a_counter_in_state_survives_a_crash_and_resume(tmp_path: Path) -> None:
    async def body() -> None:
        async with probe_engine(tmp_path / "state", config("mark_probe")) as (sb, engine):
            await step(sb, engine, 4)
            before = dict(probe(engine).state)
            assert before["klines"] == 4
            await crash(engine)  # SIGKILL's leftovers: committed rows only (state is committed when saved)
            await sb.step_updates(K)  # a kline the engine misses while down
            engine2 = await resumed(engine, [])
            try:
                s2 = probe(engine2)
                assert s2.state["klines"] == 4 and s2.state["marks"] == before["marks"]  # restored, before on_start
                await step(sb, engine2, 2)
                assert s2.state["klines"] >= 6  # counts on (plus the kline backfilled on resume)
            finally:
                await engine2.shutdown()
            saved = [e for e in read_events(engine.run_dir / "journal.sqlite") if isinstance(e, StrategyStateSaved)]
            assert saved and saved[-1].state == s2.state

    asyncio.run(body())


def test_funding_hedge_paper_run_hedges_and_rebalances_a_drift(tmp_path: Path) -> None:
    from decimal import Decimal

    from tests.integration.test_resume import order
    from tests.support.live import sandbox_position

    cfg = LiveConfig.from_mapping({
        "live": {"window": 60}, "risk": RISK,
        "strategies": [{"name": "funding_hedge", "symbols": ["FILUSDT"], "timeframe": "1m",
                        "params": {"spot_qty": 100.0, "drift": 0.1}}],
        "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K}})

    async def body() -> None:
        async with probe_engine(tmp_path / "hedge", cfg) as (sb, engine):
            await step(sb, engine, 2)
            hedge = probe(engine)
            assert sandbox_position(sb, "FILUSDT") == Decimal(-100) and hedge.state["rebalances"] == 1
            assert hedge.state["next_settlement"] % (8 * 3_600_000) == 0 and hedge.mark_price > 0
            # someone buys back 40 of the short (an operator, a partial liquidation): the drift is 40 %
            engine.bus.publish(order("drift-1", "40"))  # a BUY of 40 on the bus, as the resume tests do
            await step(sb, engine, 2)
            assert sandbox_position(sb, "FILUSDT") == Decimal(-100) and hedge.state["rebalances"] == 2

    asyncio.run(body())
