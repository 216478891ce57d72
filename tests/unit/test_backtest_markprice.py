"""Backtests on the mark price (replayed mark-price klines from the store) and mark/ticker events for the
strategies that ask for them; nothing for those that don't."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.backtest.markprice import AlignedMarks, rolling_24h, settled_rates
from kinetic_empire.backtest.results import summary_text
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.events import MarkPriceUpdated, TickerUpdated
from kinetic_empire.data import KlineStore, load_klines
from kinetic_empire.download.stores import MarkKlineStore
from kinetic_empire.strategy.market_hooks import attach_market_hooks, market_data_wanted
from kinetic_empire.strategy.registry import build_registry
from kinetic_empire.strategy.runner import StrategyRunner

ROOT = Path(__file__).resolve().parents[1]
KLINES = ROOT / "data" / "sandbox" / "FILUSDT-1m-2023-08.csv.gz"
PROBES = ROOT / "data" / "strategies_market"
START, END = 1_690_848_000_000 + 3 * 3_600_000, 1_690_848_000_000 + 20 * 3_600_000  # 03:00 to 20:00


@pytest.fixture(scope="module")
def registry():
    return build_registry([PROBES])


@pytest.fixture(scope="module")
def klines():
    return load_klines(KLINES, end=END + 3_600_000)


def store(tmp_path: Path, klines, mark_shift: float | None) -> Path:
    """A store with the real klines and, unless None, mark klines = the klines moved by ``mark_shift``."""
    KlineStore(tmp_path).write(klines)
    if mark_shift is not None:
        m = klines
        MarkKlineStore(tmp_path).write(replace(m, open=m.open + mark_shift, high=m.high + mark_shift,
                                               low=m.low + mark_shift, close=m.close + mark_shift,
                                               volume=np.zeros(len(m))))
    return tmp_path


def run(registry, data: Path, name: str = "mark_probe", **params):
    cfg = BacktestConfig.from_mapping({
        "backtest": {"data": str(data), "start": START, "end": END, "funding_rate": 0.0001},
        "strategies": [{"name": name, "symbols": ["FILUSDT"], "timeframe": "1m", "params": params}],
        "risk": {"default_leverage": 2}})
    return Backtest(cfg, registry).run()


def test_marks_from_the_store_drive_events_equity_and_the_report(registry, klines, tmp_path):
    with_marks = run(registry, store(tmp_path / "m", klines, 0.01), entry_at=5)
    without = run(registry, store(tmp_path / "n", klines, None), entry_at=5)
    (probe,) = (r.strategy for r in with_marks.runners)
    n = probe.state["klines"]
    assert n == (END - START) // 60_000
    assert probe.state["marks"] == n and probe.state["tickers"] == n  # one of each per execution kline
    assert probe.state["mark"] == pytest.approx(klines.close[klines.open_time == END - 60_000][0] + 0.01)
    assert probe.state["next_funding_time"] == END - END % (8 * 3_600_000) + 8 * 3_600_000
    assert probe.state["funding_rate"] == pytest.approx(0.0001)
    (plain,) = (r.strategy for r in without.runners)
    assert plain.state["mark"] == pytest.approx(klines.close[klines.open_time == END - 60_000][0])  # mark = last
    assert "mark price from mark-price klines (FILUSDT 1,200/1,200 klines)" in summary_text(with_marks)  # warm-up too
    assert "mark price = last price" in summary_text(without)
    # a short of 100 FIL marked 0.01 higher: the equity curve ends 1 USDT lower (less the mark's funding change)
    assert with_marks.equity[-1] - without.equity[-1] == pytest.approx(-1.0, abs=0.01)
    assert [t.entry_price for t in with_marks.portfolio.trades] == [t.entry_price for t in without.portfolio.trades]


def test_a_strategy_without_hooks_gets_nothing_and_nothing_is_built(registry, klines, tmp_path):
    result = run(registry, store(tmp_path, klines, 0.01), name="klines_only")
    (s,) = (r.strategy for r in result.runners)
    assert s.state["n"] == (END - START) // 60_000 and np.isnan(s.mark_price)
    bus = EventBus()
    runner = StrategyRunner(result.runners[0].strategy, bus, ReplayClock(), strategy_id="k", id_prefix="k")
    hooks, wanted = attach_market_hooks([runner], bus, live=False)
    assert hooks == [] and not wanted and market_data_wanted([runner]).mark_price == frozenset()
    assert bus.handlers(MarkPriceUpdated, "FILUSDT") == () and bus.handlers(TickerUpdated, "FILUSDT") == ()


def test_rolling_ticker_and_settled_funding_see_no_future():
    frame = load_klines(KLINES, end=START + 3 * 86_400_000)
    o, h, lo, v, _q, pct = rolling_24h(frame)
    i = 2000
    window = slice(i - 1439, i + 1)
    assert o[i] == frame.open[i - 1439] and h[i] == frame.high[window].max() and lo[i] == frame.low[window].min()
    assert v[i] == pytest.approx(frame.volume[window].sum())
    assert pct[i] == pytest.approx((frame.close[i] - o[i]) / o[i] * 100)
    from decimal import Decimal as D
    settle = 1_690_876_800_000  # 08:00
    rates = settled_rates(np.array([settle - 1, settle, settle + 1]), {settle: D("0.0003")}, D("0.0001"))
    assert rates.tolist() == [0.0001, 0.0003, 0.0003]  # the next settlement's rate is never shown before it


def test_marks_align_by_open_time_with_holes_as_nan(klines):
    e = klines.between(START, START + 10 * 60_000)
    m = e.between(START + 2 * 60_000, START + 10 * 60_000)
    a = AlignedMarks.of(m, e)
    assert a.covered == 8 and np.isnan(a.close[:2]).all() and (a.close[2:] == e.close[2:]).all()


def test_the_readme_example_runs_in_a_backtest_on_marks(klines, tmp_path):
    text = (ROOT.parent / "README.md").read_text(encoding="utf-8")
    block = text.split("### Ticker, mark price, funding and state", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "funding_watch.py").write_text("from kinetic_empire import Strategy\n\n" + block, encoding="utf-8")
    cfg = BacktestConfig.from_mapping({
        "backtest": {"data": str(store(tmp_path / "s", klines, 0.01)), "start": START, "end": END,
                     "funding_rate": 0.001},
        "strategies": [{"name": "funding_watch", "symbols": ["FILUSDT"], "timeframe": "1m"}],
        "risk": {"default_leverage": 2}})
    result = Backtest(cfg, build_registry([folder])).run()
    (s,) = (r.strategy for r in result.runners)
    assert s.state["settlements"] == 3  # 03:00 (first update), 08:00 and 16:00
    assert [t.entry_tag for t in result.portfolio.trades] + [p.symbol for p in result.portfolio.positions()] == [
        "FILUSDT"]  # one carry short, still open
    assert "day_change" in s.state
