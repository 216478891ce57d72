"""The search space, objectives, constraints and settings of kinetic optimize: what they accept and the
one-line errors for bad input (empty or inverted space, unknown parameter or objective)."""

from __future__ import annotations

import itertools

import optuna
import pytest

from kinetic_empire import Param, Strategy
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.research.objectives import Constraint, parse_constraints, parse_objective
from kinetic_empire.research.settings import OptimizeSettings, WalkForward, with_overrides
from kinetic_empire.research.space import SearchSpace, parse_cli_space
from kinetic_empire.research.walkforward import make_windows


class Toy(Strategy):
    fast = Param(10, "fast", min=2, max=50)
    slow = Param(40, "slow", min=3)
    ratio = Param(1.5, "ratio", min=0.5, max=3.0)
    mode = Param("a", "mode", choices=("a", "b", "c"))
    flag = Param(False, "flag")


def test_default_space_is_every_fully_declared_param() -> None:
    space = SearchSpace.build(Toy, {}, {})
    assert space.names == ["fast", "ratio", "mode", "flag"]  # slow has no max: held at its value
    assert space.fixed == {"slow": 40}
    fast = space.dimensions[0]
    assert (fast.kind, fast.low, fast.high) == ("int", 2, 50)
    assert space.dimensions[2].choices == ("a", "b", "c")
    assert space.dimensions[3].choices == (False, True)


def test_narrowing_from_yaml_and_cli_say_the_same() -> None:
    yaml_space = SearchSpace.build(Toy, {"slow": 60}, {"fast": {"min": 5, "max": 20, "step": 5},
                                                      "mode": {"choices": ["a", "b"]}, "ratio": 2.0})  # fmt: skip
    cli = SearchSpace.build(Toy, {"slow": 60}, parse_cli_space(["fast=5:20:5", "mode=a,b", "ratio=2.0"]))
    assert yaml_space == cli
    assert yaml_space.names == ["fast", "mode"]
    assert yaml_space.fixed == {"slow": 60, "ratio": 2.0, "flag": False}  # configured value, fixed value, default


def test_suggestions_stay_in_the_space() -> None:
    space = SearchSpace.build(Toy, {}, parse_cli_space(["fast=5:20:5", "ratio=0.5:1.0:0.2", "slow=10:30"]))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        params = space.suggest(study.ask())
        assert params["fast"] in (5, 10, 15, 20)
        assert 0.5 <= params["ratio"] <= 0.9 + 1e-9  # max rounded down to the grid
        assert 10 <= params["slow"] <= 30


