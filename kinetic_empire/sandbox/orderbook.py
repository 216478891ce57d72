"""The sandbox's order book: a spread and depth derived from the replayed klines.

Binance fills a market order against the book at the moment it arrives: a buy takes the asks from the
best one up, a sell the bids. The replay has only klines, so the book is a model of one, rebuilt at
each price update and the same for every account (our own fills do not consume it):

* **Spread**: at least ``spread_ticks`` ticks, widened to ``range_spread_share`` of the last closed
  kline's high-low range (a quiet market is tight, a wild one wide). With ``n`` ticks of spread the
  best bid is ``last - (n // 2)`` ticks and the best ask ``n`` ticks above it, so with the default
  (one tick) bid = last and ask = last + 1 tick.
* **Depth**: one level per tick on each side; every level holds ``level_volume_share`` of the volume
  of the kline in play (rounded to the step, at least one step), so an order larger than a level walks
  the book and its average price gets worse, as on Binance.

REST ``/fapi/v1/depth`` and ``bookTicker``, the ``@bookTicker``, ``@depth`` and ``@depth<N>`` streams
and market fills all read this one model, so what a client sees is what it gets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from .market import ReplayedKlines

MAX_WALK_LEVELS = 100_000  # a market order walks at most this many levels; the rest waits for a price


@dataclass(frozen=True, slots=True)
class BookConfig:
    """How the sandbox derives its book from the klines (see the module docstring)."""

    spread_ticks: int = 1
    range_spread_share: float = 0.0
    level_volume_share: float = 0.25

    def __post_init__(self) -> None:
        if self.spread_ticks < 1:
            raise ValueError(f"book.spread_ticks must be at least 1, not {self.spread_ticks}")
        if not 0.0 <= self.range_spread_share <= 1.0:
            raise ValueError(f"book.range_spread_share must be within [0, 1], not {self.range_spread_share}")
        if not 0.0 < self.level_volume_share <= 1.0:
            raise ValueError(f"book.level_volume_share must be within (0, 1], not {self.level_volume_share}")


@dataclass(frozen=True, slots=True)
class Quote:
    """The book of one symbol at one update: best prices (floats on the tick grid) and the level size."""

    bid: float
    ask: float
    tick: float
    level_qty: float


class OrderBook:
    """Builds :class:`Quote` snapshots and book sides for replayed symbols."""

    def __init__(self, config: BookConfig | None = None) -> None:
        self.config = config or BookConfig()

    def quote(self, s: ReplayedKlines) -> Quote:
        cfg = self.config
        tick = s.tick or 10.0 ** -s.price_places
        ticks = cfg.spread_ticks
        if cfg.range_spread_share > 0.0:
            hi, lo = _last_range(s)
            ticks = max(ticks, math.ceil(round(cfg.range_spread_share * (hi - lo) / tick, 9)))
        last_ticks = round(s.last / tick)
        bid = (last_ticks - ticks // 2) * tick
        ask = bid + ticks * tick
        return Quote(bid=bid, ask=ask, tick=tick, level_qty=self._level_qty(s))

    def _level_qty(self, s: ReplayedKlines) -> float:
        step = float(s.rules.step_size) or 1.0
        row = s.closed if s.partial is not None else s.closed - 1
        volume = float(s.frame.volume[row]) if 0 <= row < len(s.frame) else 0.0
        return max(step, math.floor(volume * self.config.level_volume_share / step) * step)

    def side(self, s: ReplayedKlines, buy: bool, levels: int, q: Quote | None = None) -> list[list[str]]:
        """``levels`` price levels of the side a buy takes (asks, ascending) or a sell takes (bids,
        descending), as Binance's ``[["price", "qty"], ...]``; of the current book unless ``q`` is given."""
        q = q or self.quote(s)
        qty = s.qty(q.level_qty)
        if buy:
            return [[s.price(q.ask + i * q.tick), qty] for i in range(levels)]
        return [[s.price(q.bid - i * q.tick), qty] for i in range(levels) if q.bid - i * q.tick > q.tick / 2]

    def top(self, s: ReplayedKlines) -> tuple[str, str, str, str]:
        """(bid, bid qty, ask, ask qty) as bookTicker shows them ("0" sides before the first price)."""
        bids, asks = self.side(s, False, 1), self.side(s, True, 1)
        none = [s.price(0.0), s.qty(0.0)]
        (b, bq), (a, aq) = bids[0] if bids and s.last else none, asks[0] if s.last else none
        return b, bq, a, aq

    def walk(self, s: ReplayedKlines, buy: bool) -> Iterator[tuple[Decimal, Decimal]]:
        """(price, quantity) levels a market order takes, best first, as Decimals for the ledger."""
        q = self.quote(s)
        qty = Decimal(s.qty(q.level_qty))
        for i in range(MAX_WALK_LEVELS):
            price = q.ask + i * q.tick if buy else q.bid - i * q.tick
            if price <= q.tick / 2:
                return
            yield Decimal(s.price(price)), qty


def _last_range(s: ReplayedKlines) -> tuple[float, float]:
    """High and low of the last closed kline (of the kline in play before any has closed)."""
    if s.closed:
        i = s.closed - 1
        return float(s.frame.high[i]), float(s.frame.low[i])
    if s.partial is not None:
        return s.partial[2], s.partial[3]
    return s.last, s.last
