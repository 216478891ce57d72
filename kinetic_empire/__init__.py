"""Kinetic Empire: event-driven paper trading and backtesting for Binance USD-M perpetual futures."""

from . import indicators
from .strategy import API_VERSION, Param, Position, Series, Strategy, crossover, crossunder

__version__ = "0.1.0"

__all__ = [
    "API_VERSION",
    "Param",
    "Position",
    "Series",
    "Strategy",
    "__version__",
    "crossover",
    "crossunder",
    "indicators",
]
