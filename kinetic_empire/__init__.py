"""Kinetic Empire: event-driven paper trading and backtesting for Binance USD-M perpetual futures.

The strategy API is re-exported here for plugins (``from kinetic_empire import Param, Strategy``), but
imported only when first asked for: every ``kinetic`` command imports this package, and ``--help``
must not pay for numpy and the indicator libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import indicators
    from .strategy import API_VERSION, OrderRejection, Param, Position, Series, Strategy, crossover, crossunder

__version__ = "0.1.0"

_LAZY = {  # public name -> module that defines it
    "API_VERSION": ".strategy",
    "OrderRejection": ".strategy",
    "Param": ".strategy",
    "Position": ".strategy",
    "Series": ".strategy",
    "Strategy": ".strategy",
    "crossover": ".strategy",
    "crossunder": ".strategy",
    "indicators": ".indicators",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(where, __name__)
    value = module if name == "indicators" else getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "API_VERSION",
    "OrderRejection",
    "Param",
    "Position",
    "Series",
    "Strategy",
    "__version__",
    "crossover",
    "crossunder",
    "indicators",
]
