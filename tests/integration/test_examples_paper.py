"""The newer example strategies, each in a sandbox paper run and a backtest of the same klines: trade for
trade the same (issue 13: every example strategy is tested both ways)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.live.config import LiveConfig
from kinetic_empire.live.report import Replayed
from tests.support.live import DATA, RISK, START, K, backtest_of, step, stepped_engine, trade_key

pytestmark = pytest.mark.integration

KLINES = 150


def paper_and_backtest(tmp_path: Path, strategies: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    run_dir = tmp_path / "runs" / "paper"
    # the usual short window: the warm-up is sized from the indicators' needs (a 15m EMA needs far more
    # 1m klines than 120), and the live values then equal the backtest's
    cfg = LiveConfig.from_mapping({"live": {"window": 120}, "strategies": strategies, "risk": RISK,
                                   "sandbox": {"data": str(DATA), "speed": 0, "start": START, "updates_per_kline": K}})

    async def body() -> None:
        async with stepped_engine(run_dir, config=cfg, market_fills="next_update") as (sb, engine):
            await step(sb, engine, KLINES)
            assert engine.execution.rejected == 0

    asyncio.run(body())
    expected = [trade_key(t) for t in backtest_of(KLINES, strategies).portfolio.trades]
    return [trade_key(t) for t in Replayed(run_dir).portfolio.trades], expected


def test_multi_timeframe_example_paper_equals_backtest(tmp_path: Path) -> None:
    strategies = [{"name": "mtf_trend", "symbols": ["FILUSDT", "NEARUSDT"], "timeframe": "1m",
                   "params": {"trend_timeframe": "15m", "trend": 4, "fast": 5, "slow": 13, "stop_pct": 0.4}}]
    got, expected = paper_and_backtest(tmp_path, strategies)
    assert len(expected) >= 4, expected
    assert got == expected
