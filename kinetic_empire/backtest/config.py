"""The backtest configuration: YAML in, typed and validated dataclasses out.

Strict on purpose: an unknown key, a wrong type or an impossible value is a :class:`ConfigError`
naming the dotted path of the key (``backtest.start``, ``strategies[0].params.fast``), so a typo
never silently falls back to a default.

    backtest:
      data: backtests/data            # files or folders of data.binance.vision klines, or a store
      start: 2023-08-01               # UTC, inclusive
      end: 2023-10-01                 # UTC, exclusive
      initial_balance: 10000
      execution_timeframe: auto       # auto: each symbol's finest strategy timeframe; or e.g. 1m
      gap_policy: error               # error | keep | ffill
      fees: {maker: 0.0002, taker: 0.0005}
      slippage_bps: 0
      funding_rate: 0.0001            # per 8 h settlement, when no funding series is given
      results_dir: backtests/results
    strategies:
      - name: ema_cross
        symbols: [FILUSDT, NEARUSDT]
        timeframe: 1h                 # optional: overrides the strategy's own
        params: {fast: 20, slow: 50}
    risk: {...}                       # see kinetic_empire.risk.config
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..config import StrategyConfig, check_one_strategy_per_symbol, jsonable, load_yaml, risk_section, strategy_list
from ..core.errors import ConfigError
from ..core.schema import Key, choice, decimal, nested, nullable, paths, reading, section, text, time_ms
from ..core.schema import timeframe as _timeframe

GAP_POLICIES = ("error", "keep", "ffill")


def _execution_timeframe(value: Any, path: str) -> str:
    return "auto" if value == "auto" else _timeframe(value, path)


_FEES = {"maker": Key(decimal(ge=0), to="maker_fee"), "taker": Key(decimal(ge=0), to="taker_fee")}
_BACKTEST = {
    "data": Key(paths),
    "start": Key(nullable(time_ms)),
    "end": Key(nullable(time_ms)),
    "initial_balance": Key(decimal(gt=0)),
    "execution_timeframe": Key(_execution_timeframe),
    "gap_policy": Key(choice(GAP_POLICIES)),
    "fees": Key(nested(_FEES)),
    "slippage_bps": Key(decimal(ge=0)),
    "funding_rate": Key(decimal()),
    "results_dir": Key(text),
}
_FILE = {
    "backtest": Key(nested(_BACKTEST)),
    "strategies": Key(strategy_list, required=True),
    "risk": Key(risk_section),
}


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    strategies: tuple[StrategyConfig, ...]
    data: tuple[str, ...] = ("backtests/data",)
    start: int | None = None
    end: int | None = None
    initial_balance: Decimal = Decimal("10000")
    execution_timeframe: str = "auto"
    gap_policy: str = "error"
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    slippage_bps: Decimal = Decimal("0")
    funding_rate: Decimal = Decimal("0.0001")
    results_dir: str = "backtests/results"
    risk: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def symbols(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.strategies:
            for sym in s.symbols:
                seen[sym] = None
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-safe echo of the configuration for the report."""
        return {
            "backtest": {
                "data": list(self.data),
                "start": self.start,
                "end": self.end,
                "initial_balance": str(self.initial_balance),
                "execution_timeframe": self.execution_timeframe,
                "gap_policy": self.gap_policy,
                "fees": {"maker": str(self.maker_fee), "taker": str(self.taker_fee)},
                "slippage_bps": str(self.slippage_bps),
                "funding_rate": str(self.funding_rate),
            },
            "strategies": [
                {"name": s.name, "symbols": list(s.symbols), "timeframe": s.timeframe, "params": dict(s.params)}
                for s in self.strategies
            ],
            "risk": jsonable(self.risk),
        }

    # ------------------------------------------------------------------------------- parsing
    @classmethod
    def from_mapping(cls, data: Any, source: str | None = None) -> BacktestConfig:
        with reading(source):
            top = section(data, "", _FILE)
            backtest = top.pop("backtest", {})
            fees = backtest.pop("fees", {})
            config = cls(**top, **backtest, **fees, source=source)
            if config.start is not None and config.end is not None and config.end <= config.start:
                raise ConfigError("backtest.end", "must be after backtest.start")
        return config

    @classmethod
    def load(cls, path: str | Path) -> BacktestConfig:
        return cls.from_mapping(load_yaml(path), str(path))

    def with_overrides(
        self,
        *,
        strategy: str | None = None,
        symbols: list[str] | None = None,
        timeframe: str | None = None,
        start: str | None = None,
        end: str | None = None,
        params: Mapping[str, str] | None = None,
        data: list[str] | None = None,
    ) -> BacktestConfig:
        """Command-line overrides; they apply to every strategy in the config."""
        strategies = list(self.strategies)
        if strategy is not None:
            strategies = [replace(strategies[0], name=strategy, params={})] if strategies else []
        if timeframe is not None:
            tf = _timeframe(timeframe, "--timeframe")
            strategies = [replace(s, timeframe=tf) for s in strategies]
        if symbols:
            strategies = [replace(s, symbols=tuple(x.upper() for x in symbols)) for s in strategies]
        if params:
            strategies = [replace(s, params={**s.params, **params}) for s in strategies]
        check_one_strategy_per_symbol(tuple(strategies), "command line")
        new_start = time_ms(start, "--start") if start else self.start
        new_end = time_ms(end, "--end") if end else self.end
        if new_start is not None and new_end is not None and new_end <= new_start:
            raise ConfigError("--end", "must be after --start")
        return replace(
            self,
            strategies=tuple(strategies),
            start=new_start,
            end=new_end,
            data=tuple(data) if data else self.data,
        )
