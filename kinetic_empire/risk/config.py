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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from ..core.enums import TradingState
from ..core.errors import ConfigError
from ..core.rules import LeverageBrackets, SymbolRules
from ..core.timeframes import TIMEFRAME_MS

MAX_EXCHANGE_LEVERAGE = 125
_SYMBOL_RE = re.compile(r"^[^\sa-z]{2,40}$")  # Binance has BTCUSDT_260327 and 币安人生USDT


class SizingMethod(StrEnum):
    FIXED_QUANTITY = "fixed_quantity"
    FIXED_NOTIONAL = "fixed_notional"
    PERCENT_EQUITY = "percent_equity"
    RISK_PER_TRADE = "risk_per_trade"
    VOLATILITY_TARGET = "volatility_target"


# ------------------------------------------------------------------------------------------ readers


def _mapping(data: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a mapping, got {type(data).__name__}")
    return data


def _keys(
    data: Any, path: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> Mapping[str, Any]:
    """``data`` as a mapping whose keys are all in ``allowed`` and include ``required``."""
    data = _mapping(data, path)
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{path}.{key}", "keys must be strings")
        if key not in allowed:
            raise ConfigError(f"{path}.{key}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
    for key in required:
        if data.get(key) is None:
            raise ConfigError(f"{path}.{key}", "required")
    return data


def _number(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ConfigError(path, f"expected a number, got {type(value).__name__} {value!r}")
    d = Decimal(str(value))
    if not d.is_finite():
        raise ConfigError(path, f"expected a finite number, got {value!r}")
    return d


def _positive(value: Any, path: str, *, upper: Decimal | None = None, allow_zero: bool = False) -> Decimal:
    d = _number(value, path)
    if d < 0 or (d == 0 and not allow_zero):
        raise ConfigError(path, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    if upper is not None and d > upper:
        raise ConfigError(path, f"must be <= {upper}, got {value!r}")
    return d


def _int(value: Any, path: str, *, lo: int = 1, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"expected an integer, got {type(value).__name__} {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ConfigError(path, f"must be {bound}, got {value}")
    return value


def _timeframe(value: Any, path: str) -> str:
    if value not in TIMEFRAME_MS:
        raise ConfigError(path, f"unknown timeframe {value!r}; one of {', '.join(TIMEFRAME_MS)}")
    return str(value)


def _state(value: Any, path: str) -> TradingState:
    try:
        return TradingState(value)
    except ValueError:
        raise ConfigError(path, f"unknown state {value!r}; one of ACTIVE, REDUCING, HALTED") from None


def _symbol(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _SYMBOL_RE.match(value):
        raise ConfigError(path, f"not a symbol name: {value!r}")
    return value


_HUNDRED = Decimal(100)


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

    _KEYS = MappingProxyType(
        {
            SizingMethod.FIXED_QUANTITY: ({"quantity"}, {"quantity"}),
            SizingMethod.FIXED_NOTIONAL: ({"notional"}, {"notional"}),
            SizingMethod.PERCENT_EQUITY: ({"percent"}, {"percent"}),
            SizingMethod.RISK_PER_TRADE: ({"percent"}, {"percent"}),
            SizingMethod.VOLATILITY_TARGET: (
                {"percent", "timeframe", "atr_period", "atr_multiple"},
                {"percent", "timeframe"},
            ),
        }
    )

    @classmethod
    def from_mapping(cls, data: Any, path: str) -> SizingConfig:
        raw = _mapping(data, path).get("method")
        if not isinstance(raw, str) or raw not in SizingMethod.__members__.values():
            raise ConfigError(f"{path}.method", f"unknown sizing method {raw!r}; one of {', '.join(SizingMethod)}")
        method = SizingMethod(raw)
        allowed, required = cls._KEYS[method]
        _keys(data, path, allowed | {"method"}, required)
        if method is SizingMethod.FIXED_QUANTITY:
            return cls(method, quantity=_positive(data["quantity"], f"{path}.quantity"), percent=None)
        if method is SizingMethod.FIXED_NOTIONAL:
            return cls(method, notional=_positive(data["notional"], f"{path}.notional"), percent=None)
        upper = None if method is SizingMethod.PERCENT_EQUITY else _HUNDRED
        percent = _positive(data["percent"], f"{path}.percent", upper=upper)
        if method is not SizingMethod.VOLATILITY_TARGET:
            return cls(method, percent=percent)
        return cls(
            method,
            percent=percent,
            timeframe=_timeframe(data["timeframe"], f"{path}.timeframe"),
            atr_period=_int(data.get("atr_period", 14), f"{path}.atr_period", hi=1000),
            atr_multiple=_positive(data.get("atr_multiple", 1), f"{path}.atr_multiple"),
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

    @classmethod
    def from_mapping(cls, data: Any, path: str) -> GuardsConfig:
        names = {f for f in cls.__dataclass_fields__}
        _keys(data, path, names)

        def opt(key: str) -> Any:
            return data.get(key)

        mop = opt("max_open_positions") if "max_open_positions" in data else 10
        exposure = None
        if opt("max_symbol_exposure") is not None:
            p = f"{path}.max_symbol_exposure"
            raw = _keys(opt("max_symbol_exposure"), p, {"usdt", "equity_fraction"})
            if len(raw) != 1:
                raise ConfigError(p, "give exactly one of usdt, equity_fraction")
            exposure = SymbolExposureConfig(
                usdt=_positive(raw["usdt"], f"{p}.usdt") if "usdt" in raw else None,
                equity_fraction=(
                    _positive(raw["equity_fraction"], f"{p}.equity_fraction") if "equity_fraction" in raw else None
                ),
            )
        streak = None
        if opt("loss_streak") is not None:
            p = f"{path}.loss_streak"
            raw = _keys(opt("loss_streak"), p, {"losses", "cooldown_minutes"}, {"losses", "cooldown_minutes"})
            streak = LossStreakConfig(
                _int(raw["losses"], f"{p}.losses", hi=1000),
                _positive(raw["cooldown_minutes"], f"{p}.cooldown_minutes"),
            )
        atr = None
        if opt("min_liquidation_distance_atr") is not None:
            p = f"{path}.min_liquidation_distance_atr"
            raw = _keys(
                opt("min_liquidation_distance_atr"),
                p,
                {"multiple", "timeframe", "period"},
                {"multiple", "timeframe"},
            )
            atr = AtrDistanceConfig(
                _positive(raw["multiple"], f"{p}.multiple"),
                _timeframe(raw["timeframe"], f"{p}.timeframe"),
                _int(raw.get("period", 14), f"{p}.period", hi=1000),
            )

        def pct(key: str) -> Decimal | None:
            v = opt(key)
            return None if v is None else _positive(v, f"{path}.{key}", upper=_HUNDRED)

        liq_pct = pct("min_liquidation_distance_pct")
        if liq_pct is not None and liq_pct >= _HUNDRED:
            raise ConfigError(f"{path}.min_liquidation_distance_pct", "must be < 100")
        gross = opt("max_gross_exposure")
        return cls(
            max_open_positions=None if mop is None else _int(mop, f"{path}.max_open_positions"),
            max_gross_exposure=None if gross is None else _positive(gross, f"{path}.max_gross_exposure"),
            max_symbol_exposure=exposure,
            daily_loss_limit_pct=pct("daily_loss_limit_pct"),
            max_drawdown_pct=pct("max_drawdown_pct"),
            loss_streak=streak,
            min_liquidation_distance_pct=liq_pct,
            min_liquidation_distance_atr=atr,
        )


_EMPTY: Mapping[str, Any] = MappingProxyType({})


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
    path: str = "risk"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, path: str = "risk") -> RiskConfig:
        data = {} if data is None else data
        allowed = {
            "default_leverage",
            "leverage",
            "margin_buffer_pct",
            "sizing",
            "strategies",
            "guards",
            "state",
            "symbol_states",
        }
        _keys(data, path, allowed)
        default_lev = _int(data.get("default_leverage", 1), f"{path}.default_leverage", hi=MAX_EXCHANGE_LEVERAGE)
        lev: dict[str, int] = {}
        for sym, value in _mapping(data.get("leverage") or {}, f"{path}.leverage").items():
            p = f"{path}.leverage.{sym}"
            lev[_symbol(sym, p)] = _int(value, p, hi=MAX_EXCHANGE_LEVERAGE)
        buffer = _positive(
            data.get("margin_buffer_pct", 1), f"{path}.margin_buffer_pct", upper=Decimal(99), allow_zero=True
        )
        sizing = SizingConfig.from_mapping(data["sizing"], f"{path}.sizing") if "sizing" in data else SizingConfig()
        strategies: dict[str, SizingConfig] = {}
        for sid, entry in _mapping(data.get("strategies") or {}, f"{path}.strategies").items():
            p = f"{path}.strategies.{sid}"
            if not isinstance(sid, str) or not sid:
                raise ConfigError(p, "strategy ids must be non-empty strings")
            _keys(entry, p, {"sizing"}, {"sizing"})
            strategies[sid] = SizingConfig.from_mapping(entry["sizing"], f"{p}.sizing")
        guards = GuardsConfig.from_mapping(data.get("guards") or {}, f"{path}.guards")
        states: dict[str, TradingState] = {}
        for sym, value in _mapping(data.get("symbol_states") or {}, f"{path}.symbol_states").items():
            p = f"{path}.symbol_states.{sym}"
            states[_symbol(sym, p)] = _state(value, p)
        return cls(
            default_leverage=default_lev,
            leverage=MappingProxyType(lev),
            margin_buffer_pct=buffer,
            sizing=sizing,
            strategies=MappingProxyType(strategies),
            guards=guards,
            state=_state(data.get("state", "ACTIVE"), f"{path}.state"),
            symbol_states=MappingProxyType(states),
            path=path,
        )

    # ---------------------------------------------------------------------------------- queries
    def sizing_for(self, strategy_id: str) -> SizingConfig:
        return self.strategies.get(strategy_id, self.sizing)

    def leverage_for(self, symbol: str) -> int:
        return self.leverage.get(symbol, self.default_leverage)

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
        named += [(s, f"{self.path}.symbols") for s in symbols]
        for sym, where in named:
            r = rules.get(sym)
            if r is None:
                raise ConfigError(where, f"unknown symbol {sym}: not in exchangeInfo")
            if not r.is_trading:
                raise ConfigError(where, f"symbol {sym} is not trading (status {r.status})")
            self.check_leverage(sym, brackets, where if sym in self.leverage else None)

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
