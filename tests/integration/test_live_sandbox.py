"""The live engine against the local sandbox over loopback: parity with a backtest, reconnects, listenKey
expiry, a stale feed, shutdown, and secrets kept out of every file the run writes."""

from __future__ import annotations

import asyncio
import copy
import io
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.core.enums import IntentAction, TradingState
from kinetic_empire.core.events import (
    CancelAllRequest,
    KlineClosed,
    OperatorCommand,
    OrderIntent,
    OrderRequest,
    PositionChanged,
    TradingStateChanged,
)
from kinetic_empire.live.compare import compare_runs, format_comparison
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.journal import read_events, read_meta
from kinetic_empire.live.report import Replayed, build_report
from kinetic_empire.live.status import StatusView
from kinetic_empire.resources import exchange_info_payload
from kinetic_empire.sandbox import FaultConfig
from tests.support.live import (
    DATA,
    RISK,
    START,
    START_MS,
    K,
    backtest_of,
    live_config,
    log_file,
    sandbox_position,
    step,
    stepped_engine,
    trade_key,
)
from tests.support.waiting import until

pytestmark = pytest.mark.integration

KLINES = 150


def test_paper_run_matches_backtest_trade_for_trade(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "parity"
    secrets: list[str] = []

    async def body() -> None:
        with log_file(tmp_path / "kinetic.log"):
            # market orders wait for the next update, as the backtest fills them at the next open
            async with stepped_engine(run_dir, market_fills="next_update") as (sb, engine):
                secrets.extend([sb.api_key, sb.api_secret])
                await step(sb, engine, KLINES)
                assert engine.feed.backfilled == 0 and engine.feed.duplicates == 0
                assert engine.execution.rejected == 0

    asyncio.run(body())
    result = backtest_of(KLINES)
    expected = [trade_key(t) for t in result.portfolio.trades]
    replay = Replayed(run_dir)
    got = [trade_key(t) for t in replay.portfolio.trades]
    assert len(expected) >= 10, "the strategies should trade in this window"
    assert {t[0] for t in expected} == {"FILUSDT", "NEARUSDT"}
    assert {t.exit_reason for t in result.portfolio.trades} >= {"signal", "stop_loss"}
    assert got == expected

    # the journal: schema version, venue and account identity, every kline once and in order
    meta = read_meta(run_dir / "journal.sqlite")
    assert meta["schema_version"] == 1 and meta["venue"] == "sandbox" and len(meta["account"]) == 12
    klines = [e for e in read_events(run_dir / "journal.sqlite", ("KlineClosed",)) if isinstance(e, KlineClosed)]
    for sym in ("FILUSDT", "NEARUSDT"):
        times = [k.open_time for k in klines if k.symbol == sym]
        assert times == [START_MS + i * 60_000 for i in range(KLINES)]

    # the report from the journal is a backtest's results folder, and compare finds nothing to explain
    report = build_report(run_dir)
    assert {p.name for p in report.iterdir()} >= {"trades.csv", "orders.csv", "equity.csv", "metrics.json",
                                                  "report.html", "equity.png"}
    bt_dir = tmp_path / "bt"
    from kinetic_empire.backtest import save_results

    save_results(result, tmp_path, "bt")
    comparison = compare_runs(run_dir, bt_dir)
    assert comparison.identical, format_comparison(comparison)

    # secrets never reach the log, the journal or the report
    files = [tmp_path / "kinetic.log", *run_dir.rglob("*")]
    assert (tmp_path / "kinetic.log").stat().st_size > 1000
    for f in files:
        if f.is_file():
            data = f.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"secret found in {f}"


def test_reconnects_backfill_every_kline_once_and_reconcile(tmp_path: Path) -> None:
    """Streams dropped at random by the sandbox: no kline missed or duplicated, positions reconciled."""
    faults = FaultConfig(enabled=True, seed=7, ws_drop_rate=0.02)

    async def body() -> None:
        async with stepped_engine(tmp_path / "drops", faults=faults) as (sb, engine):
            seen: list[KlineClosed] = []
            engine.bus.subscribe(KlineClosed, seen.append)
            await step(sb, engine, 100)
            sb.faults.cfg.enabled = False
            for conn in list(sb.conns):  # connections keep their fault settings: make fresh ones
                conn.drop()
            await asyncio.sleep(0.05)
            for _ in range(100):
                if engine.feed.connected and engine.user.connected:
                    break
                await asyncio.sleep(0.05)
            await step(sb, engine, 1)
            for _ in range(100):
                if len(seen) >= 2 * 101:
                    break
                await asyncio.sleep(0.02)
            assert engine.feed.reconnects >= 2 and engine.feed.backfilled >= 2
            assert engine.user.reconnects >= 1
            for sym in ("FILUSDT", "NEARUSDT"):
                times = [k.open_time for k in seen if k.symbol == sym]
                assert times == [START_MS + i * 60_000 for i in range(101)], sym
                assert engine.portfolio.position(sym).quantity == sandbox_position(sb, sym)
            assert engine.portfolio.wallet_balance() == sb.account().exchange.wallet

    asyncio.run(body())


def test_listen_key_expiry_makes_a_new_key_and_reconciles(tmp_path: Path) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / "lk") as (sb, engine):
            await step(sb, engine, 20)
            first = engine.user.listen_key
            assert sb.users.expire_due(force=True) == 1  # listenKeyExpired on the stream
            for _ in range(100):
                if engine.user.connected and engine.user.listen_key not in (None, first):
                    break
                await asyncio.sleep(0.02)
            assert engine.user.listen_key != first and engine.user.keys_created == 2
            # a key closed without notice: the reconnect is refused (-1125) and a new key is made
            sb.users.close(sb.account())
            for _ in range(200):
                if engine.user.connected and engine.user.keys_created == 3:
                    break
                await asyncio.sleep(0.02)
            assert engine.user.keys_created == 3 and engine.user.connected
            await step(sb, engine, 60)
            for sym in ("FILUSDT", "NEARUSDT"):
                assert engine.portfolio.position(sym).quantity == sandbox_position(sb, sym)
            assert engine.execution.placed > 0

    asyncio.run(body())


