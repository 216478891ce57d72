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

from ..config import (
    StrategyConfig,
    check_one_strategy_per_symbol,
    jsonable,
    load_yaml,
    parse_decimal,
    parse_strategy,
    parse_time,
    parse_timeframe,
    strict_mapping,
)
from ..core.errors import ConfigError

GAP_POLICIES = ("error", "keep", "ffill")


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    data: tuple[str, ...]
    start: int | None
    end: int | None
    strategies: tuple[StrategyConfig, ...]
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
        top = strict_mapping(data, "<root>", {"backtest", "strategies", "risk"}, source)
        bt = strict_mapping(
            top.get("backtest"),
            "backtest",
            {
                "data", "start", "end", "initial_balance", "execution_timeframe", "gap_policy", "fees",
                "slippage_bps", "funding_rate", "results_dir",
            },
            source,
        )  # fmt: skip
        raw_data = bt.get("data", "backtests/data")
        if isinstance(raw_data, str):
            raw_data = [raw_data]
        if not isinstance(raw_data, list) or not all(isinstance(d, str) for d in raw_data) or not raw_data:
            raise ConfigError("backtest.data", "expected a path or a list of paths", source)
        start = parse_time(bt["start"], "backtest.start", source) if bt.get("start") is not None else None
        end = parse_time(bt["end"], "backtest.end", source) if bt.get("end") is not None else None
        if start is not None and end is not None and end <= start:
            raise ConfigError("backtest.end", "must be after backtest.start", source)
        fees = strict_mapping(bt.get("fees"), "backtest.fees", {"maker", "taker"}, source)
        exec_tf = bt.get("execution_timeframe", "auto")
        if exec_tf != "auto":
            exec_tf = parse_timeframe(exec_tf, "backtest.execution_timeframe", source)
        gap_policy = bt.get("gap_policy", "error")
        if gap_policy not in GAP_POLICIES:
            raise ConfigError("backtest.gap_policy", f"{gap_policy!r} is not one of {', '.join(GAP_POLICIES)}", source)
        balance = parse_decimal(bt.get("initial_balance", "10000"), "backtest.initial_balance", source)
        if balance <= 0:
            raise ConfigError("backtest.initial_balance", "must be positive", source)
        raw_strategies = top.get("strategies")
        if not isinstance(raw_strategies, list) or not raw_strategies:
            raise ConfigError("strategies", "expected a non-empty list of strategies", source)
        strategies = tuple(parse_strategy(item, f"strategies[{i}]", source) for i, item in enumerate(raw_strategies))
        check_one_strategy_per_symbol(strategies, source)
        risk = top.get("risk") or {}
        if not isinstance(risk, Mapping):
            raise ConfigError("risk", "expected a mapping", source)
        return cls(
            data=tuple(raw_data),
            start=start,
            end=end,
            strategies=strategies,
            initial_balance=balance,
            execution_timeframe=str(exec_tf),
            gap_policy=str(gap_policy),
            maker_fee=parse_decimal(fees.get("maker", "0.0002"), "backtest.fees.maker", source),
            taker_fee=parse_decimal(fees.get("taker", "0.0005"), "backtest.fees.taker", source),
            slippage_bps=parse_decimal(bt.get("slippage_bps", 0), "backtest.slippage_bps", source),
            funding_rate=parse_decimal(bt.get("funding_rate", "0.0001"), "backtest.funding_rate", source, minimum=None),
            results_dir=str(bt.get("results_dir", "backtests/results")),
            risk=risk,
            source=source,
        )

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
            tf = parse_timeframe(timeframe, "--timeframe", None)
            strategies = [replace(s, timeframe=tf) for s in strategies]
        if symbols:
            strategies = [replace(s, symbols=tuple(x.upper() for x in symbols)) for s in strategies]
        if params:
            strategies = [replace(s, params={**s.params, **params}) for s in strategies]
        check_one_strategy_per_symbol(tuple(strategies), "command line")
        new_start = parse_time(start, "--start") if start else self.start
        new_end = parse_time(end, "--end") if end else self.end
        if new_start is not None and new_end is not None and new_end <= new_start:
            raise ConfigError("--end", "must be after --start")
        return replace(
            self,
            strategies=tuple(strategies),
            start=new_start,
            end=new_end,
            data=tuple(data) if data else self.data,
        )


