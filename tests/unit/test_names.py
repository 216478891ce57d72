"""One rule for names that become file names: refused ones say what and where; ordinary ones pass."""

from __future__ import annotations

import pytest

from kinetic_empire.core.errors import ConfigError, PluginError
from kinetic_empire.core.names import safe_name, to_safe_name
from kinetic_empire.strategy import Strategy
from kinetic_empire.strategy.registry import StrategyRegistry, build_registry

BAD = ["../../x", "a/b", "..", ".", "", "a" * 300, ".hidden", "a\\b", "x\n", "a b", "c:d", "/abs"]
GOOD = ["r1", "20260101-120000-sandbox-ema_cross+rsi_reversion", "my.run_2", "a" * 100, "A-B"]


@pytest.mark.parametrize("value", BAD)
def test_unsafe_names_are_refused_naming_what_and_where(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        safe_name(value, "run id", "--run-id")
    assert str(refused.value).startswith("--run-id: run id ") and "cannot be used as a file name" in str(refused.value)
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize("value", GOOD)
def test_ordinary_names_pass_unchanged(value: str) -> None:
    assert safe_name(value, "run id", "--run-id") == value


def test_generated_ids_are_made_safe() -> None:
    assert to_safe_name("20260101-pkg.mod:Class-abc") == "20260101-pkg.mod_Class-abc"
    assert to_safe_name("../x") == "_x"
    for value in BAD:
        safe_name(to_safe_name(value), "id", "here")


def test_a_strategy_name_that_would_nest_folders_is_refused() -> None:
    class Nested(Strategy):
        name = "a/b"

    with pytest.raises(PluginError, match="strategy name 'a/b' cannot be used in a folder name"):
        StrategyRegistry().add(Nested, "test")
    assert build_registry([]).names()  # every shipped strategy passes the rule