def test_stale_feed_pauses_entries_and_resumes(tmp_path: Path) -> None:
    async def body() -> None:
        async with stepped_engine(tmp_path / "stale", stale_after_s=0.3) as (sb, engine):
            states: list[TradingStateChanged] = []
            engine.bus.subscribe(TradingStateChanged, states.append)
            await step(sb, engine, 2)
            # nothing played: the feed goes quiet (waited for, not slept: a loaded machine may take longer)
            await until(lambda: engine.health.paused_for_stale, "entries paused for the quiet feed")
            assert engine.risk.state is TradingState.REDUCING and states[-1].cause.startswith("FEED_STALE")
            paused = len(states)

            async def flow() -> TradingState:  # data flows again, until the watchdog has seen it
                while engine.health.paused_for_stale:
                    await sb.step_updates(1)
                    await asyncio.sleep(0.01)
                return engine.risk.state  # read in the step that saw it: a starved loop may find it quiet again

            assert await asyncio.wait_for(flow(), 20) is TradingState.ACTIVE
            assert states[paused - 1].state is TradingState.REDUCING and states[paused].state is TradingState.ACTIVE
            assert states[paused].cause.startswith("FEED_FRESH"), states[paused]

    asyncio.run(body())


def test_shutdown_flatten_cancels_and_closes_everything(tmp_path: Path) -> None:
    cfg = live_config(shutdown="flatten")

    async def body() -> None:
        async with stepped_engine(tmp_path / "flat", config=cfg) as (sb, engine):
            for _ in range(60):
                await step(sb, engine, 1)
                if any(p.quantity for p in engine.portfolio.positions()):
                    break
            assert any(p.quantity for p in engine.portfolio.positions())
            # the status view: redrawn in place on a terminal, one line per refresh otherwise
            tty = io.StringIO()
            view = StatusView(engine, tty, tty=True)
            view.redraw()
            view.redraw()
            text = tty.getvalue()
            assert text.count("Kinetic Empire live") == 2 and f"\x1b[{view._shown}F\x1b[J" in text
            assert "FILUSDT" in text and "NEARUSDT" in text and "risk ACTIVE" in text
            assert "STOP_MARKET" in text or "TAKE_PROFIT_MARKET" in text or "trades" in text
            line = StatusView(engine, io.StringIO(), tty=False).line()
            assert "\n" not in line and "equity" in line and "feed ok" in line
            durable: list[tuple[str, bool]] = []  # (symbol, CancelAllRequest committed when the DELETE left)
            real = engine.rest.signed

            async def watched(method: str, path: str, params: Any = None, *a: Any, **kw: Any) -> Any:
                if method == "DELETE" and path == "/fapi/v1/allOpenOrders":
                    db = sqlite3.connect(f"file:{engine.journal.path}?mode=ro", uri=True)
                    rows = db.execute("SELECT symbol FROM events WHERE kind='CancelAllRequest'").fetchall()
                    db.close()
                    durable.append((params["symbol"], (params["symbol"],) in rows))
                return await real(method, path, params, *a, **kw)

            engine.rest.signed = watched  # type: ignore[method-assign]
            task = asyncio.ensure_future(engine.shutdown())
            while not task.done():  # the sandbox must play a price update for the closing orders to fill
                await sb.step_updates(1)
                await asyncio.sleep(0.02)
            await task
            acct = sb.account()
            assert all(sandbox_position(sb, s) == 0 for s in ("FILUSDT", "NEARUSDT"))
            assert acct.open_orders(None) == [] and acct.open_algos(None) == []
            assert engine.portfolio.positions() == []
            assert sorted(durable) == [("FILUSDT", True), ("NEARUSDT", True)]  # journaled before sent

    asyncio.run(body())
    meta = read_meta(tmp_path / "flat" / "journal.sqlite")
    assert meta["shutdown"] == "flatten"
    assert Decimal(str(meta["initial_balance"])) == Decimal(10000)
    # the flatten went down the same road as a strategy's orders: command, cancel-all, CLOSE intents, requests
    events = list(read_events(tmp_path / "flat" / "journal.sqlite"))
    (command,) = [e for e in events if isinstance(e, OperatorCommand)]
    assert (command.action, command.source) == ("flatten", "shutdown")
    at = events.index(command)
    held = {e.symbol: e.quantity for e in events[:at] if isinstance(e, PositionChanged)}  # believed at the command
    held = {sym: q for sym, q in held.items() if q}
    after = events[at:]
    assert sorted(e.symbol for e in after if isinstance(e, CancelAllRequest)) == ["FILUSDT", "NEARUSDT"]
    closes = [e for e in after if isinstance(e, OrderIntent)]
    assert held and sorted(i.symbol for i in closes) == sorted(held)
    assert all(i.action is IntentAction.CLOSE and i.strategy_id == "shutdown" for i in closes)
    requests = [e for e in after if isinstance(e, OrderRequest)]
    assert {r.intent_id for r in requests} == {i.intent_id for i in closes}
    assert all(r.reduce_only and r.quantity == abs(held[r.symbol]) for r in requests)
    states = [e for e in events if isinstance(e, TradingStateChanged) and e.symbol is None]
    assert [s.state for s in states[-2:]] == [TradingState.REDUCING, TradingState.HALTED]


