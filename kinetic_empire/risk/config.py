"""Typed, strict risk configuration.

Every key is checked once at start-up: an unknown key, a wrong type or an impossible value raises
:class:`~kinetic_empire.core.errors.ConfigError` whose ``path`` is the dotted key path
(``risk.strategies.ema_cross.sizing.method``), so a user can find the line in the YAML file.
Checks that need exchange data (does the symbol exist, is the leverage allowed by its brackets) run in
:meth:`RiskConfig.validate`.

YAML shape (every key optional; shown with the defaults unless a comment says otherwise)::

    risk:
      default_leverage: 1            # for symbols not listed under `leverage`
      leverage: {}                   # e.g. {FILUSDT: 3}
      margin_type: {}                # e.g. {FILUSDT: ISOLATED}; others keep the run's backtest/live.margin_type
      margin_buffer_pct: 1           # share of the available balance never used (fill-price drift)
      sizing:                        # default for every strategy
        method: percent_equity       # fixed_quantity | fixed_notional | percent_equity
        percent: 10                  #   | risk_per_trade | volatility_target
      strategies: {}                 # e.g. {ema_cross: {sizing: {method: fixed_notional, notional: 200}}}
      guards:
        max_open_positions: 10
        max_gross_exposure: null     # multiple of equity, e.g. 3.0
        max_symbol_exposure: null    # {usdt: 1000} or {equity_fraction: 0.5}
        daily_loss_limit_pct: null   # e.g. 5: entries halted until the next UTC day
        max_drawdown_pct: null       # e.g. 20: entries halted until reset_drawdown_halt()
        loss_streak: null            # {losses: 3, cooldown_minutes: 60}
        min_liquidation_distance_pct: null       # e.g. 10
        min_liquidation_distance_atr: null       # {multiple: 3, timeframe: 1h, period: 14}
      state: ACTIVE                  # ACTIVE | REDUCING | HALTED
      symbol_states: {}              # e.g. {FILUSDT: REDUCING}

Sizing methods and their keys:

* ``fixed_quantity``: ``quantity`` (base asset units);
* ``fixed_notional``: ``notional`` (USDT of position value);
* ``percent_equity``: ``percent``: position notional as a percent of equity (not margin: 10 means a
  position worth 10 % of equity, whatever the leverage);
* ``risk_per_trade``: ``percent``: percent of equity lost if the stop is hit, taker fees on entry and
  exit included; intents without a stop are denied (``STOP_REQUIRED``);
* ``volatility_target``: ``percent``, ``timeframe``, ``atr_period`` (14), ``atr_multiple`` (1):
  quantity such that a move of ``atr_multiple`` ATRs costs ``percent`` of equity.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from ..core.enums import MarginType, TradingState
from ..core.errors import ConfigError
from ..core.rules import LeverageBrackets, SymbolRules
from ..core.schema import Key, decimal, integer, mapping, mapping_of, member, nullable, record, section, timeframe

MAX_EXCHANGE_LEVERAGE = 125
_SYMBOL_RE = re.compile(r"^[^\sa-z]{2,40}$")  # Binance has BTCUSDT_260327 and 币安人生USDT
_HUNDRED = Decimal(100)


class SizingMethod(StrEnum):
    FIXED_QUANTITY = "fixed_quantity"
    FIXED_NOTIONAL = "fixed_notional"
    PERCENT_EQUITY = "percent_equity"
    RISK_PER_TRADE = "risk_per_trade"
    VOLATILITY_TARGET = "volatility_target"


def _symbol(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _SYMBOL_RE.match(value):
        raise ConfigError(path, f"not a symbol name: {value!r}")
    return value


def _strategy_id(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(path, "strategy ids must be non-empty strings")
    return value


_state = member(TradingState, "state")
_method = member(SizingMethod, "sizing method")
_leverage = integer(ge=1, le=MAX_EXCHANGE_LEVERAGE)
_percent_of_equity = decimal(gt=0, le=_HUNDRED)
_margin_type_member = member(MarginType, "margin type")


def _margin_type(value: Any, path: str) -> MarginType:
    """CROSSED or ISOLATED, in any case (as ``backtest.margin_type``)."""
    return MarginType(_margin_type_member(value.upper() if isinstance(value, str) else value, path))


# ------------------------------------------------------------------------------------------ sections


@dataclass(frozen=True, slots=True)
class SizingConfig:
    """How a strategy's entries are sized; only the fields of ``method`` are set."""

    method: SizingMethod = SizingMethod.PERCENT_EQUITY
    quantity: Decimal | None = None
    notional: Decimal | None = None
    percent: Decimal | None = Decimal(10)
    timeframe: str | None = None
    atr_period: int = 14
    atr_multiple: Decimal = Decimal(1)

    @classmethod
    def from_mapping(cls, data: Any, path: str) -> SizingConfig:
        method = _method(mapping(data, path).get("method"), f"{path}.method")
        values = section(data, path, {"method": Key(_method), **_SIZING_KEYS[method]})
        return cls(**{"percent": None, **values})


