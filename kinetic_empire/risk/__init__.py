"""Risk: position sizing, leverage, exchange-rule validation, account guards and trading state.

The :class:`RiskManager` is the one gate between strategy intents and orders, in backtests, sandbox
paper runs and live::

    config = RiskConfig.from_mapping(yaml_data["risk"])      # strict; ConfigError names the key
    config.validate(rules, brackets, traded_symbols)         # symbols and leverage vs exchange data
    risk = RiskManager(bus, clock, account, rules, brackets, config,
                       fee_rate_taker=Decimal("0.0005"), fee_rate_maker=Decimal("0.0002"))
    exchange.set_leverage(symbol, risk.leverage_for(symbol))  # for each traded symbol

Configuration schema: :mod:`kinetic_empire.risk.config`. Modules: ``manager`` (the gate: bus
wiring and public API), ``decision`` (one intent -> order requests or a Denial), ``sizing``
(methods and caps), ``guards`` (pure checks returning a Denial), ``liquidation`` (Binance's
formula), ``state`` (ACTIVE / REDUCING / HALTED and the latches behind them), ``watch`` (daily
loss, drawdown and loss-streak watches that set those latches), ``protection`` (stop-loss and
take-profit placed after the entry fills, cancelled when flat), ``guard`` (live: keeps each position's
stop on the venue, closes at market when it is refused as already triggered, alerts), ``commands``
(re-place protection, close, flatten, cancel all), ``ids`` (client order ids), ``atr`` (incremental Wilder
ATR).
"""

from .atr import AtrBook, WilderAtr
from .config import (
    AtrDistanceConfig,
    GuardsConfig,
    LossStreakConfig,
    RiskConfig,
    SizingConfig,
    SizingMethod,
    SymbolExposureConfig,
)
from .guards import Denial
from .ids import CLIENT_ID_RE, client_id
from .liquidation import liquidation_price
from .manager import RiskManager

__all__ = [
    "CLIENT_ID_RE",
    "AtrBook",
    "AtrDistanceConfig",
    "Denial",
    "GuardsConfig",
    "LossStreakConfig",
    "RiskConfig",
    "RiskManager",
    "SizingConfig",
    "SizingMethod",
    "SymbolExposureConfig",
    "WilderAtr",
    "client_id",
    "liquidation_price",
]
