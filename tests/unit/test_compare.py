"""``kinetic compare``'s judgement: mismatched configs warned about, harmless differences told apart from
material ones (only those exit 3), trades still open at the end counted apart."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import yaml

from kinetic_empire.backtest import BacktestConfig
from kinetic_empire.live.compare import EDGE, Comparison, Pair, Trade, _differences, format_comparison
from kinetic_empire.live.compare_config import config_mismatches, registry_defaults
from kinetic_empire.live.config import LiveConfig

CONFIG = Path(__file__).parents[2] / "config"
T = 1_691_071_200_000


def trade(**kw) -> Trade:
    base = dict(symbol="FILUSDT", side="LONG", quantity=D("100"), entry_time=T, entry_price=D("4.21"),
                exit_time=T + 3_600_000, exit_price=D("4.3"), exit_reason="signal", net_pnl=D("8.5"))  # fmt: skip
    return Trade(**(base | kw))


def test_shipped_paper_and_backtest_configs_match() -> None:
    live = LiveConfig.load(CONFIG / "live.sandbox.yaml").to_dict()
    backtest = BacktestConfig.load(CONFIG / "backtest.sandbox.yaml").to_dict()
    assert config_mismatches(live, backtest, registry_defaults()) == []
    # and the default backtest example does not: every difference is named
    example = BacktestConfig.load(CONFIG / "backtest.example.yaml").to_dict()
    found = "\n".join(config_mismatches(live, example, registry_defaults()))
    assert "ema_cross: timeframe differs: paper run 5m, backtest 1h" in found
    assert "ema_cross: parameters differ (paper run vs backtest): fast 8.0 vs 20.0, slow 21.0 vs 50.0" in found
    assert "rsi_reversion: timeframe differs: paper run 1m, backtest 15m" in found
    assert "risk settings differ" in found and "execution_timeframe: 1m" in found


def test_defaults_make_written_and_omitted_parameters_equal() -> None:
    live = {"strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": None, "params": {}}]}
    bt = {"strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h",
                          "params": {"fast": 20, "slow": "50"}}],
          "backtest": {"execution_timeframe": "1m"}}  # fmt: skip
    assert config_mismatches(live, bt, registry_defaults()) == []
    bt["strategies"][0]["symbols"] = ["NEARUSDT"]
    assert config_mismatches(live, bt, registry_defaults()) == [
        "ema_cross: symbols differ: paper run ['FILUSDT'], backtest ['NEARUSDT']"]
    assert "configuration is missing" in config_mismatches({}, bt)[0]


def test_fill_latency_and_ticks_are_harmless_the_rest_material() -> None:
    base = trade()
    later = trade(entry_time=T + 15_000)  # same kline, a later price update
    diffs, material = _differences(later, base, D("0.05"))
    assert diffs and diffs[0].startswith("timing:") and not material
    # prices written with different precision are the same price
    assert _differences(trade(entry_price=D("4.2100")), base, D("0.05")) == ([], False)
    # latency's consequences: a later fill at that moment's price, a size one lot off
    drifted = trade(entry_time=T + 120_000, entry_price=D("4.22"), quantity=D("100.1"))
    diffs, material = _differences(drifted, base, D("0.05"))
    assert len(diffs) == 3 and not material
    for other in (trade(entry_time=T + 600_000), trade(quantity=D("90")), trade(exit_reason="stop_loss"),
                  trade(entry_price=D("4.3"))):  # fmt: skip
        assert _differences(other, base, D("0.05"))[1], other


def test_exit_code_follows_material_differences_only() -> None:
    harmless = Comparison([Pair(trade(), trade(), ["timing: ..."], False)], [], [(trade(), f"{EDGE}: ...")],
                          (T, T + 1))  # fmt: skip
    assert not harmless.identical and not harmless.material
    assert "only harmless differences" in format_comparison(harmless)
    missed = Comparison([], [(trade(), "missed signal: no intent at that time")], [], (T, T + 1))
    assert missed.material
    assert Comparison([Pair(trade(), trade(), ["size: ..."], True)], [], [], (T, T + 1)).material


def test_open_trades_are_counted_apart_and_warnings_come_first() -> None:
    still = trade(exit_reason="open")
    c = Comparison([], [], [], (T, T + 1), open_at_end=[(still, trade())], config_warnings=["fees differ: a, b"])
    text = format_comparison(c)
    assert text.splitlines()[0] == "warning: fees differ: a, b"
    assert "1 still open at the end of the paper run" in text
    assert "  o open at the end: FILUSDT LONG 100 @ 4.21 2023-08-03 14:00; the backtest's trade entered" in text
    assert c.identical and not c.material


def test_example_configs_parse() -> None:
    for path in sorted(CONFIG.glob("backtest*.yaml")):
        BacktestConfig.load(path)
        assert "strategies" in yaml.safe_load(path.read_text())
