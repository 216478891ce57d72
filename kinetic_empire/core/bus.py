"""A synchronous event bus: the only loop in the engine.

Handlers run depth-first, in the order they subscribed, on the caller's stack: when the simulated
exchange publishes a fill while processing a kline, the strategy's position is already updated when
the same kline reaches the strategy. Deterministic order makes backtests reproducible.

Routing is by event type plus an optional topic (klines use ``(symbol, timeframe)``), resolved once
per (type, topic) pair and cached, so publishing costs one dict lookup and one call per handler.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from .errors import HandlerError, StrategyError

Handler = Callable[[Any], None]
ErrorSink = Callable[[HandlerError], None]


def _name(handler: Handler) -> str:
    owner = getattr(handler, "__self__", None)
    qual = getattr(handler, "__qualname__", repr(handler))
    return f"{type(owner).__name__}.{handler.__name__}" if owner is not None else qual


class EventBus:
    """Publish/subscribe by event type and topic.

    ``on_error`` decides what a failing handler does: None (backtests) raises :class:`HandlerError`
    at once, stopping the run; a callable (live) receives the error and delivery continues with the
    next handler.
    """

    __slots__ = ("_cache", "_on_error", "_subs", "_version")

    def __init__(self, on_error: ErrorSink | None = None) -> None:
        self._subs: list[tuple[type, Hashable | None, Handler]] = []
        self._cache: dict[tuple[type, Hashable | None], tuple[Handler, ...]] = {}
        self._on_error = on_error
        self._version = 0

    def subscribe(self, event_type: type, handler: Handler, topic: Hashable | None = None) -> None:
        """Receive ``event_type`` events; with a topic, only those published with that topic."""
        self._subs.append((event_type, topic, handler))
        self._cache.clear()
        self._version += 1

    def unsubscribe(self, event_type: type, handler: Handler, topic: Hashable | None = None) -> None:
        self._subs.remove((event_type, topic, handler))
        self._cache.clear()
        self._version += 1

    def handlers(self, event_type: type, topic: Hashable | None = None) -> tuple[Handler, ...]:
        """Handlers for a (type, topic) pair in subscription order: topic-specific and catch-all."""
        key = (event_type, topic)
        found = self._cache.get(key)
        if found is None:
            found = tuple(h for (t, tp, h) in self._subs if issubclass(event_type, t) and (tp is None or tp == topic))
            self._cache[key] = found
        return found

    def publish(self, event: Any, topic: Hashable | None = None) -> None:
        handlers = self._cache.get((type(event), topic))
        if handlers is None:
            handlers = self.handlers(type(event), topic)
        for handler in handlers:
            try:
                handler(event)
            except (HandlerError, StrategyError):
                raise
            except Exception as exc:
                error = HandlerError(_name(handler), event, exc)
                if self._on_error is None:
                    raise error from exc
                self._on_error(error)

    def publisher(self, event_type: type, topic: Hashable | None = None) -> Callable[[Any], None]:
        """A publish function for one (type, topic) pair with the routing resolved up front.

        For a publisher that sends millions of events of one kind (the replay feed): it skips the
        per-event route lookup, and re-resolves only if subscriptions change.
        """
        state: list[Any] = [self._version, self.handlers(event_type, topic)]
        on_error = self._on_error

        def publish(event: Any) -> None:
            if state[0] != self._version:
                state[0], state[1] = self._version, self.handlers(event_type, topic)
            for handler in state[1]:
                try:
                    handler(event)
                except (HandlerError, StrategyError):
                    raise
                except Exception as exc:
                    error = HandlerError(_name(handler), event, exc)
                    if on_error is None:
                        raise error from exc
                    on_error(error)

        return publish