def test_flatten_rounds_an_off_step_position_to_the_market_step(tmp_path: Path) -> None:
    """A position off the market lot step (a limit fill, a manual trade) is closed by a reduce-only market
    order rounded up to the step, which the venue trims to the position: the rules apply to a flatten too."""
    info = copy.deepcopy(exchange_info_payload(False))
    near = next(s for s in info["symbols"] if s["symbol"] == "NEARUSDT")
    lot = next(f for f in near["filters"] if f["filterType"] == "LOT_SIZE")
    lot.update(stepSize="0.1", minQty="0.1")  # limit orders on a finer grid than market orders (step 1)
    near["quantityPrecision"] = 1
    quiet = [{"name": "ema_cross", "symbols": ["NEARUSDT"], "timeframe": "1m", "params": {"fast": 40, "slow": 100}}]
    cfg = LiveConfig.from_mapping({"live": {"window": 120, "shutdown": "flatten"}, "strategies": quiet,
                                   "risk": RISK, "sandbox": {"data": str(DATA), "speed": 0, "start": START,
                                                             "updates_per_kline": K}})

    async def body() -> None:
        async with stepped_engine(tmp_path / "odd", config=cfg, stale_after_s=0, exchange_info=info) as (sb, engine):
            await step(sb, engine, 1)
            price = Decimal((await engine.rest.get("/fapi/v1/ticker/price", {"symbol": "NEARUSDT"}))["price"])
            await engine.rest.signed("POST", "/fapi/v1/order", {  # by hand, on the same account
                "symbol": "NEARUSDT", "side": "BUY", "type": "LIMIT", "quantity": "10.3", "timeInForce": "GTC",
                "price": str((price * Decimal("1.01")).quantize(Decimal("0.001"))), "newClientOrderId": "manual-1"})
            await step(sb, engine, 1)
            assert sandbox_position(sb, "NEARUSDT") == Decimal("10.3")
            assert engine.portfolio.position("NEARUSDT").quantity == Decimal("10.3")
            task = asyncio.ensure_future(engine.shutdown())
            while not task.done():
                await sb.step_updates(1)
                await asyncio.sleep(0.02)
            await task
            assert sandbox_position(sb, "NEARUSDT") == 0

    asyncio.run(body())
    events = list(read_events(tmp_path / "odd" / "journal.sqlite"))
    (close,) = [e for e in events if isinstance(e, OrderRequest) and e.strategy_id == "shutdown"]
    assert (close.symbol, close.quantity, close.reduce_only) == ("NEARUSDT", Decimal(11), True)
    assert any("10.3→11" in note for note in close.adjustments), close.adjustments
