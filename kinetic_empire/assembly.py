"""The trading core both composition roots share: bus, portfolio, risk manager, strategy runners.

A backtest and a live run differ only in where klines come from and what executes orders. Everything
between is built here, once, the same way for both: strategy specs are resolved by one function,
leverage per symbol comes from the risk config through the risk manager, and the portfolio takes its
prices from the bus (closed klines) in both modes. The roots add the kline source (after building)
and the execution port (``connect_port``, called while building, because where it subscribes
matters).

Handlers run in the order they subscribed, so the order is part of the contract:

1. what the root subscribed before (live: the journal, so a command is journaled before it is sent);
2. the portfolio's order and account handlers: observers see a command before the port answers it;
3. the execution port (backtest: the simulated exchange matches each execution kline);
4. the portfolio's price handler: it marks at a kline's close after the port has matched that kline;
5. the risk manager;
6. the strategy runners, in config order, each on its (symbol, timeframe) (a multi-symbol strategy's
   runner on each of its symbols').
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from .config import StrategyConfig
from .core.bus import EventBus
from .core.clock import Clock
from .core.errors import ConfigError
from .core.rules import LeverageBrackets, SymbolRules
from .core.timeframes import timeframe_ms
from .portfolio import Portfolio
from .risk import RiskConfig, RiskManager
from .strategy.base import Strategy
from .strategy.group import GroupRunner
from .strategy.registry import StrategyRegistry
from .strategy.runner import StrategyRunner

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """One configured strategy, resolved: its class and timeframe, parameters checked."""

    config: StrategyConfig
    cls: type[Strategy]
    timeframe: str


def resolve_strategies(configs: Iterable[StrategyConfig], registry: StrategyRegistry) -> tuple[StrategySpec, ...]:
    """Look each strategy up and check its timeframe and parameters, before any data or connection."""
    specs = []
    for s in configs:
        cls = registry.get(s.name)
        tf = s.timeframe or cls.timeframe
        timeframe_ms(tf)
        cls.resolve_params(s.params, where=f"{s.path}.params")
        if s.group_wait_s is not None and not cls.multi_symbol:
            raise ConfigError(f"{s.path}.group_wait_s", f"strategy {s.name!r} is not multi_symbol: only a strategy "
                              "trading several symbols in one instance waits for their klines")
        specs.append(StrategySpec(s, cls, tf))
    return tuple(specs)


def traded_symbols(specs: Iterable[StrategySpec]) -> list[str]:
    """Every symbol some strategy trades, in config order."""
    return list(dict.fromkeys(sym for spec in specs for sym in spec.config.symbols))


@dataclass(frozen=True, slots=True)
class Core(Generic[P]):
    """What :func:`build_core` built; ``port`` is whatever ``connect_port`` returned."""

    bus: EventBus
    clock: Clock
    portfolio: Portfolio
    port: P
    risk: RiskManager
    runners: tuple[StrategyRunner, ...]
    rules: Mapping[str, SymbolRules]
    leverage: Mapping[str, int]
    """Leverage per traded symbol, already set on the portfolio; the root sets it on the venue."""


def build_core(
    *,
    bus: EventBus,
    clock: Clock,
    specs: tuple[StrategySpec, ...],
    rules: Mapping[str, SymbolRules],
    brackets: Mapping[str, LeverageBrackets],
    risk_config: RiskConfig,
    initial_balance: Decimal,
    fee_rate_taker: Decimal,
    fee_rate_maker: Decimal,
    connect_port: Callable[[EventBus, Portfolio], P],
    id_tag: str,
    fail_fast: bool = True,
    window: int | None = None,
    last_seq: Callable[[str], int] | None = None,
    price_topics: Iterable[tuple[str, str]] | None = None,
    fast_risk: bool = False,
) -> Core[P]:
    """Build the core on ``bus`` in the documented subscription order (module docstring).

    ``id_tag`` starts every runner's intent-id prefix (``{id_tag}{spec index}{symbol}``); ``fail_fast``
    and ``window`` go to the runners (backtest: fail fast, precomputed history; live: keep going,
    rolling window). ``last_seq(prefix)``, for a resumed run, is the last intent sequence journaled
    under a prefix, so new intent ids continue after it and no client order id is reused.
    ``price_topics``: the (symbol, timeframe) series the portfolio takes prices from; None follows
    every kline. A backtest names all it replays, which gives the portfolio its cheapest handler.
    ``fast_risk``: the risk gate decides plain market entries, closes and flips the short way, with the general
    decision's answers (``RiskManager.use_fast_path``).
    """
    portfolio = Portfolio(bus, initial_balance, follow_prices=False)
    port = connect_port(bus, portfolio)
    portfolio.subscribe_prices(price_topics)
    risk = RiskManager(
        bus,
        clock,
        portfolio,
        rules,
        brackets,
        risk_config,
        fee_rate_taker=fee_rate_taker,
        fee_rate_maker=fee_rate_maker,
    )
    if fast_risk:
        risk.use_fast_path()
    leverage: dict[str, int] = {}
    for sym in traded_symbols(specs):
        leverage[sym] = risk.leverage_for(sym)
        portfolio.set_leverage(sym, leverage[sym])
    runners = []
    for n, spec in enumerate(specs):
        s = spec.config
        if spec.cls.multi_symbol:  # one instance for all its symbols; intent ids carry the first one
            group = spec.cls(s.symbols[0], s.params, timeframe=spec.timeframe, where=f"{s.path}.params",
                             symbols=s.symbols)
            prefix = f"{id_tag}{n}{s.symbols[0]}"
            runner: StrategyRunner = GroupRunner(group, bus, clock, strategy_id=s.strategy_id, id_prefix=prefix,
                                                 fail_fast=fail_fast, window=window, wait_s=s.group_wait_s)
            if last_seq is not None:
                runner.continue_ids_after(last_seq(prefix))
            runners.append(runner)
            continue
        for sym in s.symbols:
            strategy = _instantiate(spec, sym)
            prefix = f"{id_tag}{n}{sym}"
            runner = StrategyRunner(
                strategy, bus, clock, strategy_id=s.strategy_id, id_prefix=prefix, fail_fast=fail_fast, window=window
            )
            if last_seq is not None:
                runner.continue_ids_after(last_seq(prefix))
            runners.append(runner)
    return Core(bus, clock, portfolio, port, risk, tuple(runners), rules, leverage)


def _instantiate(spec: StrategySpec, symbol: str) -> Strategy:
    s = spec.config
    params: Mapping[str, Any] = s.params
    return spec.cls(symbol, params, timeframe=spec.timeframe, where=f"{s.path}.params")
