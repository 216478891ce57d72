"""No unprotected position, over real sockets: the live engine against the local sandbox.

The sandbox holds the engine's stop request (``/sandbox-admin/hold``) while the replay moves the price
through the stop's trigger, then lets it go: the venue refuses it (-2021 "Order would immediately trigger")
and the engine closes the position at market, reduce-only, through the risk gate and the journal. A second
test has the venue refuse every stop for another reason: the engine keeps retrying, the alert shows in the
status view, and it clears when the position is flat."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kinetic_empire.core.enums import IntentAction, OrderType
from kinetic_empire.core.events import Alert, Note, OperatorCommand, OrderIntent, OrderRejected, OrderRequest
from kinetic_empire.live.app import LiveEngine
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.journal import read_events
from kinetic_empire.live.sandbox_venue import local_sandbox, sandbox_config
from kinetic_empire.live.status import StatusView
from kinetic_empire.resources import exchange_info_payload
from kinetic_empire.risk.guard import ALERT_KIND, SOURCE, WOULD_TRIGGER
from kinetic_empire.sandbox import RateLimitConfig, SandboxServer
from kinetic_empire.strategy.registry import build_registry
from tests.support.live import DATA, RISK, START, K, sandbox_position, step
from tests.support.waiting import until

pytestmark = pytest.mark.integration
FIL = "FILUSDT"
QUIET = [{"name": "ema_cross", "symbols": [FIL], "timeframe": "1m",  # no cross here: the orders are the test's
          "params": {"fast": 40, "slow": 100}}]


def config(**live: Any) -> LiveConfig:
    live.setdefault("request_timeout_s", 120)  # a held request is slow, not lost, on a loaded machine too
    return LiveConfig.from_mapping({"live": {"window": 120, **live}, "strategies": QUIET, "risk": RISK,
                                    "sandbox": {"data": str(DATA), "speed": 0, "start": START,
                                                "updates_per_kline": K}})


@contextlib.asynccontextmanager
async def engine_on_sandbox(run_dir: Path, cfg: LiveConfig, exchange_info: dict[str, Any] | None = None
                            ) -> AsyncIterator[tuple[SandboxServer, LiveEngine, aiohttp.ClientSession]]:
    """A stepped sandbox with its admin routes on, and the live engine on it (tests/support/live.py's set-up)."""
    registry = build_registry([])
    sb_cfg = sandbox_config(cfg, registry)
    sb_cfg.limits = RateLimitConfig(enforce=False)
    sb_cfg.admin = True
    sb_cfg.exchange_info = exchange_info
    async with local_sandbox(cfg, registry, sb_cfg) as (sb, venue, creds), aiohttp.ClientSession() as session:
        engine = LiveEngine(cfg, registry, venue, creds, run_id=run_dir.name, run_dir=run_dir, check_streams=False,
                            unknown_grace_s=0.05, stale_after_s=0)
        await engine.start()
        try:
            yield sb, engine, session
        finally:
            await engine.shutdown()


async def admin(session: aiohttp.ClientSession, sb: SandboxServer, method: str, action: str, **query: Any) -> Any:
    async with session.request(method, f"{sb.rest_url}/sandbox-admin/{action}", params=query) as r:
        assert r.status == 200, await r.text()
        return await r.json()


def open_long(engine: LiveEngine, intent_id: str, stop: Decimal) -> None:
    """What a strategy's buy with a stop becomes: an intent on the bus, decided by the risk manager."""
    now = engine.clock.now_ms()
    price = engine.portfolio.last_price(FIL)
    engine.bus.publish(OrderIntent(intent_id=intent_id, strategy_id="test", symbol=FIL, action=IntentAction.OPEN_LONG,
                                   stop_loss=float(stop), reference_price=price, ts_event=now, ts_init=now))


def test_a_stop_the_price_ran_through_before_it_was_placed_closes_the_position_at_market(tmp_path: Path) -> None:
    async def body() -> None:
        async with engine_on_sandbox(tmp_path / "breach", config()) as (sb, engine, session):
            seen: list[Any] = []
            engine.bus.subscribe(object, seen.append)
            await step(sb, engine, 2)
            ex = sb.account().exchange
            tick = Decimal("0.001")
            stop = ex.last_price(FIL) - 2 * tick  # two ticks under the last price
            await admin(session, sb, "POST", "hold", path="/fapi/v1/algoOrder")  # the next stop request waits
            open_long(engine, "prot-1", stop)
            await engine.execution.drain()  # the entry is on the venue, queued for the next update
            await sb.step_updates(1)  # it fills; the engine asks for its stop at once, and the venue holds it
            async def held() -> bool:
                return (await admin(session, sb, "GET", "status"))["held"] == 1
            for _ in range(2000):
                if await held():
                    break
                await asyncio.sleep(0.005)
            assert await held(), "the stop request never reached the venue"
            qty = sandbox_position(sb, FIL)
            (entry_fill,) = [e for e in seen if type(e).__name__ == "OrderFilled" and e.client_order_id == "prot-1-e"]
            assert qty > 0 and entry_fill.price > stop  # the fill itself did not cross the stop
            fill_market_ms = entry_fill.ts_event
            moved = 0
            while ex.last_price(FIL) > stop:  # the price runs through the trigger: the stop is not there yet
                await sb.step_updates(1)
                moved += 1
                assert moved < 40 * K, "the replay never went through the stop"
            assert sandbox_position(sb, FIL) == qty and not sb.account().open_algos(FIL)
            released_at = engine.timer.monotonic()
            assert (await admin(session, sb, "POST", "release"))["released"] == 1
            await until(lambda: any(isinstance(e, OrderRequest) and e.strategy_id == SOURCE for e in seen),
                        "a market close after the -2021 refusal")
            close_sent_s = engine.timer.monotonic() - released_at
            await engine.execution.drain()
            await sb.step_updates(1)  # the close fills at the next update (a stepped replay's market orders)
            await until(lambda: sandbox_position(sb, FIL) == 0 and engine.portfolio.position(FIL).quantity == 0,
                        "the position closed")
            flat_market_ms = engine.clock.now_ms()
            await step(sb, engine, 3)  # flat: no more stops, no more closes
            assert engine.guard.unprotected() == {} and engine.guard.breaches == 1
            assert engine.alerts.active == {}
            print(f"\nprice moved through the stop in {moved} updates; close sent {close_sent_s * 1000:.1f} ms "
                  f"after the venue answered; fill->flat {(flat_market_ms - fill_market_ms) / 1000:.0f} s market")
            assert close_sent_s < engine.config.protect_within_s
        journal = list(read_events(engine.run_dir / "journal.sqlite"))
        (refusal,) = [e for e in journal if isinstance(e, OrderRejected) and e.client_order_id == "prot-1-sl"]
        assert refusal.code == WOULD_TRIGGER
        (note,) = [e for e in journal if isinstance(e, Note) and e.topic == SOURCE]
        assert "PROTECTION_BREACHED" in note.message and note.data["code"] == WOULD_TRIGGER
        (intent,) = [e for e in journal if isinstance(e, OrderIntent) and e.strategy_id == SOURCE]
        assert intent.action is IntentAction.CLOSE and intent.tag == note.message
        (close,) = [e for e in journal if isinstance(e, OrderRequest) and e.strategy_id == SOURCE]
        assert (close.order_type, close.reduce_only, close.intent_id) == (OrderType.MARKET, True, intent.intent_id)
        assert journal.index(refusal) < journal.index(intent) < journal.index(close)  # journaled before it left
        stops = [e for e in journal if isinstance(e, OrderRequest) and e.order_type is OrderType.STOP_MARKET]
        assert [s.client_order_id for s in stops] == ["prot-1-sl"]  # refused as triggered: never retried
        venue = [o.client_order_id for o in sb.account().exchange.all_orders(FIL)]
        assert venue.count(close.client_order_id) == 1

    asyncio.run(body())


def no_stops_allowed() -> dict[str, Any]:
    """FILUSDT's exchangeInfo with MAX_NUM_ALGO_ORDERS 0: the venue refuses every stop (-4045)."""
    info = copy.deepcopy(exchange_info_payload(False))
    sym = next(s for s in info["symbols"] if s["symbol"] == FIL)
    sym["filters"] = [f for f in sym["filters"] if f["filterType"] != "MAX_NUM_ALGO_ORDERS"]
    sym["filters"].append({"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 0})
    return info


def test_a_stop_the_venue_keeps_refusing_is_retried_alerted_in_the_status_view_and_cleared_when_flat(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with engine_on_sandbox(tmp_path / "refused", config(protect_within_s=0.5), no_stops_allowed()) as (
                sb, engine, _session):
            alerts: list[Alert] = []
            engine.bus.subscribe(Alert, alerts.append)
            await step(sb, engine, 2)
            stop = sb.account().exchange.last_price(FIL) * Decimal("0.9")
            open_long(engine, "prot-2", stop.quantize(Decimal("0.001")))
            await engine.execution.drain()
            await sb.step_updates(1)
            await until(lambda: any(a.kind == ALERT_KIND and not a.cleared for a in alerts),
                        "the unprotected_position alert")
            status = StatusView(engine, tty=False)
            lines = [line for line in status.lines() if line.startswith("ALERT")]
            assert len(lines) == 1 and "CRITICAL unprotected_position FILUSDT" in lines[0], lines
            assert "-4045" in lines[0]
            await until(lambda: len(engine.guard.covers[FIL].templates) == 1 and engine.guard.replaced >= 2,
                        "the stop retried")
            refused = [cid for cid, st in engine.translator.orders.items() if cid.startswith("prot-2-sl")]
            assert len(refused) == len(set(refused)) >= 3  # each retry under a new client id
            now = engine.clock.now_ms()
            engine.bus.publish(OperatorCommand(action="flatten", symbols=(FIL,), source="operator",
                                               cause="test: close the unprotected position", ts_event=now,
                                               ts_init=now))
            await engine.execution.drain()
            await sb.step_updates(1)
            await until(lambda: any(a.kind == ALERT_KIND and a.cleared for a in alerts), "the alert cleared")
            assert engine.alerts.active == {} and not [line for line in status.lines() if line.startswith("ALERT")]
            assert sandbox_position(sb, FIL) == 0
            tries = engine.guard.replaced
            await step(sb, engine, 2)
            assert engine.guard.replaced == tries  # flat: retrying stopped
            assert [a.cleared for a in alerts if a.kind == ALERT_KIND] == [False, True]  # once per episode

    asyncio.run(body())