_SIZING_KEYS: Mapping[SizingMethod, Mapping[str, Key]] = MappingProxyType(
    {
        SizingMethod.FIXED_QUANTITY: {"quantity": Key(decimal(gt=0), required=True)},
        SizingMethod.FIXED_NOTIONAL: {"notional": Key(decimal(gt=0), required=True)},
        SizingMethod.PERCENT_EQUITY: {"percent": Key(decimal(gt=0), required=True)},
        SizingMethod.RISK_PER_TRADE: {"percent": Key(_percent_of_equity, required=True)},
        SizingMethod.VOLATILITY_TARGET: {
            "percent": Key(_percent_of_equity, required=True),
            "timeframe": Key(timeframe, required=True),
            "atr_period": Key(integer(ge=1, le=1000)),
            "atr_multiple": Key(decimal(gt=0)),
        },
    }
)


@dataclass(frozen=True, slots=True)
class LossStreakConfig:
    losses: int
    cooldown_minutes: Decimal


@dataclass(frozen=True, slots=True)
class AtrDistanceConfig:
    multiple: Decimal
    timeframe: str
    period: int = 14


@dataclass(frozen=True, slots=True)
class SymbolExposureConfig:
    """Exactly one of the two is set."""

    usdt: Decimal | None = None
    equity_fraction: Decimal | None = None


def _symbol_exposure(value: Any, path: str) -> SymbolExposureConfig:
    keys = {"usdt": Key(decimal(gt=0)), "equity_fraction": Key(decimal(gt=0))}
    given = section(value, path, keys)
    if len(given) != 1:
        raise ConfigError(path, "give exactly one of usdt, equity_fraction")
    return SymbolExposureConfig(**given)


@dataclass(frozen=True, slots=True)
class GuardsConfig:
    """Account guards. Everything is off by default except ``max_open_positions`` (10): margin and
    leverage already bound gross exposure, so no further default cap is imposed."""

    max_open_positions: int | None = 10
    max_gross_exposure: Decimal | None = None
    max_symbol_exposure: SymbolExposureConfig | None = None
    daily_loss_limit_pct: Decimal | None = None
    max_drawdown_pct: Decimal | None = None
    loss_streak: LossStreakConfig | None = None
    min_liquidation_distance_pct: Decimal | None = None
    min_liquidation_distance_atr: AtrDistanceConfig | None = None


_LOSS_STREAK = {
    "losses": Key(integer(ge=1, le=1000), required=True),
    "cooldown_minutes": Key(decimal(gt=0), required=True),
}
_ATR_DISTANCE = {
    "multiple": Key(decimal(gt=0), required=True),
    "timeframe": Key(timeframe, required=True),
    "period": Key(integer(ge=1, le=1000)),
}
_GUARDS = {
    "max_open_positions": Key(nullable(integer(ge=1))),  # null: no cap
    "max_gross_exposure": Key(nullable(decimal(gt=0))),
    "max_symbol_exposure": Key(nullable(_symbol_exposure)),
    "daily_loss_limit_pct": Key(nullable(_percent_of_equity)),
    "max_drawdown_pct": Key(nullable(_percent_of_equity)),
    "loss_streak": Key(nullable(record(LossStreakConfig, _LOSS_STREAK))),
    "min_liquidation_distance_pct": Key(nullable(decimal(gt=0, lt=_HUNDRED))),
    "min_liquidation_distance_atr": Key(nullable(record(AtrDistanceConfig, _ATR_DISTANCE))),
}


def _strategy_sizing(value: Any, path: str) -> SizingConfig:
    sizing: SizingConfig = section(value, path, {"sizing": Key(SizingConfig.from_mapping, required=True)})["sizing"]
    return sizing


_EMPTY: Mapping[str, Any] = MappingProxyType({})
_margin_type_map = mapping_of(_symbol, _margin_type)


