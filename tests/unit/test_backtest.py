"""The backtest runner end to end on bundled real klines, and its parity with a plain numpy model."""

from __future__ import annotations

import sys
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig, save_results
from kinetic_empire.core.enums import PositionSide
from kinetic_empire.core.errors import ConfigError, DataError, StrategyError
from kinetic_empire.data import sample_data_dir
from kinetic_empire.strategy.registry import build_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import synthetic_klines

SAMPLE = str(sample_data_dir())


def _config(strategies, risk=None, **backtest) -> BacktestConfig:
    base = {"data": SAMPLE, "start": "2023-08-03", "end": "2023-10-01"}
    return BacktestConfig.from_mapping({"backtest": {**base, **backtest}, "strategies": strategies,
                                        "risk": risk or {"default_leverage": 2}})  # fmt: skip


@pytest.fixture(scope="module")
def registry():
    return build_registry()


# ------------------------------------------------------------------------------ parity with numpy


def _numpy_ema_cross(frame, fast: int, slow: int, qty: D, fee: D) -> list[tuple[int, int, D, D, D]]:
    """The benchmark spec as plain array code: long-only EMA cross, next-open fills, fee per side."""
    close = pd.Series(frame.close)
    f = close.ewm(span=fast, adjust=False, min_periods=fast).mean().to_numpy()
    s = close.ewm(span=slow, adjust=False, min_periods=slow).mean().to_numpy()
    with np.errstate(invalid="ignore"):
        up = np.zeros(len(f), bool)
        dn = np.zeros(len(f), bool)
        up[1:] = (f[:-1] <= s[:-1]) & (f[1:] > s[1:])
        dn[1:] = (s[:-1] <= f[:-1]) & (s[1:] > f[1:])
    trades = []
    long_since = None
    entry_price = D(0)
    for i in range(len(f) - 1):
        if up[i] and long_since is None:
            long_since, entry_price = i + 1, D(repr(float(frame.open[i + 1]))).quantize(D("0.001"))
        elif dn[i] and long_since is not None:
            exit_price = D(repr(float(frame.open[i + 1]))).quantize(D("0.001"))
            pnl = (exit_price - entry_price) * qty - (entry_price + exit_price) * qty * fee
            trades.append((int(frame.open_time[long_since]), int(frame.open_time[i + 1]), entry_price, exit_price, pnl))
            long_since = None
    return trades


def test_ema_cross_matches_the_numpy_model_trade_for_trade(registry):
    frame = synthetic_klines(30_000, seed=3)
    config = BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 1_000_000, "fees": {"maker": 0.0004, "taker": 0.0004},
                     "funding_rate": 0},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m",
                        "params": {"fast": 20, "slow": 50, "long_only": True}}],
        "risk": {"default_leverage": 1, "sizing": {"method": "fixed_quantity", "quantity": 100}},
    })  # fmt: skip
    result = Backtest(config, registry, frames={"FILUSDT": frame}).run()
    expected = _numpy_ema_cross(frame, 20, 50, D(100), D("0.0004"))
    got = [(t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.net_pnl) for t in result.portfolio.trades]
    assert len(got) == len(expected) > 100
    assert got == expected
    assert all(t.side is PositionSide.LONG for t in result.portfolio.trades)


# ---------------------------------------------------------------------------------- real klines


@pytest.mark.parametrize(
    ("name", "timeframe", "params"),
    [
        ("ema_cross", "1h", {}),
        ("rsi_reversion", "15m", {}),
        ("donchian_breakout", "1h", {}),
    ],
)
def test_example_strategies_trade_both_ways_on_real_klines(registry, name, timeframe, params):
    config = _config([{"name": name, "symbols": ["FILUSDT", "NEARUSDT"] if name != "ema_cross" else ["FILUSDT"],
                       "timeframe": timeframe, "params": params}],
                     risk={"default_leverage": 2, "sizing": {"method": "percent_equity", "percent": 10}})  # fmt: skip
    result = Backtest(config, registry).run()
    sides = {t.side for t in result.portfolio.trades}
    assert sides == {PositionSide.LONG, PositionSide.SHORT}, f"{name} traded only {sides}"
    assert np.isfinite(result.equity).all()
    wallet = result.portfolio.wallet_balance()
    realized = sum(t.net_pnl for t in result.portfolio.trades)
    open_fees = result.portfolio.fees_total - sum(t.fees for t in result.portfolio.trades)
    # the wallet is the initial balance plus closed trades' net PnL, minus fees (and funding) of a still-open one
    assert abs(wallet - (D(10000) + realized - open_fees)) < D("5")
    if name == "rsi_reversion":
        reasons = {t.exit_reason for t in result.portfolio.trades}
        assert "stop_loss" in reasons or "take_profit" in reasons