@pytest.mark.parametrize(
    ("narrowing", "message"),
    [
        ({"fast": {"min": 30, "max": 10}}, "optimize.space.fast: inverted range: min 30 is above max 10"),
        ({"fast": {"min": 10, "max": 10}}, "optimize.space.fast: empty range: min = max = 10"),
        ({"fast": 12, "ratio": 2.0}, "optimize.space: the search space is empty: every parameter given is fixed"),
        ({"mode": {"choices": []}}, "optimize.space.mode.choices: the search space is empty"),
        (
            {"speed": {"min": 1, "max": 2}},
            "optimize.space.speed: strategy 'toy' has no parameter 'speed'; it has: fast",
        ),
        ({"fast": {"min": 1, "max": 20}}, "optimize.space.fast.min: 1 is below the minimum 2"),
        ({"slow": {"min": 5}}, "optimize.space.slow.max: required: the strategy declares no max for slow"),
        ({"fast": {"min": 2, "max": 4, "step": 5}}, "empty range: step 5 is wider than 2..4"),
        ({"fast": {"min": 2, "max": 9, "step": 0}}, "optimize.space.fast.step: must be above 0"),
        ({"mode": {"choices": ["a", "z"]}}, "optimize.space.mode.choices: 'z' is not one of"),
        ({"flag": {"min": 0, "max": 1}}, "flag is a bool: give choices, not a range"),
        ({"fast": {"min": 2, "max": 9, "size": 3}}, "optimize.space.fast.size: unknown key"),
    ],
)
def test_bad_spaces_are_one_line_errors(narrowing: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        SearchSpace.build(Toy, {}, narrowing)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_strategy_without_declared_ranges_has_an_empty_default_space() -> None:
    class Bare(Strategy):
        period = Param(14, "period", min=2)

    with pytest.raises(ConfigError, match="the search space is empty: no parameter of 'bare' declares both min"):
        SearchSpace.build(Bare, {}, {})


@pytest.mark.parametrize("item", ["fast", "fast=", "fast=1:", "fast=1:2:3:4"])
def test_bad_cli_space_items(item: str) -> None:
    with pytest.raises(ConfigError, match="--space"):
        parse_cli_space([item])


def test_objectives_by_alias_with_directions() -> None:
    assert parse_objective("sharpe", "o").name == "sharpe"
    assert parse_objective("total_return", "o").name == "total_return_pct"
    dd = parse_objective("max_drawdown", "o")
    assert (dd.name, dd.direction) == ("max_drawdown_pct", "maximize")  # a drawdown is negative: closer to 0
    assert parse_objective("fees", "o").direction == "minimize"
    assert parse_objective("sortino=minimize", "o").direction == "minimize"
    assert parse_objective({"metric": "calmar"}, "o").name == "calmar"


def test_unknown_objective_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        parse_objective("sharp", "optimize.objectives[0]")
    text = str(err.value)
    assert text.startswith("optimize.objectives[0]: unknown objective 'sharp'; known metrics:")
    assert "sharpe" in text and "profit_factor" in text and "module:function" in text


def test_a_user_function_objective_is_imported_and_called() -> None:
    obj = parse_objective("tests.unit.test_optimize_space:edge=minimize", "o")
    assert (obj.name, obj.direction, obj.function) == ("edge", "minimize", "tests.unit.test_optimize_space:edge")
    assert obj.value({"trade_count": 4, "total_return_pct": 2.0}, None) == 0.5
    for bad, why in [("nosuchmodule_xyz:f", "cannot import nosuchmodule_xyz"),
                     ("tests.unit.test_optimize_space:missing", "has no function missing")]:  # fmt: skip
        with pytest.raises(ConfigError, match=why):
            parse_objective(bad, "o")


def edge(metrics: dict, _result: object) -> float:
    return metrics["total_return_pct"] / metrics["trade_count"]


def test_constraints_measure_their_violation() -> None:
    trades, dd, win = parse_constraints({"min_trades": 10, "max_drawdown_pct": 20, "win_rate": {"min": 40}}, "c")
    assert trades.violation({"trade_count": 12}) <= 0 < trades.violation({"trade_count": 9})
    assert dd.violation({"max_drawdown_pct": -19.0}) <= 0 < dd.violation({"max_drawdown_pct": -21.0})
    assert win.violation({"win_rate_pct": None}) > 0  # undefined (no trades): not met
    assert Constraint("sharpe", 1.0, 2.0).describe() == "1.0 <= sharpe <= 2.0"
    with pytest.raises(ConfigError, match=r"c\.nonsense: unknown constraint"):
        parse_constraints({"nonsense": 3}, "c")
    with pytest.raises(ConfigError, match=r"c\.sharpe: inverted bounds"):
        parse_constraints({"sharpe": {"min": 2, "max": 1}}, "c")


def test_settings_from_yaml_and_command_line() -> None:
    s = OptimizeSettings.from_mapping({"objectives": ["sharpe", "max_drawdown"], "trials": 10,
                                       "walk_forward": {"mode": "anchored", "windows": 4}})  # fmt: skip
    assert s.sampler_name == "nsga2" and s.directions == ["maximize", "maximize"]
    assert s.walk_forward == WalkForward("anchored", 4, 0.25)
    s2 = with_overrides(s, objectives=["sortino"], min_trades=5, trials=3, no_pruning=True, windows=2)
    assert s2.sampler_name == "tpe" and s2.trials == 3 and not s2.pruning.enabled
    assert s2.constraints == (Constraint("trade_count", low=5.0),)
    assert s2.walk_forward == WalkForward("anchored", 2, 0.25)
    with pytest.raises(ConfigError, match=r"optimize\.trial: unknown key"):
        OptimizeSettings.from_mapping({"trial": 5})
    with pytest.raises(ConfigError, match="--trials"):
        with_overrides(s, trials=0)


def test_walk_forward_windows_rolling_and_anchored() -> None:
    day = 86_400_000
    rolling = make_windows(0, 60 * day, WalkForward("rolling", 3, 0.5), day)
    assert [(w.is_start // day, w.is_end // day, w.oos_end // day) for w in rolling] == [
        (0, 24, 36), (12, 36, 48), (24, 48, 60)]  # fmt: skip
    anchored = make_windows(0, 60 * day, WalkForward("anchored", 3, 0.5), day)
    assert [w.is_start for w in anchored] == [0, 0, 0]
    assert [w.oos_start for w in anchored] == [w.oos_start for w in rolling]
    for ws in (rolling, anchored):  # OOS spans tile the end of the period without overlap
        assert all(a.oos_end == b.oos_start for a, b in itertools.pairwise(ws))
        assert all(w.is_end == w.oos_start for w in ws)
    with pytest.raises(ConfigError, match="do not fit in the period"):
        make_windows(0, 10 * day, WalkForward("rolling", 50, 0.25), day)