def _margin_types(value: Any, path: str) -> Mapping[str, MarginType]:
    """Per-symbol overrides; one type for every symbol is the run's ``margin_type`` instead."""
    if isinstance(value, str):
        raise ConfigError(path, f"expected per-symbol margin types, e.g. {{FILUSDT: {value}}}; for every symbol "
                                "set backtest.margin_type (or live.margin_type)")
    return _margin_type_map(value, path)


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """The whole ``risk`` section. Build it with :meth:`from_mapping`; defaults are documented above."""

    default_leverage: int = 1
    leverage: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    margin_buffer_pct: Decimal = Decimal(1)
    sizing: SizingConfig = field(default_factory=SizingConfig)
    strategies: Mapping[str, SizingConfig] = field(default_factory=lambda: _EMPTY)
    guards: GuardsConfig = field(default_factory=GuardsConfig)
    state: TradingState = TradingState.ACTIVE
    symbol_states: Mapping[str, TradingState] = field(default_factory=lambda: _EMPTY)
    margin_type: Mapping[str, MarginType] = field(default_factory=lambda: _EMPTY)
    default_margin_type: MarginType = MarginType.CROSSED  # the run's (backtest.margin_type or live.margin_type)
    path: str = "risk"

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any] | None, path: str = "risk", *, default_margin_type: str = "CROSSED"
    ) -> RiskConfig:
        """``default_margin_type`` is the run's own (``backtest.margin_type``, ``live.margin_type``): the
        ``margin_type`` section overrides it per symbol."""
        return cls(**section(data, path, _RISK), default_margin_type=MarginType(default_margin_type), path=path)

    # ---------------------------------------------------------------------------------- queries
    def sizing_for(self, strategy_id: str) -> SizingConfig:
        return self.strategies.get(strategy_id, self.sizing)

    def leverage_for(self, symbol: str) -> int:
        return self.leverage.get(symbol, self.default_leverage)

    def margin_type_for(self, symbol: str) -> MarginType:
        """CROSSED or ISOLATED: the symbol's override, else the run's margin type."""
        return self.margin_type.get(symbol, self.default_margin_type)

    def leverage_path(self, symbol: str) -> str:
        return f"{self.path}.leverage.{symbol}" if symbol in self.leverage else f"{self.path}.default_leverage"

    def atr_needs(self) -> set[tuple[str, int]]:
        """(timeframe, period) pairs whose ATR the manager must keep; empty when none is configured."""
        needs = {
            (s.timeframe, s.atr_period)
            for s in (self.sizing, *self.strategies.values())
            if s.method is SizingMethod.VOLATILITY_TARGET and s.timeframe is not None
        }
        atr = self.guards.min_liquidation_distance_atr
        if atr is not None:
            needs.add((atr.timeframe, atr.period))
        return needs

    # ------------------------------------------------------------------------------- validation
    def validate(
        self,
        rules: Mapping[str, SymbolRules],
        brackets: Mapping[str, LeverageBrackets],
        symbols: Any = (),
    ) -> None:
        """Check symbols and leverage against exchange data; ``symbols`` are the ones strategies trade.

        Raises ConfigError naming the key (``risk.leverage.XUSDT``, or ``risk.default_leverage`` for a
        traded symbol that falls back to the default).
        """
        named = [(s, f"{self.path}.leverage.{s}") for s in self.leverage]
        named += [(s, f"{self.path}.symbol_states.{s}") for s in self.symbol_states]
        named += [(s, f"{self.path}.margin_type.{s}") for s in self.margin_type]
        named += [(s, f"{self.path}.symbols") for s in symbols]
        for sym, where in named:
            r = rules.get(sym)
            if r is None:
                raise ConfigError(where, f"unknown symbol {sym}: not in exchangeInfo")
            if not r.is_trading:
                raise ConfigError(where, f"symbol {sym} is not trading (status {r.status})")
            self.check_leverage(sym, brackets, where if sym in self.leverage else None)

    def check_strategy_ids(self, strategy_ids: Iterable[str], source: str | None = None) -> None:
        """Every ``risk.strategies`` key must name a strategy that exists (``strategy_ids``: the registry's
        names): a typo would silently drop the override. Overrides for strategies this run does not trade
        are allowed, so one risk section can serve several configs."""
        known = sorted(set(strategy_ids))
        for sid in self.strategies:
            if sid not in known:
                close = difflib.get_close_matches(sid, known, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise ConfigError(f"{self.path}.strategies.{sid}", f"no strategy named {sid!r} exists "
                                  f"(strategies: {', '.join(known)}){hint}", source)

    def check_leverage(self, symbol: str, brackets: Mapping[str, LeverageBrackets], where: str | None = None) -> int:
        """The symbol's leverage, or ConfigError when its brackets are missing or do not allow it."""
        lev = self.leverage_for(symbol)
        path = where or self.leverage_path(symbol)
        b = brackets.get(symbol)
        if b is None:
            raise ConfigError(path, f"no leverage brackets for {symbol}")
        top = b.brackets[0].initial_leverage
        if lev > top:
            raise ConfigError(path, f"leverage {lev} above the maximum {top} for {symbol}")
        return lev


_RISK = {
    "default_leverage": Key(_leverage),
    "leverage": Key(mapping_of(_symbol, _leverage)),
    "margin_buffer_pct": Key(decimal(ge=0, le=99)),
    "sizing": Key(SizingConfig.from_mapping),
    "strategies": Key(mapping_of(_strategy_id, _strategy_sizing)),
    "guards": Key(record(GuardsConfig, _GUARDS)),
    "state": Key(_state),
    "symbol_states": Key(mapping_of(_symbol, _state)),
    "margin_type": Key(_margin_types),
}
