"""The interactive report: its figures (built as plain dicts), breakdown tables, and a real backtest's page."""

from __future__ import annotations

import json
import re
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig, save_results
from kinetic_empire.data import sample_data_dir
from kinetic_empire.report import figures
from kinetic_empire.report.breakdown import KEYS, group_by
from kinetic_empire.strategy.registry import build_registry

DAY = 86_400_000
T0 = 1_690_848_000_000  # 2023-08-01 00:00 UTC


def figures_in(html: str) -> dict[str, dict]:
    """Every chart slot's figure, by slot id, parsed from the page."""
    found = re.findall(r'<script type="application/json" id="([\w-]+)-data">(.*?)</script>', html, re.S)
    return {slot: json.loads(data) for slot, data in found}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, object]:
    config = BacktestConfig.from_mapping({
        "backtest": {"data": str(sample_data_dir()), "start": "2023-08-10", "end": "2023-10-01"},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h"},
                       {"name": "rsi_reversion", "symbols": ["NEARUSDT"], "timeframe": "15m"}],
        "risk": {"default_leverage": 2},
    })  # fmt: skip
    result = Backtest(config, build_registry()).run()
    return save_results(result, tmp_path_factory.mktemp("r"), "run"), result


def test_page_has_every_chart_and_the_trades_on_the_candles(report) -> None:
    out, result = report
    html = (out / "report.html").read_text()
    figs = figures_in(html)
    assert set(figs) == {"equity", "monthly", "pnl", "duration", "price0", "price1"}
    for slot in figs:  # each slot is drawn from its JSON
        assert f'id="{slot}" data-figure="{slot}-data"' in html
    names = [t["name"] for t in figs["equity"]["data"]]
    assert names == ["equity", "buy and hold", "drawdown %"]
    end = int(result.timestamps[-1])
    trades = [*result.portfolio.trades, *result.portfolio.open_trades(end)]  # open ones are drawn too
    for slot, symbol, indicator in (("price0", "FILUSDT", "ema(close, 20)"), ("price1", "NEARUSDT", "rsi(close, 14)")):
        data = figs[slot]["data"]
        assert data[0]["type"] == "candlestick" and data[0]["name"] == symbol
        assert indicator in [t.get("name") for t in data]
        entries = sorted(x for t in data if t.get("name") in ("long entry", "short entry") for x in t["x"])
        mine = [t for t in trades if t.symbol == symbol]
        assert entries == sorted(t.entry_time for t in mine) and len(mine) > 3
    # RSI lives on 0..100, not on NEAR's price near 1.3: it gets its own panel below the candles
    rsi = next(t for t in figs["price1"]["data"] if t.get("name") == "rsi(close, 14)")
    assert rsi["yaxis"] == "y2" and "yaxis2" in figs["price1"]["layout"]
    ema = next(t for t in figs["price0"]["data"] if t.get("name") == "ema(close, 20)")
    assert "yaxis" not in ema
    # breakdown tables by strategy, symbol, entry tag and exit reason, with the strategy's tags
    for heading in ("By strategy", "By symbol", "By entry tag", "By exit reason"):
        assert heading in html
    assert "oversold" in html and "signal (rsi back to middle)" in html


def test_key_trade_columns_come_first() -> None:
    from kinetic_empire.report.html import TRADE_HEADER

    assert TRADE_HEADER[:6] == ("#", "strategy", "symbol", "side", "entry tag", "entry (UTC)")
    assert "net PnL" in TRADE_HEADER[:12]


