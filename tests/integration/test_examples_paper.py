"""The example strategies, each in a sandbox paper run and a backtest of the same klines: trade for trade the
same, and ``kinetic compare`` finds nothing to explain (issue 13: every example strategy is tested both ways).

Where the others are: ``ema_cross`` and ``rsi_reversion`` in test_live_sandbox.py
(test_paper_run_matches_backtest_trade_for_trade), ``trailing_breakeven`` in test_moving_stops_sandbox.py (cross
and isolated margin). Here: ``mtf_trend``, ``donchian_breakout`` (with per-symbol margin type and leverage from
``risk.margin_type`` / ``risk.leverage``) and ``funding_hedge`` (held through a funding settlement, whose funding
both reports show as received and paid).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig, save_results
from kinetic_empire.live.compare import compare_runs, format_comparison
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.report import REPORT_DIR, Replayed, build_report
from kinetic_empire.sandbox import SandboxServer
from kinetic_empire.strategy.registry import build_registry
from tests.support.live import DATA, RISK, START, START_MS, K, step, stepped_engine, trade_key

pytestmark = pytest.mark.integration

KLINES = 150
FIL, NEAR = "FILUSDT", "NEARUSDT"


def paper_and_backtest(
    tmp_path: Path,
    strategies: list[dict[str, Any]],
    *,
    klines: int = KLINES,
    risk: dict[str, Any] | None = None,
    margin_type: str = "CROSSED",
    check: Callable[[SandboxServer], None] | None = None,
) -> tuple[Path, Any, Path]:
    """A stepped paper run and a backtest of the same klines (fills and triggers on 1m klines); returns the
    run folder, the backtest result and its saved results folder. ``check`` looks at the sandbox every 10
    klines."""
    risk = RISK if risk is None else risk
    run_dir = tmp_path / "runs" / "paper"
    # the usual short window: the warm-up is sized from the indicators' needs (a 15m EMA needs far more
    # 1m klines than 120), and the live values then equal the backtest's
    cfg = LiveConfig.from_mapping({"live": {"window": 120, "margin_type": margin_type}, "strategies": strategies,
                                   "risk": risk,
                                   "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K}})

    async def body() -> None:
        async with stepped_engine(run_dir, config=cfg, market_fills="next_update") as (sb, engine):
            for done in range(0, klines, 10):
                await step(sb, engine, min(10, klines - done))
                if check is not None:
                    check(sb)
            assert engine.execution.rejected == 0

    asyncio.run(body())
    bt_cfg = BacktestConfig.from_mapping({
        "backtest": {"data": str(DATA), "start": START, "end": START_MS + klines * 60_000, "execution_timeframe": "1m",
                     "gap_policy": "keep", "margin_type": margin_type},
        "strategies": strategies,
        "risk": risk,
    })
    result = Backtest(bt_cfg, build_registry([])).run()
    save_results(result, tmp_path, "bt")
    return run_dir, result, tmp_path / "bt"


def same_trades_and_clean_compare(run_dir: Path, result: Any, bt_dir: Path) -> list[Any]:
    expected = [trade_key(t) for t in result.portfolio.trades]
    assert [trade_key(t) for t in Replayed(run_dir).portfolio.trades] == expected
    comparison = compare_runs(run_dir, bt_dir)
    assert comparison.identical and not comparison.material, format_comparison(comparison)
    return expected


def test_multi_timeframe_example_paper_equals_backtest(tmp_path: Path) -> None:
    strategies = [{"name": "mtf_trend", "symbols": [FIL, NEAR], "timeframe": "1m",
                   "params": {"trend_timeframe": "15m", "trend": 4, "fast": 5, "slow": 13, "stop_pct": 0.4}}]
    expected = same_trades_and_clean_compare(*paper_and_backtest(tmp_path, strategies))
    assert len(expected) >= 4, expected


def test_breakout_example_with_per_symbol_margin_type_and_leverage(tmp_path: Path) -> None:
    """FILUSDT isolated at 3x, NEARUSDT at the run's cross margin and default 2x: the engine sets each over REST
    (POST /fapi/v1/marginType and /fapi/v1/leverage), the backtest's exchange model the same."""
    strategies = [{"name": "donchian_breakout", "symbols": [FIL, NEAR], "timeframe": "1m",
                   "params": {"entry_period": 20, "exit_period": 10, "atr_period": 14, "atr_stop": 2.0}}]
    risk = {**RISK, "sizing": {"method": "fixed_notional", "notional": 2000},
            "leverage": {FIL: 3}, "margin_type": {FIL: "ISOLATED"}}
    wallets: dict[str, list[Any]] = {FIL: [], NEAR: []}

    def check(sb: SandboxServer) -> None:
        ex = sb.account().exchange
        assert (ex.margin_type(FIL).value, ex.margin_type(NEAR).value) == ("ISOLATED", "CROSSED")
        assert (ex.position(FIL)[2], ex.position(NEAR)[2]) == (3, 2)
        for sym in wallets:
            if ex.position(sym)[0]:
                wallets[sym].append(ex.isolated_wallet(sym))

    run_dir, result, bt_dir = paper_and_backtest(tmp_path, strategies, risk=risk, check=check)
    expected = same_trades_and_clean_compare(run_dir, result, bt_dir)
    assert {t[0] for t in expected} == {FIL, NEAR} and len(expected) >= 4, expected
    assert wallets[FIL] and all(w > 0 for w in wallets[FIL])  # FIL's positions held their own margin
    assert wallets[NEAR] and not any(wallets[NEAR])  # NEAR's were backed by the cross wallet
    ex = result.exchange
    assert (ex.margin_type(FIL).value, ex.margin_type(NEAR).value) == ("ISOLATED", "CROSSED")
    assert (ex.position(FIL)[2], ex.position(NEAR)[2]) == (3, 2)


def test_funding_hedge_example_reports_funding_received_and_paid(tmp_path: Path) -> None:
    """A short of 500 FIL from 05:01, held through the 08:00 UTC settlement at the default rate 0.0001, with the
    mark at the settlement taken as the 08:00 kline's open (4.212; no mark-price klines in this data): it receives
    500 x 4.212 x 0.0001 = 0.2106 USDT and pays nothing. Both reports say exactly that, and compare pairs the
    still-open hedge with the backtest's, funding included in its PnL."""
    strategies = [{"name": "funding_hedge", "symbols": [FIL], "timeframe": "1m", "params": {"spot_qty": 500.0}}]
    run_dir, result, bt_dir = paper_and_backtest(tmp_path, strategies, klines=200)  # 05:00 to 08:20
    (pos,) = result.portfolio.positions()
    assert pos.quantity == -500
    assert same_trades_and_clean_compare(run_dir, result, bt_dir) == []  # no closed trade: the hedge stays open
    ((live, backtest),) = compare_runs(run_dir, bt_dir).open_at_end
    assert live == backtest and live.side == "SHORT" and live.quantity == 500
    build_report(run_dir)
    for folder in (bt_dir, run_dir / REPORT_DIR):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert (metrics["funding_received"], metrics["funding_paid"], metrics["funding"]) == (0.2106, 0, 0.2106)
        (row,) = (folder / "trades.csv").read_text().splitlines()[1:]
        assert ",0.2106," in row, row  # the open hedge's funding
