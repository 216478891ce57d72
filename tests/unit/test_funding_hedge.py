"""The funding-hedge example on the bundled real FILUSDT klines: one short equal to the spot holding, held
through every settlement, and its funding tally close to the exchange's exact figure."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.data import sample_data_dir
from kinetic_empire.strategy.registry import build_registry


def test_the_hedge_is_placed_once_held_and_earns_positive_funding():
    cfg = BacktestConfig.from_mapping({
        "backtest": {"data": str(sample_data_dir()), "start": "2023-08-03", "end": "2023-10-01",
                     "funding_rate": 0.0001},
        "strategies": [{"name": "funding_hedge", "symbols": ["FILUSDT"], "params": {"spot_qty": 500.0}}],
        "risk": {"default_leverage": 2}})
    result = Backtest(cfg, build_registry()).run()
    (hedge,) = (r.strategy for r in result.runners)
    (pos,) = result.portfolio.positions()
    assert pos.quantity == D(-500) and hedge.state["rebalances"] == 1
    exact = float(result.portfolio.funding_total)
    assert exact > 0 and hedge.state["settlements"] == 176  # 3 a day from 08-03 08:00 to 10-01 00:00
    assert hedge.state["funding"] == pytest.approx(exact, rel=1e-3)  # mark = close here vs the exchange's open
