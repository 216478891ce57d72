"""A strategy's ``self.state`` made durable: published when a handler changed it, restored on resume.

:class:`StateKeeper` subscribes after the runner (and its market hooks) to every event that calls strategy
code, so it runs right after each handler. It compares the state's canonical JSON with the last one
published (a few microseconds for a small dict; live runs only) and publishes
:class:`~kinetic_empire.core.events.StrategyStateSaved` when it differs; the journal commits that event at
once. A state that JSON cannot hold halts the strategy through the runner's safety wrapper, with an
error naming the strategy, the symbol and the offending value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.bus import EventBus
from ..core.clock import Clock
from ..core.events import (
    KlineClosed,
    MarkPriceUpdated,
    OrderFilled,
    OrderRejected,
    RiskDenied,
    StrategyStateSaved,
    TickerUpdated,
)
from .market_hooks import wants_mark_price, wants_ticker
from .runner import StrategyRunner


class StateError(TypeError):
    """``self.state`` is not a JSON-serialisable dict."""


def state_json(state: Any, who: str) -> str:
    """Canonical JSON of a strategy's state, or :class:`StateError` naming ``who`` and what is wrong."""
    if not isinstance(state, dict):
        raise StateError(f"{who}: self.state must be a dict, not {type(state).__name__}")
    try:
        return json.dumps(state, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StateError(f"{who}: self.state is not JSON-serialisable ({exc}); keep only dicts with string "
                         "keys, lists, str, int, float, bool and None in it") from None


class StateKeeper:
    """Publishes one runner's strategy state whenever a handler has changed it."""

    def __init__(self, runner: StrategyRunner, bus: EventBus, clock: Clock) -> None:
        self.runner = runner
        self._bus = bus
        self._clock = clock
        self._who = f"strategy {runner.strategy_id} on {runner.symbol}"
        self._last = "{}"
        self.saved = 0
        bus.subscribe(KlineClosed, self.after, topic=(runner.symbol, runner.timeframe))
        for cls in (OrderFilled, OrderRejected, RiskDenied):
            bus.subscribe(cls, self.after)
        if wants_mark_price(runner.strategy):
            bus.subscribe(MarkPriceUpdated, self.after, topic=runner.symbol)
        if wants_ticker(runner.strategy):
            bus.subscribe(TickerUpdated, self.after, topic=runner.symbol)

    def start(self) -> None:
        self.runner.start()
        self.after()

    def stop(self) -> None:
        self.runner.stop()
        self.after()

    def restore(self, state: Mapping[str, Any]) -> None:
        """Put a journaled state back (before ``on_start``); it counts as already saved."""
        self.runner.strategy.state = dict(state)
        self._last = state_json(self.runner.strategy.state, self._who)

    def after(self, _event: Any = None) -> None:
        """The check run after each handler: publish the state if it changed."""
        runner = self.runner
        if runner.halted:
            return
        try:
            text = state_json(runner.strategy.state, self._who)
        except StateError as exc:
            err = exc
            runner._guard(lambda: _raise(err), "state", _event)  # halts (live) or raises (backtest), naming it
            return
        if text == self._last:
            return
        self._last = text
        self.saved += 1
        now = self._clock.now_ms()
        self._bus.publish(StrategyStateSaved(strategy_id=runner.strategy_id, symbol=runner.symbol,
                                             state=json.loads(text), ts_event=now, ts_init=now))


def _raise(exc: BaseException) -> None:
    raise exc


def latest_states(events: Iterable[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The last saved state of each (strategy id, symbol) among journaled events."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for e in events:
        if isinstance(e, StrategyStateSaved):
            out[(e.strategy_id, e.symbol)] = dict(e.state)
    return out


__all__ = ["StateError", "StateKeeper", "latest_states", "state_json"]