def test_monthly_returns_chain_month_ends() -> None:
    # 2023-08-01 .. 2023-10-15, one point a day: equity 1000 -> 1100 at the end of August -> 990 at the
    # end of September -> 1089 in October
    ts = np.arange(T0, T0 + 76 * DAY, DAY) + DAY - 1
    eq = np.full(ts.size, 1000.0)
    months = ts.astype("datetime64[ms]").astype("datetime64[M]").astype(int) % 12 + 1
    eq[months == 8] = 1100.0
    eq[months == 9] = 990.0
    eq[months == 10] = 1089.0
    years, grid = figures.monthly_returns(ts, eq, 1000.0)
    assert years == [2023]
    assert grid[0][7] == pytest.approx(10.0) and grid[0][8] == pytest.approx(-10.0)
    assert grid[0][9] == pytest.approx(10.0) and grid[0][:7] == [None] * 7 and grid[0][10:] == [None, None]


def test_buy_and_hold_is_equal_parts_from_the_first_close() -> None:
    closes = {"A": np.array([np.nan, 10.0, 20.0, np.nan]), "B": np.array([4.0, 4.0, 2.0, 3.0])}
    bh = figures.buy_and_hold(closes, 1000.0)
    # A: held from its first close (10), carried over its hole; B from 4
    assert bh.tolist() == pytest.approx([1000.0, 1000.0, 1250.0, 1375.0])
    assert figures.buy_and_hold({"A": np.array([np.nan])}, 1000.0) is None


def test_long_series_are_thinned_without_losing_extremes() -> None:
    n = 100_000
    rng = np.random.default_rng(1)
    close = 100 + np.cumsum(rng.normal(0, 0.1, n))
    high, low = close + rng.random(n), close - rng.random(n)
    chart = figures.PriceChart("X", "1m", "s", np.arange(n, dtype=np.int64) * 60_000, close, high, low, close,
                               {"ema": close})  # fmt: skip
    fig = figures.price_figure(chart, [])
    candles = fig["data"][0]
    assert len(candles["x"]) <= figures.MAX_CANDLES
    assert max(candles["high"]) == pytest.approx(high.max()) and min(candles["low"]) == pytest.approx(low.min())
    assert len(fig["data"][1]["y"]) == len(candles["x"])
    ts = np.arange(n, dtype=np.int64) * 60_000
    eq_fig = figures.equity_figure(ts, close, close - close.max())
    assert len(eq_fig["data"][0]["x"]) < 5 * figures.EQUITY_POINTS
    assert min(eq_fig["data"][0]["y"]) == pytest.approx(close.min())
    json.dumps(eq_fig, allow_nan=False)  # NaN never reaches the JSON
    assert figures.numbers([1.0, float("nan"), float("inf")]) == [1.0, None, None]


def _trade(sid: str, pnl: str, tag: str, reason: str, exit_tag: str = "", ms: int = 3_600_000) -> SimpleNamespace:
    return SimpleNamespace(strategy_id=sid, symbol="FILUSDT", net_pnl=D(pnl), return_pct=D(pnl) / 10,
                           entry_tag=tag, exit_reason=reason, exit_tag=exit_tag, duration_ms=ms)  # fmt: skip


def test_breakdowns_group_closed_trades() -> None:
    trades = [
        _trade("a", "10", "dip", "signal", "trend lost"),
        _trade("a", "-5", "dip", "stop_loss"),
        _trade("b", "20", "", "take_profit", ms=7_200_000),
        _trade("b", "99", "dip", "open"),  # still open: not in any breakdown
    ]
    by_tag = {g.key: g for g in group_by(trades, KEYS["entry tag"])}
    assert set(by_tag) == {"dip", "(no tag)"}
    dip = by_tag["dip"]
    assert (dip.trades, dip.wins, dip.net_pnl, dip.profit_factor) == (2, 1, 5.0, 2.0)
    assert by_tag["(no tag)"].profit_factor is None and by_tag["(no tag)"].avg_duration_ms == 7_200_000
    reasons = [g.key for g in group_by(trades, KEYS["exit reason"])]
    assert reasons == ["take_profit", "signal (trend lost)", "stop_loss"]  # largest net PnL first
    assert [g.key for g in group_by(trades, KEYS["strategy"])] == ["b", "a"]
