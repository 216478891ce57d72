"""What a strategy sees of one symbol: its five price series, revealed up to the current kline.

A multi-symbol strategy (``multi_symbol = True``) reads each of its symbols through ``self.data[symbol]``;
a single-symbol one has its own symbol there too. Every symbol's series of one strategy share one cursor:
the histories are aligned on kline open time (a row per time where every symbol has a kline), so
``self.I(fn, self.data["A"].close, self.data["B"].close)`` pairs values of the same kline.

Each symbol's mark price, index price, funding rate and next funding time (``self.data["B"].funding_rate``)
are kept current from its mark-price events while the strategy defines ``on_mark_price``
(:mod:`.market_hooks`); they live in a :class:`MarketState` the strategy owns, so recomputing the history
(live warm-up, lookahead check) never resets them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..core.events import MarkPriceUpdated
from .series import Cursor, Series

FIELDS = ("open", "high", "low", "close", "volume")
NAN = float("nan")


class MarketState:
    """One symbol's latest mark price, index price, funding rate (the one to be applied at
    ``next_funding_time``) and next funding time: NaN / 0 until its first mark-price event."""

    __slots__ = ("funding_rate", "index_price", "mark_price", "next_funding_time")

    def __init__(self) -> None:
        self.mark_price = NAN
        self.index_price = NAN
        self.funding_rate = NAN
        self.next_funding_time = 0

    def update(self, event: MarkPriceUpdated) -> None:
        """Take a mark-price event; a field the event lacks (index 0, funding NaN) keeps its last value."""
        self.mark_price = event.mark_price
        if event.index_price:
            self.index_price = event.index_price
        if not math.isnan(event.funding_rate):
            self.funding_rate = event.funding_rate
        self.next_funding_time = event.next_funding_time


class SymbolData:
    """One symbol's ``open``, ``high``, ``low``, ``close`` and ``volume`` series (read-only views)."""

    __slots__ = ("close", "high", "low", "market", "open", "symbol", "volume")

    def __init__(self, symbol: str, series: Sequence[Series], market: MarketState | None = None) -> None:
        self.symbol = symbol
        self.open, self.high, self.low, self.close, self.volume = series
        self.market = market if market is not None else MarketState()

    @property
    def mark_price(self) -> float:
        return self.market.mark_price

    @property
    def index_price(self) -> float:
        return self.market.index_price

    @property
    def funding_rate(self) -> float:
        """The symbol's current (predicted) funding rate, applied at ``next_funding_time``."""
        return self.market.funding_rate

    @property
    def next_funding_time(self) -> int:
        return self.market.next_funding_time

    def fields(self) -> dict[str, Series]:
        return {"open": self.open, "high": self.high, "low": self.low, "close": self.close, "volume": self.volume}

    def __repr__(self) -> str:
        return f"SymbolData({self.symbol}, {self.close!r})"


def symbol_views(
    symbols: Sequence[str], arrays: Sequence[np.ndarray], cursor: Cursor,
    markets: Mapping[str, MarketState] | None = None,
) -> dict[str, SymbolData]:
    """Series for each symbol from five arrays: 1-D for one symbol, else 2-D with a column per symbol
    (each with its ``markets`` entry, if given)."""
    markets = markets or {}
    first = np.asarray(arrays[0])
    if first.ndim == 1:
        if len(symbols) != 1:
            raise ValueError(f"one price column given for {len(symbols)} symbols ({', '.join(symbols)})")
        return {symbols[0]: SymbolData(symbols[0], [Series(a, cursor, f) for f, a in zip(FIELDS, arrays)],
                                       markets.get(symbols[0]))}
    if first.ndim != 2 or first.shape[1] != len(symbols):
        raise ValueError(f"price arrays of shape {first.shape} for {len(symbols)} symbols ({', '.join(symbols)})")
    return {
        sym: SymbolData(sym, [Series(np.ascontiguousarray(np.asarray(a)[:, j]), cursor, f"{sym}.{f}")
                              for f, a in zip(FIELDS, arrays)], markets.get(sym))
        for j, sym in enumerate(symbols)
    }


def price_series(data: dict[str, SymbolData]) -> list[Series]:
    """Every symbol's five series, symbol by symbol in ``FIELDS`` order (what live updates append to)."""
    return [getattr(d, f) for d in data.values() for f in FIELDS]


__all__ = ["FIELDS", "MarketState", "SymbolData", "price_series", "symbol_views"]
