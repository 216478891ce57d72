"""Config mistakes that used to pass silently: duplicate keys, a typo in risk.strategies, bare-number dates."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.config import load_yaml
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.core.schema import time_ms
from kinetic_empire.data import sample_data_dir
from kinetic_empire.strategy.registry import build_registry

SEP15 = 1694736000000  # 2023-09-15 00:00 UTC


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("backtest:\n  start: 2023-08-10\n  end: 2023-09-30\n  start: 2023-08-20\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: line 4, column 3: invalid YAML: duplicate key 'start' "
                       r"\(first given on line 2\)"):
        load_yaml(f)
    f.write_text("a:\n  b: 1\nc:\n  b: 2\n")  # the same key in two mappings is fine
    assert load_yaml(f) == {"a": {"b": 1}, "c": {"b": 2}}


@pytest.mark.parametrize(("value", "expected"), [
    (20230915, SEP15),  # as the command line reads --start 20230915
    ("20230915", SEP15),
    ("2023-09-15", SEP15),
    (SEP15, SEP15),  # epoch ms: only numbers too large to be anything else
])
def test_dates_have_one_reading(value: object, expected: int) -> None:
    assert time_ms(value, "backtest.start") == expected


@pytest.mark.parametrize("value", [2023, 0, 123456789, -5])
def test_a_bare_number_that_is_no_date_is_refused(value: int) -> None:
    with pytest.raises(ConfigError, match=rf"backtest.start: a bare number {value} is not a date"):
        time_ms(value, "backtest.start")


def test_a_risk_override_for_a_strategy_not_in_the_config_is_an_error() -> None:
    cfg = BacktestConfig.from_mapping({
        "backtest": {"data": str(sample_data_dir()), "start": "2023-08-03", "end": "2023-08-10"},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h"}],
        "risk": {"strategies": {"ema_crosss": {"sizing": {"method": "fixed_notional", "notional": 200}}}},
    })  # fmt: skip
    with pytest.raises(ConfigError, match=r"risk\.strategies\.ema_crosss: no strategy named 'ema_crosss' exists "
                       r"\(strategies: .*ema_cross.*\); did you mean ema_cross\?"):
        Backtest(cfg, build_registry()).run()


def test_a_risk_override_for_an_existing_strategy_this_run_does_not_trade_is_allowed() -> None:
    cfg = BacktestConfig.from_mapping({
        "backtest": {"data": str(sample_data_dir()), "start": "2023-08-03", "end": "2023-08-10"},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h"}],
        "risk": {"strategies": {"rsi_reversion": {"sizing": {"method": "fixed_notional", "notional": 200}}}},
    })  # fmt: skip
    assert Backtest(cfg, build_registry()).run().klines_processed > 0
