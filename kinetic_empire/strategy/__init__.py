"""Strategy plugin API: subclass :class:`Strategy`, declare :class:`Param`s and indicators with ``I``."""

from . import indicators
from .base import API_VERSION, Param, Position, Strategy
from .rejection import OrderRejection
from .series import Series, crossover, crossunder

__all__ = ["API_VERSION", "OrderRejection", "Param", "Position", "Series", "Strategy", "crossover", "crossunder",
           "indicators"]
