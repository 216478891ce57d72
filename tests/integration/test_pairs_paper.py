"""The pairs example (one strategy, two symbols) in a sandbox paper run and a backtest of the same klines:
trade for trade the same, and ``kinetic compare`` of the two finds nothing to explain (issue 13 item 5)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kinetic_empire.backtest import save_results
from kinetic_empire.live.compare import compare_runs, format_comparison
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.report import Replayed
from kinetic_empire.strategy.group import GroupRunner
from tests.support.live import DATA, RISK, START, K, backtest_of, step, stepped_engine, trade_key

pytestmark = pytest.mark.integration

KLINES = 150
PAIRS = [{"name": "pairs_spread", "symbols": ["FILUSDT", "NEARUSDT"], "timeframe": "1m",
          "params": {"lookback": 20, "entry_z": 1.5, "exit_z": 0.3}}]


def test_pairs_example_paper_equals_backtest_and_compare_is_clean(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "paper"
    cfg = LiveConfig.from_mapping({"live": {"window": 120}, "strategies": PAIRS, "risk": RISK,
                                   "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K}})

    async def body() -> None:
        async with stepped_engine(run_dir, config=cfg, market_fills="next_update") as (sb, engine):
            (runner,) = engine.runners
            assert isinstance(runner, GroupRunner) and runner.symbols == ("FILUSDT", "NEARUSDT")
            await step(sb, engine, KLINES)
            assert engine.execution.rejected == 0
            assert runner.skipped == 0 and runner.late == 0  # both legs' klines of every time arrived in time

    asyncio.run(body())
    result = backtest_of(KLINES, PAIRS)
    expected = [trade_key(t) for t in result.portfolio.trades]
    got = [trade_key(t) for t in Replayed(run_dir).portfolio.trades]
    assert len(expected) >= 10 and {t[0] for t in expected} == {"FILUSDT", "NEARUSDT"}, expected
    assert got == expected
    save_results(result, tmp_path, "bt")
    comparison = compare_runs(run_dir, tmp_path / "bt")
    assert comparison.identical, format_comparison(comparison)
