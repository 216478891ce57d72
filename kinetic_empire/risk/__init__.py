"""Risk: position sizing, leverage, exchange-rule validation, account guards and trading state.

The :class:`RiskManager` is the one gate between strategy intents and orders, in backtests, sandbox
paper runs and live. Configuration schema: :mod:`kinetic_empire.risk.config`.
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
