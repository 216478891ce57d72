"""Mark-price and ticker events for the strategies that ask for them, and nothing for those that don't.

A strategy opts in by defining ``on_mark_price`` or ``on_ticker``. :func:`market_data_wanted` tells a
composition root which streams to open (live) or replay (backtest): none when no strategy defines a
hook, so a kline-only strategy pays nothing. :class:`MarketHooks` delivers each event to one runner's
strategy through the runner's safety wrapper, and sends the intents the hook emitted.

A multi-symbol strategy gets the events of every symbol it trades (``update.symbol`` says whose); each
symbol's mark price and funding are kept in ``self.data[symbol]`` (``self.mark_price`` etc. are the first
symbol's).

A hook runs only once the strategy has seen its first kline after the warm-up (replay), or once the
live window holds the warm-up: before that ``self.close[-1]`` could be a kline that has not closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..core.bus import EventBus
from ..core.events import MarkPriceUpdated, TickerUpdated
from .base import Strategy
from .runner import StrategyRunner


def wants_mark_price(strategy: Strategy | type[Strategy]) -> bool:
    cls = strategy if isinstance(strategy, type) else type(strategy)
    return cls.on_mark_price is not Strategy.on_mark_price


def wants_ticker(strategy: Strategy | type[Strategy]) -> bool:
    cls = strategy if isinstance(strategy, type) else type(strategy)
    return cls.on_ticker is not Strategy.on_ticker


@dataclass(frozen=True, slots=True)
class MarketDataWanted:
    """Symbols whose mark price / ticker some strategy asked for (empty: open or replay nothing)."""

    mark_price: frozenset[str] = frozenset()
    ticker: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.mark_price or self.ticker)


def market_data_wanted(runners: Iterable[StrategyRunner]) -> MarketDataWanted:
    runners = list(runners)
    return MarketDataWanted(frozenset(s for r in runners if wants_mark_price(r.strategy) for s in r.symbols),
                            frozenset(s for r in runners if wants_ticker(r.strategy) for s in r.symbols))


class MarketHooks:
    """Feeds one runner's strategy its symbols' mark-price and ticker events (only the hooks it defines)."""

    def __init__(self, runner: StrategyRunner, bus: EventBus, *, live: bool) -> None:
        self.runner = runner
        self.strategy = runner.strategy
        self._live = live
        self.delivered = 0
        for sym in runner.symbols:
            if wants_mark_price(self.strategy):
                bus.subscribe(MarkPriceUpdated, self.on_mark_price, topic=sym)
            if wants_ticker(self.strategy):
                bus.subscribe(TickerUpdated, self.on_ticker, topic=sym)

    def _ready(self) -> bool:
        r = self.runner
        if r.halted:
            return False
        if self._live:  # the live indicators are past their warm-up
            return r.live_ready
        return r.position_in_history >= r.warmup - 1  # the first kline after the warm-up was delivered

    def on_mark_price(self, event: MarkPriceUpdated) -> None:
        s = self.strategy
        market = s._markets.get(event.symbol)
        if market is None:
            return  # not one of this strategy's symbols (a topic shared by accident)
        market.update(event)
        if event.symbol == s.symbol:
            s.mark_price, s.index_price = market.mark_price, market.index_price
            s.funding_rate, s.next_funding_time = market.funding_rate, market.next_funding_time
        if self._ready():
            self._call(lambda: s.on_mark_price(event), "on_mark_price", event)

    def on_ticker(self, event: TickerUpdated) -> None:
        if self._ready():
            s = self.strategy
            self._call(lambda: s.on_ticker(event), "on_ticker", event)

    def _call(self, call: object, hook: str, event: object) -> None:
        r = self.runner
        self.delivered += 1
        r._guard(call, hook, event)  # type: ignore[arg-type]  # the runner's safety wrapper: StrategyError
        if r._pending:
            r._flush()


def attach_market_hooks(
    runners: Iterable[StrategyRunner], bus: EventBus, *, live: bool
) -> tuple[list[MarketHooks], MarketDataWanted]:
    """One :class:`MarketHooks` per runner whose strategy defines a hook (none subscribe otherwise), and
    the symbols whose mark price / ticker must therefore be streamed or replayed."""
    runners = list(runners)
    wanted = market_data_wanted(runners)
    hooks = [MarketHooks(r, bus, live=live) for r in runners
             if wants_mark_price(r.strategy) or wants_ticker(r.strategy)]
    return hooks, wanted


__all__ = ["MarketDataWanted", "MarketHooks", "attach_market_hooks", "market_data_wanted", "wants_mark_price",
           "wants_ticker"]
