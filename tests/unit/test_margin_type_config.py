"""Per-symbol margin type (``risk.margin_type``) next to per-symbol leverage (``risk.leverage``): parsed once,
a bad value is one line naming the key, and the backtest's exchange model holds each symbol's type."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.cli import main
from kinetic_empire.core.enums import MarginType
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.data import sample_data_dir
from kinetic_empire.resources import default_brackets, default_symbol_rules
from kinetic_empire.risk import RiskConfig
from kinetic_empire.strategy.registry import build_registry

FIL, NEAR = "FILUSDT", "NEARUSDT"


def test_overrides_and_the_runs_default() -> None:
    cfg = RiskConfig.from_mapping({"margin_type": {FIL: "isolated"}, "leverage": {FIL: 3}})
    assert (cfg.margin_type_for(FIL), cfg.margin_type_for(NEAR)) == (MarginType.ISOLATED, MarginType.CROSSED)
    iso = RiskConfig.from_mapping({"margin_type": {FIL: "CROSSED"}}, default_margin_type="ISOLATED")
    assert (iso.margin_type_for(FIL), iso.margin_type_for(NEAR)) == (MarginType.CROSSED, MarginType.ISOLATED)


@pytest.mark.parametrize(("risk", "message"), [
    ({"margin_type": {FIL: "isolate"}}, "risk.margin_type.FILUSDT: unknown margin type 'ISOLATE'; one of CROSSED, "
                                        "ISOLATED"),
    ({"margin_type": {FIL: 3}}, "risk.margin_type.FILUSDT: unknown margin type 3; one of CROSSED, ISOLATED"),
    ({"margin_type": {"filusdt": "ISOLATED"}}, "risk.margin_type.filusdt: not a symbol name: 'filusdt'"),
    ({"margin_type": "ISOLATED"}, "risk.margin_type: expected per-symbol margin types, e.g. {FILUSDT: ISOLATED}; "
                                  "for every symbol set backtest.margin_type (or live.margin_type)"),
    ({"margin_type": [FIL]}, "risk.margin_type: expected a mapping"),
])
def test_bad_values_name_the_key(risk: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        RiskConfig.from_mapping(risk)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_an_unknown_symbol_is_refused_against_exchange_info() -> None:
    cfg = RiskConfig.from_mapping({"margin_type": {"NOSUCHUSDT": "ISOLATED"}})
    with pytest.raises(ConfigError, match=r"^risk\.margin_type\.NOSUCHUSDT: unknown symbol NOSUCHUSDT"):
        cfg.validate(default_symbol_rules(full=True), default_brackets())


def config(tmp_path: Path, margin: str) -> Path:
    f = tmp_path / "bt.yaml"
    f.write_text(f"""backtest:
  data: {sample_data_dir()}
  start: 2023-08-03
  end: 2023-08-10
strategies:
  - name: ema_cross
    symbols: [FILUSDT, NEARUSDT]
    timeframe: 1h
risk:
  leverage: {{FILUSDT: 3}}
  margin_type: {margin}
""")
    return f


def test_the_backtests_exchange_sets_each_symbols_type_and_leverage(tmp_path: Path) -> None:
    result = Backtest(BacktestConfig.load(config(tmp_path, "{FILUSDT: ISOLATED}")), build_registry()).run()
    ex = result.exchange
    assert (ex.margin_type(FIL), ex.margin_type(NEAR)) == (MarginType.ISOLATED, MarginType.CROSSED)
    assert (ex.position(FIL)[2], ex.position(NEAR)[2]) == (3, 1)
    assert result.portfolio.trades, "ema_cross should trade this week"


def test_the_command_line_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["backtest", "--no-save", "--no-progress", "--config", str(config(tmp_path, "{FILUSDT: ISOLATD}"))])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "Traceback" not in err
    assert err.endswith("risk.margin_type.FILUSDT: unknown margin type 'ISOLATD'; one of CROSSED, ISOLATED"), err


def test_compare_names_a_margin_type_that_differs() -> None:
    from kinetic_empire.live.compare_config import config_mismatches

    strategies = [{"name": "ema_cross", "symbols": [FIL], "timeframe": "1h", "params": {}}]
    live = {"live": {"margin_type": "ISOLATED"}, "strategies": strategies, "risk": {}}
    backtest = {"backtest": {"margin_type": "CROSSED", "execution_timeframe": "1m"}, "strategies": strategies,
                "risk": {}}
    assert config_mismatches(live, backtest, lambda _n: None) == [
        "margin type differs: paper run ISOLATED, backtest CROSSED: margin and liquidation prices will differ"]
    same = {**backtest, "backtest": {"margin_type": "ISOLATED", "execution_timeframe": "1m"}}
    assert config_mismatches(live, same, lambda _n: None) == []
    per_symbol = {**backtest, "risk": {"margin_type": {FIL: "ISOLATED"}}}
    assert config_mismatches({**live, "live": {"margin_type": "CROSSED"}}, per_symbol, lambda _n: None) == [
        "risk settings differ (sizing, leverage, margin type or guards): sizes and denials will differ"]
