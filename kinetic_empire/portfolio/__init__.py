"""The portfolio layer: reads the bus (never writes to it) and keeps the account view and run records."""

from .curve import step_lookup
from .portfolio import Portfolio
from .records import DenialRecord, OrderRecord, TradeRecord

__all__ = ["DenialRecord", "OrderRecord", "Portfolio", "TradeRecord", "step_lookup"]
