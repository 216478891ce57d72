"""A reduce-only market exit sent before a hard kill is still in flight after the resume (live/restore.py,
risk/exits.py): a close right after the restart is denied EXIT_IN_FLIGHT instead of sending a second exit.

On the sandbox over loopback, with market orders filling at the next price update, so the exit is accepted
and still open on the venue when the process dies and when the resumed run reconciles."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import OrderRequest, RiskDenied
from kinetic_empire.live.app import LiveEngine
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.resume import JournalView, check_journal
from tests.support.live import DATA, RISK, START, K, sandbox_position, step, stepped_engine

pytestmark = pytest.mark.integration

FIL = "FILUSDT"
QUIET = [{"name": "rsi_reversion", "symbols": [FIL], "timeframe": "1m",  # never trades: the orders are the test's
          "params": {"period": 50, "oversold": 0.01, "overbought": 99.99, "exit_level": 100}}]


async def crash(engine: LiveEngine) -> None:
    """What SIGKILL leaves: committed rows only, no end marker, requests in flight dropped."""
    engine.journal._db.close()
    engine.journal.closed = True
    for task in list(engine.execution._tasks):
        task.cancel()
    await engine.user.stop(close_key=False)
    await engine.feed.stop()
    await engine._cancel_tasks()
    engine.started = False


async def resumed(engine: LiveEngine) -> LiveEngine:
    path = engine.run_dir / "journal.sqlite"
    view = JournalView.load(path, check_journal(path, rest_url=engine.venue.rest_url,
                                                account=engine.credentials.fingerprint if engine.credentials else ""))
    new = LiveEngine(engine.config, engine.registry, engine.venue, engine.credentials, run_id=engine.run_id,
                     run_dir=engine.run_dir, check_streams=False, unknown_grace_s=0.05, resume=view)
    await new.start()
    return new


def test_an_exit_in_flight_at_a_hard_kill_nets_the_close_after_the_resume(tmp_path: Path) -> None:
    async def body() -> None:
        cfg = LiveConfig.from_mapping({"live": {"window": 120}, "strategies": QUIET, "risk": RISK,
                                       "sandbox": {"data": str(DATA), "speed": 0, "start": START,
                                                   "updates_per_kline": K}})
        async with stepped_engine(tmp_path / "exit", config=cfg, stale_after_s=0,
                                  market_fills="next_update") as (sb, engine):
            await step(sb, engine, 1)
            engine.bus.publish(OrderRequest(client_order_id="entry-1", intent_id="entry", strategy_id="test",
                                            symbol=FIL, side=Side.BUY, order_type=OrderType.MARKET,
                                            quantity=Decimal(100), ts_event=0, ts_init=0))  # the test's setup
            await step(sb, engine, 1)
            assert sandbox_position(sb, FIL) == Decimal(100)
            sent: list[Any] = []
            engine.bus.subscribe(OrderRequest, sent.append)
            engine.bus.subscribe(RiskDenied, sent.append)
            intent = engine.risk.commands.close_position(FIL, source="ops", cause="before the kill")
            assert intent is not None
            await engine.execution.drain()
            assert [type(e).__name__ for e in sent] == ["OrderRequest"], sent
            exit_id = sent[0].client_order_id
            st = engine.translator.orders[exit_id]
            assert st.accepted and not st.terminal  # on the venue, waiting for the next price update
            await crash(engine)

            engine2 = await resumed(engine)
            seen: list[Any] = []
            engine2.bus.subscribe(RiskDenied, seen.append)
            engine2.bus.subscribe(OrderRequest, seen.append)
            try:
                plan = engine2.reconciler.plans[0]  # what `kinetic run --resume` prints
                rows = [a for a in plan.actions if a.kind == "exit-in-flight"]
                assert [(a.symbol, a.exchange) for a in rows] == [(FIL, "open")], plan.format()
                assert exit_id in rows[0].believed and "netted" in rows[0].action, plan.format()
                assert "exit-in-flight FILUSDT" in plan.format()
                assert "1 exits in flight" in engine2.resume_view.summary()
                assert engine2.portfolio.position(FIL).quantity == Decimal(100)
                again = engine2.risk.commands.close_position(FIL, source="ops", cause="after the resume")
                assert again is not None
                assert [type(e).__name__ for e in seen] == ["RiskDenied"], seen
                assert seen[0].code == "EXIT_IN_FLIGHT" and exit_id in seen[0].message, seen[0]
                await step(sb, engine2, 1)  # the first exit fills; the account shows it
                assert sandbox_position(sb, FIL) == 0
                assert engine2.portfolio.position(FIL).quantity == 0
                closes = [o for o in sb.account().exchange.all_orders(FIL) if o.side is Side.SELL]
                assert [o.client_order_id for o in closes] == [exit_id], closes
            finally:
                await engine2.shutdown()

    asyncio.run(body())
