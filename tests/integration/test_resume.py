"""Resume after a crash: bad journals refused untouched; the crash between journal commit and send never
places twice; fills while down, positions nobody opened and missing stops handled by the reconciliation plan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.core.enums import OrderType, Side, TradingState
from kinetic_empire.core.events import OrderRequest
from kinetic_empire.live.app import LiveEngine, PreflightError
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.journal import SCHEMA_VERSION, Journal, read_events
from kinetic_empire.live.resume import JournalError, JournalView, check_journal, unclean_stop
from tests.support.live import DATA, RISK, START, K, sandbox_position, step, stepped_engine

pytestmark = pytest.mark.integration


def make_journal(path: Path, **meta: Any) -> Path:
    j = Journal(path)
    values = {"schema_version": SCHEMA_VERSION, "rest_url": "http://127.0.0.1:1", "account": "abc", "venue": "sandbox",
              "pid": 1 << 22}
    j.set_meta(**{**values, **meta})
    j.close()
    return path


@pytest.mark.parametrize("case, expect", [
    ("missing", "no run"),
    ("corrupt", "corrupt or truncated"),
    ("truncated", "corrupt or truncated"),
    ("old", "schema version 0"),
    ("venue", "not http://other"),
    ("account", "another account"),
])
def test_bad_journals_are_refused_before_trading_and_left_untouched(tmp_path: Path, case: str, expect: str) -> None:
    path = tmp_path / "run" / "journal.sqlite"
    kw: dict[str, Any] = {}
    if case != "missing":
        make_journal(path, schema_version=0 if case == "old" else SCHEMA_VERSION)
    if case == "corrupt":
        path.write_bytes(b"not a database at all" * 300)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:1500])
    if case == "venue":
        kw["rest_url"] = "http://other"
    if case == "account":
        kw["account"] = "xyz"
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(JournalError, match=expect):
        check_journal(path, **kw)
    assert (path.read_bytes() if path.exists() else None) == before


def test_unclean_stop_rule(tmp_path: Path) -> None:
    meta = check_journal(make_journal(tmp_path / "r" / "journal.sqlite"))
    assert unclean_stop(meta)  # no end marker, writer gone
    assert not unclean_stop({**meta, "ended_wall_ms": 1})
    assert not unclean_stop({**meta, "pid": 1})  # pid 1 is alive: the run is still going


def order(cid: str, qty: str = "100", *, symbol: str = "FILUSDT", side: Side = Side.BUY, intent: str | None = None,
          otype: OrderType = OrderType.MARKET, trigger: str | None = None) -> OrderRequest:
    close = otype is OrderType.STOP_MARKET
    return OrderRequest(client_order_id=cid, intent_id=intent or cid, strategy_id="test", symbol=symbol, side=side,
                        order_type=otype, quantity=None if close else Decimal(qty), close_position=close,
                        trigger_price=None if trigger is None else Decimal(trigger), ts_event=0, ts_init=0)


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


async def resumed(engine: LiveEngine, printed: list[str]) -> LiveEngine:
    path = engine.run_dir / "journal.sqlite"
    view = JournalView.load(path, check_journal(path, rest_url=engine.venue.rest_url,
                                                account=engine.credentials.fingerprint if engine.credentials else ""))
    new = LiveEngine(engine.config, engine.registry, engine.venue, engine.credentials, run_id=engine.run_id,
                     run_dir=engine.run_dir, check_streams=False, unknown_grace_s=0.05, resume=view,
                     printer=printed.append)
    await new.start()
    return new


def venue_orders(sb: Any, cid: str, symbol: str = "FILUSDT") -> list[Any]:
    return [o for o in sb.account().exchange.all_orders(symbol) if o.client_order_id == cid]


def test_kill_between_journal_commit_and_send_then_resume_places_nothing_twice(tmp_path: Path) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / "crash", stale_after_s=0) as (sb, engine):
            await step(sb, engine, 1)
            await engine.settle()
            engine.bus.publish(order("sent-1"))  # reaches the venue; its ack dies unflushed with the process
            await engine.execution.drain()
            real = engine.rest.signed

            async def never(method: str, path: str, *a: Any, **kw: Any) -> Any:
                if method == "POST" and "order" in path.lower():
                    await asyncio.sleep(3600)  # the process dies here: committed, never sent
                return await real(method, path, *a, **kw)

            engine.rest.signed = never  # type: ignore[method-assign]
            # and not written at once from the handler either (send_signed_now): the process dies before the write
            engine.rest.send_signed_now = lambda *a, **kw: None  # type: ignore[method-assign]
            engine.bus.publish(order("lost-1"))
            await asyncio.sleep(0.05)
            await crash(engine)
            rows = sqlite3.connect(engine.run_dir / "journal.sqlite").execute(
                "SELECT kind FROM events WHERE client_order_id='lost-1'").fetchall()
            assert ("OrderRequest",) in rows  # durable before the request would have left
            await sb.step_updates(2)  # sent-1 fills while the engine is down
            printed: list[str] = []
            engine2 = await resumed(engine, printed)
            try:
                await step(sb, engine2, 1)
                assert len(venue_orders(sb, "sent-1")) == 1 and venue_orders(sb, "lost-1") == []
                text = "\n".join(printed)
                assert "never-placed" in text and "lost-1" in text and "adopt" in text
                assert engine2.translator.orders["lost-1"].terminal
                assert engine2.portfolio.position("FILUSDT").quantity == sandbox_position(sb, "FILUSDT")
                assert engine2.risk.state_of("FILUSDT") is not TradingState.REDUCING
            finally:
                await engine2.shutdown()
            kinds = [type(e).__name__ for e in read_events(engine.run_dir / "journal.sqlite")]
            assert "OrderFilled" in kinds and "Note" in kinds

    asyncio.run(body())


async def open_near_with_stop(sb: Any, engine: Any) -> None:
    """A 50 NEARUSDT long (client id ``near-e``) with its stop ``near-sl`` 20 % below, both accepted."""
    await step(sb, engine, 1)
    mark = Decimal((await engine.rest.get("/fapi/v1/ticker/price", {"symbol": "NEARUSDT"}))["price"])
    engine.bus.publish(order("near-e", "50", symbol="NEARUSDT", intent="near-i"))
    await step(sb, engine, 1)
    stop = (mark * Decimal("0.8")).quantize(Decimal("0.001"))
    engine.bus.publish(order("near-sl", symbol="NEARUSDT", side=Side.SELL, intent="near-i",
                             otype=OrderType.STOP_MARKET, trigger=str(stop)))
    await engine.execution.drain()
    await step(sb, engine, 1)


def test_resume_flags_a_foreign_position_and_replaces_a_missing_stop(tmp_path: Path) -> None:
    async def body() -> None:
        quiet = [{"name": "rsi_reversion", "symbols": ["FILUSDT"], "timeframe": "1m",  # quiet: the orders are ours
                  "params": {"period": 7, "oversold": 0.01, "overbought": 99.99}},
                 {"name": "ema_cross", "symbols": ["NEARUSDT"], "timeframe": "1m", "params": {"fast": 40, "slow": 100}}]
        cfg = LiveConfig.from_mapping({"live": {"window": 120}, "strategies": quiet, "risk": RISK,
                                       "sandbox": {"data": str(DATA), "speed": 0, "start": START,
                                                   "updates_per_kline": K}})
        async with stepped_engine(tmp_path / "flag", config=cfg, stale_after_s=0) as (sb, engine):
            await open_near_with_stop(sb, engine)
            assert engine.translator.orders["near-sl"].accepted
            await crash(engine)
            # while down: someone cancels the stop, and trades FILUSDT on the same account
            await engine.rest.start()
            await engine.rest.signed("DELETE", "/fapi/v1/algoOpenOrders", {"symbol": "NEARUSDT"})
            await engine.rest.signed("POST", "/fapi/v1/order", {"symbol": "FILUSDT", "side": "SELL", "type": "MARKET",
                                                                "quantity": "30", "newClientOrderId": "manual-1"})
            await sb.step_updates(2)
            printed: list[str] = []
            engine2 = await resumed(engine, printed)
            try:
                await step(sb, engine2, 1)
                text = "\n".join(printed)
                assert "flag" in text and "protect" in text, text
                assert engine2.risk.state_of("FILUSDT") is TradingState.REDUCING
                assert engine2.risk.state_of("NEARUSDT") is not TradingState.REDUCING
                assert sandbox_position(sb, "NEARUSDT") != 0
                replaced = [cid for cid, st in engine2.translator.orders.items()
                            if cid.startswith("near-sl-rp") and st.accepted and not st.terminal]
                assert replaced, printed
            finally:
                await engine2.shutdown()
            journaled = [e for e in read_events(engine.run_dir / "journal.sqlite") if isinstance(e, OrderRequest)]
            (original,) = [r for r in journaled if r.client_order_id == "near-sl"]
            again = [r for r in journaled if r.client_order_id.startswith("near-sl-rp")]
            assert again and all((r.intent_id, r.trigger_price, r.close_position) == (
                "near-i", original.trigger_price, True) for r in again)  # through the gate, into the journal

    asyncio.run(body())


def journal_requests(path: Path) -> list[str]:
    return [r.client_order_id for r in read_events(path, ("OrderRequest",))]


def test_stops_replaced_after_each_of_two_restarts_never_reuse_a_client_id(tmp_path: Path) -> None:
    async def body() -> None:
        quiet = [{"name": "ema_cross", "symbols": ["NEARUSDT"], "timeframe": "1m", "params": {"fast": 40, "slow": 100}}]
        cfg = LiveConfig.from_mapping({"live": {"window": 120}, "strategies": quiet, "risk": RISK,
                                       "sandbox": {"data": str(DATA), "speed": 0, "start": START,
                                                   "updates_per_kline": K}})
        async with stepped_engine(tmp_path / "twice", config=cfg, stale_after_s=0) as (sb, engine):
            await open_near_with_stop(sb, engine)
            live = engine
            replaced: list[str] = []
            for _ in range(2):  # down, the stop cancelled behind our back, back up: a new stop each time
                await crash(live)
                await live.rest.start()
                await live.rest.signed("DELETE", "/fapi/v1/algoOpenOrders", {"symbol": "NEARUSDT"})
                await live.rest.close()
                await sb.step_updates(1)
                live = await resumed(live, [])
                try:
                    await step(sb, live, 1)
                    now = [cid for cid, st in live.translator.orders.items()
                           if cid.startswith("near-sl-rp") and st.accepted and not st.terminal]
                    assert len(now) == 1, now
                    replaced += now
                except BaseException:
                    await live.shutdown()
                    raise
            await live.shutdown()
            assert len(set(replaced)) == 2, replaced
            requested = journal_requests(engine.run_dir / "journal.sqlite")
            assert [c for c in set(requested) if requested.count(c) > 1] == []  # no client id requested twice
            assert set(replaced) <= set(requested)
            venue = [o.client_order_id for o in sb.account().exchange.all_orders("NEARUSDT")]
            assert all(venue_orders(sb, cid, "NEARUSDT") for cid in replaced), venue

    asyncio.run(body())


def test_an_order_the_journal_cannot_write_is_never_sent_entries_pause_and_the_run_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / "gate", stale_after_s=0) as (sb, engine):
            await step(sb, engine, 1)
            await engine.settle()
            path = engine.run_dir / "journal.sqlite"
            engine.journal.flush()  # no open write: another connection may add the fault
            with contextlib.closing(sqlite3.connect(path)) as db:  # the disk fails for exactly this row
                db.execute("CREATE TRIGGER disk_full BEFORE INSERT ON events WHEN NEW.kind = 'OrderRequest' AND "
                           "NEW.client_order_id = 'gate-1' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
                db.commit()
            engine.bus.publish(order("gate-1"))
            engine.bus.publish(order("gate-2", "30"))  # journaled: the gate lets it through
            await engine.execution.drain()
            await step(sb, engine, 1)
            assert venue_orders(sb, "gate-1") == [], "an order left without its journal row"
            assert len(venue_orders(sb, "gate-2")) == 1
            assert engine.translator.orders["gate-1"].terminal  # rejected: the strategy and risk see it
            assert engine.risk.state is TradingState.REDUCING
            assert "JOURNAL_UNAVAILABLE" in engine.health.journal_failure
            await engine.shutdown()
            with contextlib.closing(sqlite3.connect(path)) as db:  # the cause is fixed
                db.execute("DROP TRIGGER disk_full")
                db.commit()
            engine2 = await resumed(engine, [])
            try:
                await step(sb, engine2, 1)
                assert engine2.risk.state is TradingState.ACTIVE
                engine2.bus.publish(order("gate-3", "30"))
                await engine2.execution.drain()
                await step(sb, engine2, 1)
                assert venue_orders(sb, "gate-1") == [] and len(venue_orders(sb, "gate-3")) == 1
            finally:
                await engine2.shutdown()
        requested = journal_requests(path)
        assert "gate-1" not in requested and {"gate-2", "gate-3"} <= set(requested)
        (rejection,) = [e for e in read_events(path, ("OrderRejected",)) if e.client_order_id == "gate-1"]
        assert rejection.reason.startswith("JOURNAL_UNAVAILABLE") and "disk is full" in rejection.reason
        said = [r for r in caplog.records if "new entries paused" in r.getMessage()]
        assert len(said) == 1 and said[0].exc_info is None, said  # one line, no traceback

    with caplog.at_level(logging.INFO):
        asyncio.run(body())


def test_an_unwritable_run_folder_stops_the_start_before_the_venue_or_the_journal(tmp_path: Path) -> None:
    async def body() -> None:
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        async with stepped_engine(blocker / "run", start=False) as (_sb, engine):
            with pytest.raises(PreflightError, match="journal folder"):
                await engine.start()
            assert not hasattr(engine, "journal") and engine.rest.stats.requests == 0  # nothing asked of the venue

    asyncio.run(body())
