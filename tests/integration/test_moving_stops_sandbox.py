"""Moving and trailing stops through the live engine and the local sandbox, trade for trade with a backtest.

The example strategy ``trailing_breakeven`` enters with a stop, moves it to break-even (``set_stop``) and then
makes it a trailing stop (``set_stop(trail_pct=...)``, a TRAILING_STOP_MARKET algo order). Through the sandbox
every move is a new algo order placed over signed REST, acknowledged, and only then the old one cancelled; the
trailing stop triggers inside the sandbox's exchange on its replayed price path. The backtest walks each kline
along the same path, so the trades must be the same, and ``kinetic compare`` must find nothing to explain. It
runs under cross margin and under isolated margin (set by the engine from ``live.margin_type`` over REST, and by
the backtest from ``backtest.margin_type``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig, save_results
from kinetic_empire.core.enums import OrderType
from kinetic_empire.core.events import CancelRequest, OrderAccepted, OrderRequest
from kinetic_empire.live.compare import compare_runs, format_comparison
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.journal import read_events
from kinetic_empire.live.report import Replayed
from kinetic_empire.strategy.registry import build_registry
from tests.support.live import DATA, START, START_MS, K, step, stepped_engine, trade_key

pytestmark = pytest.mark.integration

KLINES = 150
STRATEGIES: list[dict[str, Any]] = [
    {"name": "trailing_breakeven", "symbols": ["FILUSDT", "NEARUSDT"], "timeframe": "1m",
     "params": {"fast": 5, "slow": 13, "atr_stop": 1.5, "trail_at": 2.0, "trail_pct": 0.3}},
]
# fixed notional: the size does not depend on the other symbol's mark at the decision (a feed-timing matter)
RISK: dict[str, Any] = {"default_leverage": 2, "sizing": {"method": "fixed_notional", "notional": 2000}}


def backtest_of(klines: int, margin_type: str) -> Any:
    end = START_MS + klines * 60_000
    cfg = BacktestConfig.from_mapping({
        "backtest": {"data": str(DATA), "start": START, "end": end, "execution_timeframe": "1m", "gap_policy": "keep",
                     "margin_type": margin_type},
        "strategies": STRATEGIES,
        "risk": RISK,
    })
    return Backtest(cfg, build_registry([])).run()


@pytest.mark.parametrize("margin_type", ["CROSSED", "ISOLATED"])
def test_moved_and_trailing_stops_paper_run_matches_backtest(tmp_path: Path, margin_type: str) -> None:
    run_dir = tmp_path / "runs" / "stops"
    isolated: list[Any] = []
    cfg = LiveConfig.from_mapping({
        "live": {"window": 120, "margin_type": margin_type},
        "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K},
        "strategies": STRATEGIES,
        "risk": RISK,
    })

    async def body() -> None:
        async with stepped_engine(run_dir, config=cfg, market_fills="next_update") as (sb, engine):
            for _ in range(KLINES // 10):
                await step(sb, engine, 10)
                ex = sb.account().exchange
                isolated.extend(ex.isolated_wallet(s) for s in ("FILUSDT", "NEARUSDT") if ex.position(s)[0])
            assert engine.execution.rejected == 0
            assert {ex.margin_type(s).value for s in ("FILUSDT", "NEARUSDT")} == {margin_type}

    asyncio.run(body())
    result = backtest_of(KLINES, margin_type)
    expected = [trade_key(t) for t in result.portfolio.trades]
    got = [trade_key(t) for t in Replayed(run_dir).portfolio.trades]
    assert len(expected) >= 10
    assert got == expected
    # the engine set the margin type from its config; isolated positions held their own margin
    assert all(w > 0 for w in isolated) if margin_type == "ISOLATED" else not any(isolated)
    assert result.exchange.margin_type("FILUSDT").value == margin_type

    # the run moved stops and trailed them, and each move was accepted before the old stop was cancelled
    events = read_events(run_dir / "journal.sqlite", ("OrderRequest", "OrderAccepted", "CancelRequest"))
    placed = Counter(e.order_type for e in events if isinstance(e, OrderRequest) and e.reduce_only
                     and e.order_type is not OrderType.MARKET)
    assert placed[OrderType.STOP_MARKET] >= 2 and placed[OrderType.TRAILING_STOP_MARKET] >= 2, placed
    seen: dict[str, int] = {}
    for i, e in enumerate(events):
        if isinstance(e, OrderAccepted):
            seen.setdefault(e.client_order_id, i)
    moves = [(i, e) for i, e in enumerate(events) if isinstance(e, OrderRequest) and e.reduce_only
             and e.order_type is not OrderType.MARKET]
    for i, move in moves:
        cancels = [j for j, c in enumerate(events) if isinstance(c, CancelRequest) and j > i
                   and c.symbol == move.symbol]
        if cancels and move.client_order_id in seen:
            assert seen[move.client_order_id] < cancels[0], f"{move.client_order_id}: old stop cancelled first"

    bt_dir = tmp_path / "bt"
    save_results(result, tmp_path, "bt")
    comparison = compare_runs(run_dir, bt_dir)
    assert comparison.identical, format_comparison(comparison)
