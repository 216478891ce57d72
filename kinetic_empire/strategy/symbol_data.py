"""What a strategy sees of one symbol: its five price series, revealed up to the current kline.

A multi-symbol strategy (``multi_symbol = True``) reads each of its symbols through ``self.data[symbol]``;
a single-symbol one has its own symbol there too. Every symbol's series of one strategy share one cursor:
the histories are aligned on kline open time (a row per time where every symbol has a kline), so
``self.I(fn, self.data["A"].close, self.data["B"].close)`` pairs values of the same kline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .series import Cursor, Series

FIELDS = ("open", "high", "low", "close", "volume")


class SymbolData:
    """One symbol's ``open``, ``high``, ``low``, ``close`` and ``volume`` series (read-only views)."""

    __slots__ = ("close", "high", "low", "open", "symbol", "volume")

    def __init__(self, symbol: str, series: Sequence[Series]) -> None:
        self.symbol = symbol
        self.open, self.high, self.low, self.close, self.volume = series

    def fields(self) -> dict[str, Series]:
        return {"open": self.open, "high": self.high, "low": self.low, "close": self.close, "volume": self.volume}

    def __repr__(self) -> str:
        return f"SymbolData({self.symbol}, {self.close!r})"


def symbol_views(
    symbols: Sequence[str], arrays: Sequence[np.ndarray], cursor: Cursor
) -> dict[str, SymbolData]:
    """Series for each symbol from five arrays: 1-D for one symbol, else 2-D with a column per symbol."""
    first = np.asarray(arrays[0])
    if first.ndim == 1:
        if len(symbols) != 1:
            raise ValueError(f"one price column given for {len(symbols)} symbols ({', '.join(symbols)})")
        return {symbols[0]: SymbolData(symbols[0], [Series(a, cursor, f) for f, a in zip(FIELDS, arrays)])}
    if first.ndim != 2 or first.shape[1] != len(symbols):
        raise ValueError(f"price arrays of shape {first.shape} for {len(symbols)} symbols ({', '.join(symbols)})")
    return {
        sym: SymbolData(sym, [Series(np.ascontiguousarray(np.asarray(a)[:, j]), cursor, f"{sym}.{f}")
                              for f, a in zip(FIELDS, arrays)])
        for j, sym in enumerate(symbols)
    }


def price_series(data: dict[str, SymbolData]) -> list[Series]:
    """Every symbol's five series, symbol by symbol in ``FIELDS`` order (what live updates append to)."""
    return [getattr(d, f) for d in data.values() for f in FIELDS]


__all__ = ["FIELDS", "SymbolData", "price_series", "symbol_views"]
