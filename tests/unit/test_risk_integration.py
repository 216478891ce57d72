"""A real backtest (replay feed, simulated exchange, portfolio, report) with the risk guards firing.

A strategy that buys every other hour and sells the next, on a market that falls 0.4 % an hour,
loses on every round trip: the daily loss limit halts entries for the rest of each UTC day, the
drawdown limit finally halts them until a human reset, and both show up in the report's denials.
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import numpy as np

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.backtest.results import save_results
from kinetic_empire.core.enums import TradingState
from kinetic_empire.data import KlineFrame
from kinetic_empire.strategy import Strategy
from kinetic_empire.strategy.registry import StrategyRegistry

HOUR = 3_600_000
START = 1_704_067_200_000  # 2024-01-01 00:00 UTC


class Churn(Strategy):
    """Long when flat, flat when long: one losing round trip every two hours in a falling market."""

    name = "churn"
    timeframe = "1h"

    def on_kline(self, kline):
        if self.position:
            self.close_position()
        else:
            self.buy(stop_loss=self.close[-1] * 0.9)


def falling(n: int = 24 * 6) -> KlineFrame:
    close = 10.0 * 0.996 ** np.arange(1, n + 1)
    open_ = np.concatenate([[10.0], close[:-1]])
    return KlineFrame(
        "FILUSDT", "1h", START + np.arange(n, dtype=np.int64) * HOUR, open_,
        np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999, close, np.full(n, 1000.0),
    )  # fmt: skip


def run(tmp_path: Path) -> tuple:
    cfg = BacktestConfig.from_mapping(
        {
            "backtest": {"data": "unused", "initial_balance": 1000, "funding_rate": 0},
            "strategies": [{"name": "churn", "symbols": ["FILUSDT"]}],
            "risk": {
                "default_leverage": 3,
                "sizing": {"method": "percent_equity", "percent": 250},
                "guards": {"daily_loss_limit_pct": 2, "max_drawdown_pct": 10},
            },
        }
    )
    registry = StrategyRegistry()
    registry.add(Churn, "test")
    result = Backtest(cfg, registry, frames={"FILUSDT": falling()}).run()
    folder = save_results(result, tmp_path, "guards")
    return result, folder


def test_guards_fire_in_a_backtest_and_reach_the_report(tmp_path: Path) -> None:
    result, folder = run(tmp_path)
    denials = result.portfolio.denials_by_code
    assert denials.get("DAILY_LOSS_LIMIT", 0) > 0, denials
    assert denials.get("MAX_DRAWDOWN", 0) > 0, denials
    assert set(denials) <= {"DAILY_LOSS_LIMIT", "MAX_DRAWDOWN"}, denials  # every order was exchange-valid
    assert not [o for o in result.portfolio.orders if getattr(o, "status", "") == "REJECTED"]

    changes = result.risk.state_changes
    causes = [c.cause.split()[0] for c in changes]
    assert causes.count("DAILY_LOSS_LIMIT") >= 1 and "MAX_DRAWDOWN" in causes
    assert any(c.state is TradingState.ACTIVE and c.cause.startswith("daily loss limit reset") for c in changes)
    assert changes[-1].state is TradingState.REDUCING and result.risk.state is TradingState.REDUCING
    # halts start within a UTC day and lift only at midnight
    for c in changes:
        if c.state is TradingState.ACTIVE:
            assert c.ts_event % (24 * HOUR) < HOUR

    csv = (folder / "denials.csv").read_text()
    assert "DAILY_LOSS_LIMIT" in csv and "MAX_DRAWDOWN" in csv
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["risk_denials"] == sum(denials.values())
    # equity at the end is at most 10 % (plus the last trade's loss) below the peak
    assert result.portfolio.equity() >= D(1000) * D("0.85")


def test_liquidation_estimate_matches_the_simulated_exchange() -> None:
    """The guard's liquidation price is the one the exchange model will liquidate at."""
    from kinetic_empire.core.clock import ReplayClock
    from kinetic_empire.core.enums import OrderType, Side
    from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange
    from kinetic_empire.resources import default_brackets, default_symbol_rules
    from kinetic_empire.risk import liquidation_price

    rules, brackets = default_symbol_rules(full=True), default_brackets()
    for side, qty, wallet in ((Side.BUY, D(4000), D(1000)), (Side.SELL, D(40_000), D(10_000))):
        ex = SimulatedExchange(
            rules, brackets, clock=ReplayClock(START), emit=lambda e: None, symbols=["FILUSDT"],
            config=ExchangeConfig(initial_balance=wallet, funding_rate=D(0), fill_market_immediately=True),
        )  # fmt: skip
        ex.set_leverage("FILUSDT", 20)
        ex.on_bar("FILUSDT", START, 2.0, 2.0, 2.0, 2.0)
        ex.submit(symbol="FILUSDT", side=side, order_type=OrderType.MARKET, quantity=qty)
        signed, entry, _ = ex.position("FILUSDT")
        assert signed == qty * side.sign
        ours = liquidation_price(
            quantity=signed, entry_price=entry, wallet_balance=ex.wallet, brackets=brackets["FILUSDT"]
        )
        theirs = ex.liquidation_price("FILUSDT")
        assert theirs > 0 and abs(ours - theirs) / theirs < D("1e-9"), (side, ours, theirs)
