"""RiskConfig: defaults, the documented YAML shape, and every kind of bad input with its key path."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import yaml

from kinetic_empire.core.enums import TradingState
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.risk import RiskConfig, SizingMethod
from kinetic_empire.risk.config import __doc__ as CONFIG_DOC
from tests.support.risk_fakes import FakeAccount, Harness, all_brackets, all_rules

EXAMPLE = """
risk:
  default_leverage: 2
  leverage: {FILUSDT: 3}
  sizing:
    method: percent_equity
    percent: 10
  strategies:
    ema_cross: {sizing: {method: fixed_notional, notional: 200}}
    breakout: {sizing: {method: risk_per_trade, percent: 0.5}}
    trend: {sizing: {method: volatility_target, percent: 1, timeframe: 1h}}
  guards:
    max_open_positions: 10
    max_gross_exposure: 3.0
    max_symbol_exposure: {equity_fraction: 0.5}
    daily_loss_limit_pct: 5
    max_drawdown_pct: 20
    loss_streak: {losses: 3, cooldown_minutes: 60}
    min_liquidation_distance_pct: 10
    min_liquidation_distance_atr: {multiple: 3, timeframe: 1h}
  state: ACTIVE
  symbol_states: {BTCUSDT: REDUCING}
"""


def load(text: str) -> RiskConfig:
    return RiskConfig.from_mapping(yaml.safe_load(text)["risk"])


def error_path(data: dict, path: str = "risk") -> str:
    with pytest.raises(ConfigError) as info:
        RiskConfig.from_mapping(data, path)
    return info.value.path


def test_empty_config_gives_documented_defaults() -> None:
    cfg = RiskConfig.from_mapping({})
    assert cfg.default_leverage == 1
    assert cfg.sizing.method is SizingMethod.PERCENT_EQUITY and cfg.sizing.percent == 10
    assert cfg.guards.max_open_positions == 10
    assert cfg.guards.max_gross_exposure is None and cfg.guards.daily_loss_limit_pct is None
    assert cfg.state is TradingState.ACTIVE
    assert cfg.margin_buffer_pct == 1
    assert RiskConfig.from_mapping(None) == cfg


def test_example_yaml_parses() -> None:
    cfg = load(EXAMPLE)
    assert cfg.leverage_for("FILUSDT") == 3 and cfg.leverage_for("BTCUSDT") == 2
    assert cfg.sizing_for("ema_cross").notional == 200
    assert cfg.sizing_for("unknown").method is SizingMethod.PERCENT_EQUITY
    assert cfg.sizing_for("breakout").percent == D("0.5")
    trend = cfg.sizing_for("trend")
    assert (trend.timeframe, trend.atr_period, trend.atr_multiple) == ("1h", 14, 1)
    g = cfg.guards
    assert g.max_gross_exposure == D("3.0") and g.max_symbol_exposure.equity_fraction == D("0.5")
    assert g.loss_streak.losses == 3 and g.loss_streak.cooldown_minutes == 60
    assert g.min_liquidation_distance_atr.period == 14
    assert cfg.symbol_states["BTCUSDT"] is TradingState.REDUCING
    assert cfg.atr_needs() == {("1h", 14)}
    cfg.validate(all_rules(), all_brackets(), ["FILUSDT", "BTCUSDT"])


def test_module_docstring_yaml_is_valid() -> None:
    """The schema shown to users in the module docstring must itself load."""
    start = CONFIG_DOC.index("    risk:")
    end = CONFIG_DOC.index("Sizing methods")
    block = "\n".join(line[4:] for line in CONFIG_DOC[start:end].splitlines())
    assert RiskConfig.from_mapping(yaml.safe_load(block)["risk"]) == RiskConfig.from_mapping({})


def test_max_open_positions_can_be_switched_off() -> None:
    assert RiskConfig.from_mapping({"guards": {"max_open_positions": None}}).guards.max_open_positions is None


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"levrage": 2}, "risk.levrage"),
        ({"guards": {"max_open_position": 3}}, "risk.guards.max_open_position"),
        ({"sizing": {"method": "fixed_notional", "notional": 5, "percent": 3}}, "risk.sizing.percent"),
        ({"strategies": {"ema_cross": {"sizing": {"method": "kelly"}}}}, "risk.strategies.ema_cross.sizing.method"),
        (
            {"strategies": {"ema_cross": {"sizing": {"method": "fixed_notional"}}}},
            "risk.strategies.ema_cross.sizing.notional",
        ),
        (
            {"strategies": {"ema_cross": {"leverage": 3, "sizing": {"method": "fixed_notional", "notional": 1}}}},
            "risk.strategies.ema_cross.leverage",
        ),
        ({"sizing": {"method": "risk_per_trade", "percent": -1}}, "risk.sizing.percent"),
        ({"sizing": {"method": "risk_per_trade", "percent": 0}}, "risk.sizing.percent"),
        ({"sizing": {"method": "risk_per_trade", "percent": 101}}, "risk.sizing.percent"),
        ({"sizing": {"method": "risk_per_trade", "percent": "1"}}, "risk.sizing.percent"),
        ({"sizing": {"method": "fixed_quantity", "quantity": True}}, "risk.sizing.quantity"),
        ({"sizing": {"method": "fixed_quantity", "quantity": float("nan")}}, "risk.sizing.quantity"),
        ({"sizing": {"method": "volatility_target", "percent": 1, "timeframe": "7m"}}, "risk.sizing.timeframe"),
        (
            {"sizing": {"method": "volatility_target", "percent": 1, "timeframe": "1h", "atr_period": 0}},
            "risk.sizing.atr_period",
        ),
        ({"sizing": "percent_equity"}, "risk.sizing"),
        ({"default_leverage": 0}, "risk.default_leverage"),
        ({"default_leverage": 2.5}, "risk.default_leverage"),
        ({"default_leverage": "2"}, "risk.default_leverage"),
        ({"default_leverage": 126}, "risk.default_leverage"),
        ({"leverage": {"FILUSDT": 0}}, "risk.leverage.FILUSDT"),
        ({"leverage": {"filusdt": 2}}, "risk.leverage.filusdt"),
        ({"leverage": [2]}, "risk.leverage"),
        ({"margin_buffer_pct": -1}, "risk.margin_buffer_pct"),
        ({"guards": {"max_open_positions": 0}}, "risk.guards.max_open_positions"),
        ({"guards": {"max_gross_exposure": -3}}, "risk.guards.max_gross_exposure"),
        ({"guards": {"daily_loss_limit_pct": 0}}, "risk.guards.daily_loss_limit_pct"),
        ({"guards": {"max_drawdown_pct": 150}}, "risk.guards.max_drawdown_pct"),
        ({"guards": {"min_liquidation_distance_pct": 100}}, "risk.guards.min_liquidation_distance_pct"),
        ({"guards": {"loss_streak": {"losses": 3}}}, "risk.guards.loss_streak.cooldown_minutes"),
        ({"guards": {"loss_streak": {"losses": 0, "cooldown_minutes": 5}}}, "risk.guards.loss_streak.losses"),
        ({"guards": {"max_symbol_exposure": {"usdt": 5, "equity_fraction": 1}}}, "risk.guards.max_symbol_exposure"),
        ({"guards": {"max_symbol_exposure": {"usd": 5}}}, "risk.guards.max_symbol_exposure.usd"),
        (
            {"guards": {"min_liquidation_distance_atr": {"multiple": 3}}},
            "risk.guards.min_liquidation_distance_atr.timeframe",
        ),
        ({"state": "PAUSED"}, "risk.state"),
        ({"symbol_states": {"FILUSDT": "paused"}}, "risk.symbol_states.FILUSDT"),
    ],
)
def test_bad_values_name_their_key(data: dict, path: str) -> None:
    assert error_path(data) == path


def test_path_prefix_is_used() -> None:
    assert error_path({"state": "X"}, "backtest.risk") == "backtest.risk.state"


# ---------------------------------------------------------------------------------- exchange data


def validate_path(data: dict, symbols: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        RiskConfig.from_mapping(data).validate(all_rules(), all_brackets(), symbols)
    return info.value.path


def test_unknown_symbol_in_leverage() -> None:
    assert validate_path({"leverage": {"FOOUSDT": 2}}) == "risk.leverage.FOOUSDT"


def test_unknown_traded_symbol_is_named() -> None:
    with pytest.raises(ConfigError, match="FOOUSDT"):
        RiskConfig.from_mapping({}).validate(all_rules(), all_brackets(), ["BTCUSDT", "FOOUSDT"])


def test_leverage_above_first_bracket() -> None:
    top = all_brackets()["FILUSDT"].brackets[0].initial_leverage
    RiskConfig.from_mapping({"leverage": {"FILUSDT": top}}).validate(all_rules(), all_brackets())
    assert validate_path({"leverage": {"FILUSDT": top + 1}}) == "risk.leverage.FILUSDT"


def test_default_leverage_above_a_traded_symbols_max() -> None:
    rules = all_rules()
    traded = [b for s, b in all_brackets().items() if s in rules and rules[s].is_trading]
    low = min(traded, key=lambda b: b.brackets[0].initial_leverage)
    top = low.brackets[0].initial_leverage
    assert validate_path({"default_leverage": top + 1}, (low.symbol,)) == "risk.default_leverage"


def test_symbol_without_brackets_or_not_trading() -> None:
    rules, brackets = all_rules(), all_brackets()
    missing = next(s for s, r in rules.items() if r.is_trading and s not in brackets)
    assert validate_path({"leverage": {missing: 2}}) == f"risk.leverage.{missing}"
    halted = next(s for s, r in rules.items() if not r.is_trading)
    with pytest.raises(ConfigError, match="not trading"):
        RiskConfig.from_mapping({}).validate(rules, brackets, [halted])


def test_manager_refuses_bad_leverage_at_start_up() -> None:
    with pytest.raises(ConfigError) as info:
        Harness({"leverage": {"FILUSDT": 76}}, account=FakeAccount())
    assert info.value.path == "risk.leverage.FILUSDT"


def test_leverage_for_checks_default_against_brackets() -> None:
    h = Harness({"default_leverage": 100})
    assert h.rm.leverage_for("BTCUSDT") == 100
    with pytest.raises(ConfigError) as info:
        h.rm.leverage_for("FILUSDT")  # FILUSDT allows 75x at most
    assert info.value.path == "risk.default_leverage"
    with pytest.raises(ConfigError):
        h.rm.leverage_for("FOOUSDT")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"default_leverage": 126}, "risk.default_leverage: must be between 1 and 125, got 126"),
        ({"sizing": {"method": "risk_per_trade", "percent": 101}}, "risk.sizing.percent: must be <= 100, got 101"),
        ({"sizing": {"method": "kelly"}}, "risk.sizing.method: unknown sizing method 'kelly'; one of fixed_quantity"),
        ({"guards": {"loss_streak": {"losses": 3}}}, "risk.guards.loss_streak.cooldown_minutes: required"),
        ({"guards": {"max_symbol_exposure": {"usdt": 5, "equity_fraction": 1}}},
         "risk.guards.max_symbol_exposure: give exactly one of usdt, equity_fraction"),
        ({"strategies": {"ema_cross": {"sizing": {"method": "fixed_notional", "notional": 0}}}},
         "risk.strategies.ema_cross.sizing.notional: must be > 0, got 0"),
        ({"strategies": {"": {"sizing": {}}}}, "risk.strategies.: strategy ids must be non-empty strings"),
        ({"symbol_states": {"FILUSDT": "paused"}}, "risk.symbol_states.FILUSDT: unknown state 'paused'; one of ACTIVE"),
        ({"guards": {"key": 1}}, "risk.guards.key: API keys are never read from YAML"),
    ],
)  # fmt: skip
def test_bad_values_say_what_is_wrong(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        RiskConfig.from_mapping(data)
    assert str(info.value).startswith(expected)