def test_two_strategies_several_symbols_and_a_higher_timeframe(registry):
    config = _config(
        [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h"},
         {"name": "rsi_reversion", "symbols": ["NEARUSDT"], "timeframe": "15m"}],
        execution_timeframe="1m",
    )  # fmt: skip
    result = Backtest(config, registry).run()
    strategies = {t.strategy_id for t in result.portfolio.trades}
    assert strategies == {"ema_cross", "rsi_reversion"}
    # 1m execution klines of both symbols plus the 1h and 15m strategy klines
    minutes = (pd.Timestamp("2023-10-01") - pd.Timestamp("2023-08-03")).total_seconds() / 60
    assert result.klines_processed == int(2 * minutes + minutes / 60 + minutes / 15)


def test_same_inputs_give_byte_identical_results(registry, tmp_path):
    config = _config([{"name": "rsi_reversion", "symbols": ["NEARUSDT"]}], start="2023-09-01")
    paths = []
    for run in ("a", "b"):
        result = Backtest(config, registry).run()
        paths.append(save_results(result, tmp_path, run))
    names = sorted(p.name for p in paths[0].iterdir())
    assert {"trades.csv", "orders.csv", "equity.csv", "metrics.json", "equity.png", "report.html"} <= set(names)
    for name in names:
        assert (paths[0] / name).read_bytes() == (paths[1] / name).read_bytes(), name


def test_warmup_uses_history_before_start(registry):
    config = _config([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h"}], start="2023-08-10")
    result = Backtest(config, registry).run()
    first_trade = min(t.entry_time for t in result.portfolio.trades)
    assert first_trade >= pd.Timestamp("2023-08-10", tz="UTC").value // 1_000_000
    runner = result.runners[0]
    assert runner.warmup == 50


# ----------------------------------------------------------------------------------- bad input


def test_config_errors_name_the_key(registry, tmp_path):
    with pytest.raises(ConfigError, match=r"backtest\.strat: unknown key"):
        BacktestConfig.from_mapping({"backtest": {"strat": 1}, "strategies": [{"name": "x", "symbols": ["A"]}]})
    with pytest.raises(ConfigError, match=r"backtest\.end: must be after"):
        BacktestConfig.from_mapping({"backtest": {"start": "2023-09-01", "end": "2023-08-01"},
                                     "strategies": [{"name": "x", "symbols": ["A"]}]})  # fmt: skip
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.timeframe: unknown timeframe"):
        BacktestConfig.from_mapping({"strategies": [{"name": "x", "symbols": ["A"], "timeframe": "7m"}]})
    with pytest.raises(ConfigError, match="one strategy per symbol"):
        BacktestConfig.from_mapping({"strategies": [{"name": "a", "symbols": ["FILUSDT"]},
                                                    {"name": "b", "symbols": ["FILUSDT"]}]})  # fmt: skip
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("backtest: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line"):
        BacktestConfig.load(bad_yaml)
    config = _config([{"name": "ema_cross", "symbols": ["FILUSDT"], "params": {"fats": 3}}])
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.params\.fats"):
        Backtest(config, registry).run()
    config = _config([{"name": "ema_cross", "symbols": ["DOESNOTEXIST"]}])
    with pytest.raises(ConfigError, match="unknown symbol DOESNOTEXIST"):
        Backtest(config, registry).run()


def test_missing_data_is_a_clear_error(registry):
    config = _config([{"name": "ema_cross", "symbols": ["BTCUSDT"]}])
    with pytest.raises(DataError, match="no BTCUSDT klines"):
        Backtest(config, registry).run()


def test_gappy_data_stops_unless_a_policy_is_chosen(registry, tmp_path):
    src = Path(__file__).parents[1] / "data" / "bad"
    gap_files = [p for p in src.iterdir() if "gap" in p.name]
    assert gap_files, "tests/data/bad should hold a file with a gap"
    config = _config([{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m"}], data=str(gap_files[0]),
                     start=None, end=None)  # fmt: skip
    with pytest.raises(DataError, match="gap"):
        Backtest(config, registry).run()


def test_a_failing_strategy_stops_the_run_with_its_event(registry, tmp_path):
    (tmp_path / "boom.py").write_text(
        "from kinetic_empire import Strategy\n"
        "class Boom(Strategy):\n"
        "    timeframe = '1h'\n"
        "    def on_kline(self, kline):\n"
        "        if kline.open_time > 1691100000000: raise ValueError('bad idea')\n"
    )
    reg = build_registry([tmp_path])
    with pytest.raises(StrategyError, match=r"boom.*ValueError: bad idea.*KlineClosed"):
        Backtest(_config([{"name": "boom", "symbols": ["FILUSDT"]}]), reg).run()


def test_failed_write_leaves_no_results_folder(registry, tmp_path, monkeypatch):
    config = _config([{"name": "ema_cross", "symbols": ["FILUSDT"]}], start="2023-09-20")
    result = Backtest(config, registry).run()
    import kinetic_empire.report.writer as writer

    def explode(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(writer, "render_equity_png", explode)
    with pytest.raises(OSError):
        save_results(result, tmp_path, "broken")
    assert list(tmp_path.iterdir()) == []
