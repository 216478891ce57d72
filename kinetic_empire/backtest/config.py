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
      margin_type: CROSSED            # or ISOLATED: each position backed by its own margin only;
                                      # risk.margin_type: {FILUSDT: ISOLATED} overrides it per symbol
      results_dir: backtests/results
    strategies:
      - name: ema_cross
        symbols: [FILUSDT, NEARUSDT]
        timeframe: 1h                 # optional: overrides the strategy's own
        params: {fast: 20, slow: 50}
    risk: {...}                       # see kinetic_empire.risk.config
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..config import StrategyConfig, check_one_strategy_per_symbol, jsonable, load_yaml, risk_section, strategy_list
from ..core.errors import ConfigError
from ..core.schema import Key, choice, decimal, nested, nullable, paths, reading, section, text, time_ms
from ..core.schema import timeframe as _timeframe
from ..data._util import format_ms

GAP_POLICIES = ("error", "keep", "ffill")


def _execution_timeframe(value: Any, path: str) -> str:
    return "auto" if value == "auto" else _timeframe(value, path)


_FEES = {"maker": Key(decimal(ge=0), to="maker_fee"), "taker": Key(decimal(ge=0), to="taker_fee")}
_BACKTEST = {
    "data": Key(paths),
    "start": Key(nullable(time_ms)),
    "end": Key(nullable(time_ms)),
    "initial_balance": Key(decimal(gt=0, le=10**12)),  # beyond a trillion USDT is a typo, not a test
    "execution_timeframe": Key(_execution_timeframe),
    "gap_policy": Key(choice(GAP_POLICIES)),
    "fees": Key(nested(_FEES)),
    "slippage_bps": Key(decimal(ge=0, le=1000)),  # 10 %: beyond that every fill is fiction
    "funding_rate": Key(decimal()),
    "margin_type": Key(choice(("CROSSED", "ISOLATED"), normalise=str.upper)),
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
    margin_type: str = "CROSSED"
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
                "margin_type": self.margin_type,
            },
            "strategies": [s.to_dict() for s in self.strategies],
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
        declared: Callable[[str], Iterable[str]] | None = None,
    ) -> BacktestConfig:
        """Command-line overrides, applied in this order:

        - ``strategy``: the config's entry of that name (its symbols, timeframe and params) when it has
          one; otherwise that strategy alone on every symbol of the config, at its own declared
          timeframe, with its default parameters.
        - ``symbols``, ``timeframe``: every strategy left.
        - ``params``: ``NAME=VALUE`` goes to every strategy that declares ``NAME`` (``declared(name)``
          lists a strategy's parameter names; without it, to every strategy) and a name none of them
          declares is an error; ``STRATEGY.NAME=VALUE`` goes to that strategy only.
        """
        strategies = list(self.strategies)
        if strategy is not None:
            named = [s for s in strategies if s.name == strategy]
            if named:
                strategies = named
            else:
                every = tuple(self.symbols)
                strategies = [StrategyConfig(name=strategy, symbols=every, path="--strategy")] if every else []
        if timeframe is not None:
            tf = _timeframe(timeframe, "--timeframe")
            strategies = [replace(s, timeframe=tf) for s in strategies]
        if symbols:
            strategies = [replace(s, symbols=tuple(x.upper() for x in symbols)) for s in strategies]
        if params:
            strategies = _apply_params(strategies, params, declared)
        check_one_strategy_per_symbol(tuple(strategies), "command line")
        new_start = time_ms(start, "--start") if start else self.start
        new_end = time_ms(end, "--end") if end else self.end
        if new_start is not None and new_end is not None and new_end <= new_start:
            if start and not end:  # the end comes from the config: say so, with both dates
                raise ConfigError("--start", f"{start} is not before the config's end (backtest.end "
                                  f"{format_ms(new_end)}): pass --end too", self.source)
            if end and not start:
                raise ConfigError("--end", f"{end} is not after the config's start (backtest.start "
                                  f"{format_ms(new_start)}): pass --start too", self.source)
            raise ConfigError("--end", f"{end} is not after --start {start}")
        return replace(
            self,
            strategies=tuple(strategies),
            start=new_start,
            end=new_end,
            data=tuple(data) if data else self.data,
        )


def _apply_params(
    strategies: list[StrategyConfig],
    params: Mapping[str, str],
    declared: Callable[[str], Iterable[str]] | None,
) -> list[StrategyConfig]:
    """``--param`` values onto the strategies they name (see :meth:`BacktestConfig.with_overrides`)."""
    names = [s.name for s in strategies]
    given: list[dict[str, str]] = [{} for _ in strategies]
    for key, value in params.items():
        owner, dot, name = key.rpartition(".")
        if dot:
            if owner not in names:
                raise ConfigError(f"--param {key}", f"no strategy {owner!r} in this run; it has: {', '.join(names)}")
            targets = [i for i, n in enumerate(names) if n == owner]
        elif declared is None:
            targets = list(range(len(strategies)))
        else:
            targets = [i for i, n in enumerate(names) if name in set(declared(n))]
            if not targets:
                have = "; ".join(f"{n}: {', '.join(declared(n)) or 'none'}" for n in dict.fromkeys(names))
                raise ConfigError(f"--param {key}", f"no strategy in this run has that parameter ({have})")
        for i in targets:
            given[i][name] = value
    return [replace(s, params={**s.params, **extra}) if extra else s for s, extra in zip(strategies, given)]
