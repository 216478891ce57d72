"""The best parameters written back as a config that loads to the trial's own config; which strategy a
study tunes in a multi-strategy config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kinetic_empire.backtest import BacktestConfig
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.research.results import best_config
from kinetic_empire.research.settings import OptimizeSettings
from kinetic_empire.research.study import check_target
from kinetic_empire.research.trial import trial_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "backtest.example.yaml"


@pytest.mark.parametrize("from_file", [True, False])
def test_best_config_loads_back_to_the_trials_config(from_file: bool) -> None:
    config = BacktestConfig.load(EXAMPLE)
    params = {"period": 9, "oversold": 22.5}
    base = yaml.safe_load(EXAMPLE.read_text()) if from_file else None
    data = best_config(config, 1, params, base)
    loaded = BacktestConfig.from_mapping(yaml.safe_load(yaml.safe_dump(data)))
    expected = trial_config(config, 1, params)
    assert replace(loaded, source=None) == replace(expected, source=None)
    assert loaded.strategies[1].params == {"period": 9, "oversold": 22.5, "overbought": 70}
    assert loaded.strategies[0] == config.strategies[0]


def test_the_strategy_to_tune() -> None:
    names = ["ema_cross", "rsi_reversion"]
    assert check_target(OptimizeSettings(strategy="rsi_reversion"), names, None) == 1
    assert check_target(OptimizeSettings(), ["ema_cross"], None) == 0
    with pytest.raises(ConfigError, match=r"the config has 2 strategies .*name the one to tune"):
        check_target(OptimizeSettings(), names, "x.yaml")
    with pytest.raises(ConfigError, match="'donchian_breakout' is not in the config's strategies"):
        check_target(OptimizeSettings(strategy="donchian_breakout"), names, None)
