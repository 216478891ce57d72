"""Read-only views the portfolio hands out, built cheaply: one is made per position change."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from ..core.account import PositionView


class _WritablePositionView:
    """A writable class with exactly PositionView's slots: filled with plain stores, then re-labelled (the frozen
    dataclass's ``__init__`` stores through ``object.__setattr__``; one view is made per position change)."""

    __slots__ = tuple(f.name for f in fields(PositionView))


def position_view(symbol: str, quantity: Decimal, entry_price: Decimal, leverage: int) -> PositionView:
    """``PositionView(symbol, quantity, entry_price, leverage)``, built cheaply (an equal, as frozen, instance)."""
    v: Any = _WritablePositionView()
    v.symbol = symbol
    v.quantity = quantity
    v.entry_price = entry_price
    v.leverage = leverage
    v.__class__ = PositionView
    return v


if {f.name for f in fields(PositionView)} != {"symbol", "quantity", "entry_price", "leverage"}:
    raise TypeError("PositionView's fields changed: update position_view")


__all__ = ["position_view"]
