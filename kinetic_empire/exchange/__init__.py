"""The simulated USD-M futures exchange: one model for backtests, the local sandbox and tests."""

from .config import ExchangeConfig
from .orders import SimOrder
from .simulated import SimulatedExchange

__all__ = ["ExchangeConfig", "SimOrder", "SimulatedExchange"]
