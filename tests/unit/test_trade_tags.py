"""Tags given to buy()/sell()/close_position() reach trades, orders and CSVs; entries in the direction
already held are ignored unless the strategy opts into scaling in."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig, save_results
from kinetic_empire.backtest.results import summary_text
from kinetic_empire.data import sample_data_dir
from kinetic_empire.strategy.registry import build_registry


def _config(name: str, symbol: str, timeframe: str, start: str = "2023-08-10", **risk) -> BacktestConfig:
    return BacktestConfig.from_mapping({
        "backtest": {"data": str(sample_data_dir()), "start": start, "end": "2023-09-01"},
        "strategies": [{"name": name, "symbols": [symbol], "timeframe": timeframe}],
        "risk": {"default_leverage": 2, **risk},
    })  # fmt: skip


def test_tags_follow_entries_and_signal_exits(tmp_path: Path) -> None:
    result = Backtest(_config("rsi_reversion", "NEARUSDT", "15m"), build_registry()).run()
    trades = result.portfolio.trades
    assert len(trades) > 10
    for t in trades:
        assert t.entry_tag == ("oversold" if t.side.value == "LONG" else "overbought")
        # a signal exit carries close_position's tag; a stop or take-profit is the exchange's, untagged
        assert t.exit_tag == ("rsi back to middle" if t.exit_reason == "signal" else "")
    assert {t.exit_reason for t in trades} >= {"signal", "stop_loss"}
    tagged = {o.tag for o in result.portfolio.orders}
    assert tagged == {"oversold", "overbought", "rsi back to middle", ""}
    protective = [o for o in result.portfolio.orders if o.order_type in ("STOP_MARKET", "TAKE_PROFIT_MARKET")]
    assert protective and all(o.tag == "" for o in protective)

    out = save_results(result, tmp_path, "tags")
    rows = list(csv.DictReader(io.StringIO((out / "trades.csv").read_text())))
    assert [r["entry_tag"] for r in rows[: len(trades)]] == [t.entry_tag for t in trades]
    assert "rsi back to middle" in (out / "orders.csv").read_text()


ALWAYS = """
from kinetic_empire import Strategy


class Always(Strategy):
    timeframe = "1h"
    add_to_position = {add}

    def on_kline(self, kline):
        self.buy(quantity=10, tag="again")
"""


@pytest.mark.parametrize("add", [False, True])
def test_entries_in_the_held_direction(tmp_path: Path, add: bool) -> None:
    (tmp_path / "always.py").write_text(ALWAYS.format(add=add))
    result = Backtest(_config("always", "FILUSDT", "1h", start="2023-08-20"), build_registry([tmp_path])).run()
    runner = result.runners[0]
    entries = [o for o in result.portfolio.orders if o.status == "FILLED"]
    position = result.portfolio.position("FILUSDT").quantity
    if add:  # each call is one more entry: the long grows kline after kline
        assert runner.entries_ignored == 0 and len(entries) > 100 and position == 10 * len(entries)
    else:  # freqtrade's default: the first buy opens the long, the rest are ignored and counted
        assert len(entries) == 1 and position == 10
        delivered = len(runner.history_open_time) - _klines_before(result)
        assert runner.intents_emitted == 1 and runner.entries_ignored == delivered - 1  # every kline after the first
        assert "Entries ignored, position already held in that direction" in summary_text(result)


def _klines_before(result) -> int:
    """Klines of the history before the backtest's start (warm-up only, never delivered)."""
    import numpy as np

    return int(np.searchsorted(result.runners[0].history_open_time, result.config.start))
