"""The strict config readers: one mechanism (core.schema) behind the backtest, live, risk and strategy
sections, and the exact path and message each kind of mistake produces."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from kinetic_empire.backtest import BacktestConfig
from kinetic_empire.core.errors import ConfigError
from kinetic_empire.core.schema import Key, decimal, integer, mapping_of, nullable, reading, real, record, section, text
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.strategy.registry import build_registry

ONE = [{"name": "ema_cross", "symbols": ["FILUSDT"]}]


def message(read, data) -> str:
    with pytest.raises(ConfigError) as info:
        read(data)
    return str(info.value)


# ----------------------------------------------------------------------------------- the mechanism


@dataclass(frozen=True)
class Limits:
    count: int
    share: Decimal = Decimal(1)
    label: str | None = None


LIMITS = {
    "count": Key(integer(ge=1, le=10), required=True),
    "share": Key(decimal(gt=0, lt=1)),
    "label": Key(nullable(text)),
}
OUTER = {"limits": Key(record(Limits, LIMITS)), "per_symbol": Key(mapping_of(text, integer(ge=0)))}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"limits": {"count": 3, "cout": 1}}, "top.limits.cout: unknown key; allowed: count, label, share"),
        ({"limits": {"share": 0.5}}, "top.limits.count: required"),
        ({"limits": {"count": None}}, "top.limits.count: required"),
        ({"limits": {"count": 11}}, "top.limits.count: must be between 1 and 10, got 11"),
        ({"limits": {"count": 2.0}}, "top.limits.count: expected an integer, got float 2.0"),
        ({"limits": {"count": True}}, "top.limits.count: expected an integer, got bool True"),
        ({"limits": {"count": 1, "share": 1}}, "top.limits.share: must be < 1, got 1"),
        ({"limits": {"count": 1, "share": "0.5"}}, "top.limits.share: expected a number, got str '0.5'"),
        ({"limits": {"count": 1, "share": float("nan")}}, "top.limits.share: expected a finite number, got nan"),
        ({"limits": {"count": 1, "label": ""}}, "top.limits.label: expected a non-empty string, got str ''"),
        ({"limits": [1]}, "top.limits: expected a mapping, got list"),
        ({"per_symbol": {"FILUSDT": -1}}, "top.per_symbol.FILUSDT: must be >= 0, got -1"),
        ({"per_symbol": {3: 1}}, "top.per_symbol.3: expected a non-empty string, got int 3"),
        ({1: 2}, "top.1: keys must be strings"),
        ({"limits": {"api_secret": "x"}}, "top.limits.api_secret: API keys are never read from YAML"),
    ],
)
def test_section_names_the_path_of_the_first_mistake(data: dict, expected: str) -> None:
    assert message(lambda d: section(d, "top", OUTER), data).startswith(expected)


def test_section_fills_only_present_keys_so_dataclass_defaults_apply() -> None:
    assert section(None, "top", OUTER) == {}
    values = section({"limits": {"count": 2, "label": None}, "per_symbol": {"A": 1}}, "top", OUTER)
    assert values["limits"] == Limits(2)
    assert dict(values["per_symbol"]) == {"A": 1}
    renamed = section({"maker": 0.1}, "fees", {"maker": Key(decimal(), to="maker_fee")})
    assert renamed == {"maker_fee": Decimal("0.1")}


def test_root_keys_have_no_prefix_and_reading_names_the_file() -> None:
    with pytest.raises(ConfigError) as info, reading("my.yaml"):
        section({"bogus": 1}, "", {"a": Key(text)})
    assert (info.value.path, info.value.source) == ("bogus", "my.yaml")
    assert str(info.value) == "my.yaml: bogus: unknown key; allowed: a"
    assert message(lambda d: section(d, "", {}), [1]) == "<root>: expected a mapping, got list"


def test_real_keeps_infinity_but_not_nan() -> None:
    assert real(gt=0)(float("inf"), "speed") == float("inf")
    assert message(lambda v: real(gt=0)(v, "speed"), float("nan")) == "speed: expected a number, got nan"
    assert message(lambda v: real(gt=0)(v, "speed"), 0) == "speed: must be > 0, got 0"


# ----------------------------------------------------------------------------------- the readers


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"backtest": {"fees": {"maker": -1}}}, "backtest.fees.maker: must be >= 0, got -1"),
        ({"backtest": {"fees": {"makr": 1}}}, "backtest.fees.makr: unknown key; allowed: maker, taker"),
        ({"backtest": {"initial_balance": 0}}, "backtest.initial_balance: must be > 0, got 0"),
        ({"backtest": {"gap_policy": "drop"}}, "backtest.gap_policy: 'drop' is not one of error, keep, ffill"),
        ({"backtest": {"execution_timeframe": "7m"}}, "backtest.execution_timeframe: unknown timeframe '7m'"),
        ({"backtest": {"start": "soon"}}, "backtest.start: not a date: 'soon'"),
        ({"backtest": {"data": []}}, "backtest.data: expected a path or a list of paths"),
        ({"backtest": {"results_dir": 3}}, "backtest.results_dir: expected a non-empty string, got int 3"),
        ({"strategies": ONE, "bogus": 1}, "bogus: unknown key; allowed: backtest, risk, strategies"),
        ({"strategies": []}, "strategies: expected a non-empty list of strategies"),
        ({"strategies": [*ONE, {"name": "x"}]}, "strategies[1].symbols: required"),
        ({"strategies": [{**ONE[0], "timeframe": "7m"}]}, "strategies[0].timeframe: unknown timeframe '7m'"),
        ({"strategies": [{**ONE[0], "params": [1]}]}, "strategies[0].params: expected a mapping of parameter"),
        ({"strategies": ONE, "risk": [1]}, "risk: expected a mapping"),
    ],
)
def test_backtest_config_errors(data: dict, expected: str) -> None:
    data = {"strategies": ONE, **data}
    assert message(lambda d: BacktestConfig.from_mapping(d, "bt.yaml"), data).startswith(f"bt.yaml: {expected}")


def test_strategy_params_are_checked_against_the_strategy_with_their_path() -> None:
    from kinetic_empire.backtest import Backtest

    config = BacktestConfig.from_mapping(
        {
            "backtest": {"data": "unused"},
            "strategies": [*ONE, {"name": "ema_cross", "symbols": ["NEARUSDT"], "params": {"fast": "x"}}],
        }
    )
    with pytest.raises(ConfigError, match=r"^strategies\[1\]\.params\.fast: expected int, got 'x'$"):
        Backtest(config, build_registry()).run()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"live": {"window": 1}}, "live.window: must be >= 2, got 1"),
        ({"live": {"window": 2.5}}, "live.window: expected an integer, got float 2.5"),
        ({"live": {"margin_type": "cross"}}, "live.margin_type: 'CROSS' is not one of CROSSED, ISOLATED"),
        ({"live": {"preflight": "no"}}, "live.preflight: expected true or false, got str 'no'"),
        ({"live": {"stale_after_s": 0}}, "live.stale_after_s: must be > 0, got 0"),
        ({"live": {"rest_url": 5}}, "live.rest_url: expected a URL"),
        ({"live": {"ws_url": "wss://fstream.binance.com"}}, "live.ws_url: fstream.binance.com is Binance production"),
        ({"live": {"price_timeframe": "2m"}}, "live.price_timeframe: unknown timeframe '2m'"),
        ({"sandbox": {"speed": "fast"}}, "sandbox.speed: expected a number, got str 'fast'"),
        ({"sandbox": {"fees": {"taker": "x"}}}, "sandbox.fees.taker: expected a number, got str 'x'"),
        ({"sandbox": {"updates_per_kline": 0}}, "sandbox.updates_per_kline: must be >= 1, got 0"),
        ({"sandbox": {"secret": "x"}}, "sandbox.secret: API keys are never read from YAML"),
        ({"strategies": [{"name": "a", "symbols": "FILUSDT"}, {"name": "b", "symbols": ["filusdt"]}]},
         "strategies[1].symbols: FILUSDT is already traded by strategies[0]"),
    ],
)  # fmt: skip
def test_live_config_errors(data: dict, expected: str) -> None:
    data = {"strategies": ONE, **data}
    assert message(lambda d: LiveConfig.from_mapping(d, "live.yaml"), data).startswith(f"live.yaml: {expected}")


def test_live_config_values_are_typed() -> None:
    cfg = LiveConfig.from_mapping(
        {
            "live": {"window": 50, "margin_type": "isolated", "stale_after_s": 30},
            "strategies": ONE,
            "sandbox": {"speed": 0, "fees": {"maker": -0.0001}, "start": "2023-08-05"},
        }
    )
    assert (cfg.window, cfg.margin_type, cfg.stale_after_s) == (50, "ISOLATED", 30.0)
    assert cfg.sandbox.speed is None and cfg.sandbox.maker_fee == Decimal("-0.0001")
    assert cfg.sandbox.taker_fee == Decimal("0.0005") and cfg.sandbox.start == 1691193600000
    assert LiveConfig.from_mapping({"strategies": ONE}).sandbox.speed == 600.0
