"""A synchronous event bus: the only loop in the engine.

Handlers run depth-first, in the order they subscribed, on the caller's stack: when the simulated
exchange publishes a fill while processing a kline, the strategy's position is already updated when
the same kline reaches the strategy. Deterministic order makes backtests reproducible.

Routing is by event type plus an optional topic (klines use ``(symbol, timeframe)``), resolved once
per (type, topic) pair and kept, so publishing costs one dict lookup and one call per handler.
"""

from __future__ import annotations

import dis
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Hashable, Mapping
from functools import cache, partial
from types import FunctionType
from typing import Any, NamedTuple

from .errors import HandlerError, StrategyError

Handler = Callable[[Any], None]
ErrorSink = Callable[[HandlerError], None]


class InlineStep(NamedTuple):
    """A handler's body as source, for a caller that fuses delivery into one compiled loop (the replay feed).

    An object whose bound method is subscribed may offer ``inline_step(handler, topic) -> InlineStep | None``;
    the loop then runs ``source`` in place of the call ``handler(k)``, saving a Python call per event. The
    source must do exactly what the call does. It sees, for klines, the locals ``open_time, open_, high, low,
    close, volume, close_time``; ``$name`` stands for ``names[name]``, and for a local of the step's own
    (renamed apart per handler). ``@k`` stands for the event, and a line ``@sync`` must come before any call
    out of the step (into code that may read other handlers' state): the loop may build the event only where
    it is used and defer a store of the latest event until such a point (``reads_kline`` False: the step uses
    ``@k`` only on paths that are not taken on every event). An exception it lets out is reported as the
    handler's, as a call's would be. ``latest_only``: the step only keeps values of the latest event (a store
    that a later event overwrites whole), so a loop may run it, for the event it would hold there, only where
    it can be read (at each ``@sync`` of the other steps and when the loop ends) instead of on every event.
    """

    source: str
    names: Mapping[str, Any]
    reads_kline: bool = True
    latest_only: bool = False


@cache
def source_digest(func: Callable[..., Any]) -> str:
    """A short digest of ``func``'s source text ("" when it has none on disk).

    An inline step copies a handler's body, so the two can drift apart when only one is edited (two people
    working on the same module, a merge). An owner records the digest of the handler its step mirrors and
    offers the step only while the handler's digest is unchanged: an edited handler is then called, correct
    and slower, until someone checks the step against it and records the new digest (a test names it).
    """
    try:
        text = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# names through which a function can reach its own arguments without naming them
_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec", "_getframe", "currentframe", "stack", "trace",
                            "getframeinfo", "getouterframes", "f_locals", "tb_frame"})


def ignores_argument(method: Callable[..., Any]) -> bool:
    """True when ``method`` (a bound method of plain Python code) provably never reads its one argument after
    ``self``: no instruction loads, stores, deletes or closes over that name, and the code names nothing that
    could reach it through its frame. A caller may then pass None instead of building the argument (the
    replay's strategy step: most strategies decide from their series, not from the kline they are given).
    Anything it cannot see through (a wrapper, ``*args``, a builtin) counts as reading it."""
    func = getattr(method, "__func__", None)
    code = getattr(func, "__code__", None)
    if not isinstance(func, FunctionType) or code is None or code.co_argcount != 2 or code.co_kwonlyargcount:
        return False
    name = code.co_varnames[1]
    if name in code.co_cellvars or _INTROSPECTION & set(code.co_names):
        return False
    local_ops = set(dis.haslocal) | set(dis.hasfree)
    for ins in dis.get_instructions(code):
        if ins.opcode in local_ops and (ins.argval == name or (isinstance(ins.argval, tuple) and name in ins.argval)):
            return False
    return True


def inline_step(handler: Handler, topic: Hashable | None) -> InlineStep | None:
    """The inline form ``handler``'s owner offers for ``topic``, or None (call it)."""
    owner = getattr(handler, "__self__", None)
    offer = getattr(owner, "inline_step", None) if owner is not None and not isinstance(owner, type) else None
    if offer is None or getattr(offer, "__self__", None) is not owner:
        return None
    step: InlineStep | None = offer(handler, topic)
    return step


def _name(handler: Handler) -> str:
    owner = getattr(handler, "__self__", None)
    qual = getattr(handler, "__qualname__", repr(handler))
    return f"{type(owner).__name__}.{handler.__name__}" if owner is not None else qual


def _deliver(route: list[tuple[Handler, ...]], on_error: ErrorSink | None, event: Any) -> None:
    """Call a route's handlers with one event: the only delivery loop (``publish`` and publishers share it).

    ``route`` is a one-item list holding the handler tuple, updated in place when subscriptions change,
    so a publisher built once (a ``partial`` of this function) never goes stale. A handler that
    subscribes or unsubscribes during delivery changes later events, not this one.
    """
    for handler in route[0]:
        try:
            handler(event)
        except (HandlerError, StrategyError):
            raise
        except Exception as exc:
            error = HandlerError(_name(handler), event, exc)
            if on_error is None:
                raise error from exc
            on_error(error)


class EventBus:
    """Publish/subscribe by event type and topic.

    ``on_error`` decides what a failing handler does: None (backtests) raises :class:`HandlerError`
    at once, stopping the run; a callable (live) receives the error and delivery continues with the
    next handler.
    """

    __slots__ = ("_changes", "_on_error", "_routes", "_subs")

    def __init__(self, on_error: ErrorSink | None = None) -> None:
        self._subs: list[tuple[type, Hashable | None, Handler]] = []
        self._routes: dict[tuple[type, Hashable | None], list[tuple[Handler, ...]]] = {}
        self._on_error = on_error
        self._changes = [0]

    def subscribe(self, event_type: type, handler: Handler, topic: Hashable | None = None) -> None:
        """Receive ``event_type`` events; with a topic, only those published with that topic."""
        self._subs.append((event_type, topic, handler))
        self._reroute()

    def unsubscribe(self, event_type: type, handler: Handler, topic: Hashable | None = None) -> None:
        self._subs.remove((event_type, topic, handler))
        self._reroute()

    def handlers(self, event_type: type, topic: Hashable | None = None) -> tuple[Handler, ...]:
        """Handlers for a (type, topic) pair in subscription order: topic-specific and catch-all."""
        return self._route(event_type, topic)[0]

    def publish(self, event: Any, topic: Hashable | None = None) -> None:
        route = self._routes.get((type(event), topic))
        if route is None:
            route = self._route(type(event), topic)
        _deliver(route, self._on_error, event)

    def publisher(self, event_type: type, topic: Hashable | None = None) -> Callable[[Any], None]:
        """A publish function for one (type, topic) pair with the routing resolved up front.

        For a publisher that sends millions of events of one kind (the replay feed): it skips the
        per-event route lookup; the route it holds follows later subscription changes.
        """
        return partial(_deliver, self._route(event_type, topic), self._on_error)

    def route(self, event_type: type, topic: Hashable | None = None) -> list[tuple[Handler, ...]]:
        """The live route of a (type, topic) pair: a one-item list holding its handler tuple, replaced in
        place when subscriptions change. For a caller that fuses delivery into its own loop (the replay
        feed): it calls the handlers itself, checks ``route[0]`` is still the tuple it holds before each
        event, and reports a failure with :meth:`failed` so errors read as the bus's own."""
        return self._route(event_type, topic)

    @property
    def changes(self) -> list[int]:
        """A one-item list counting subscription changes, bumped in place: a fused loop over several routes
        reads ``changes[0]`` after each event to notice a change on any of them with one comparison (``is not``
        the count it read: a bump stores another int, never the same object)."""
        return self._changes

    def failed(self, handler: Handler, event: Any, exc: Exception) -> HandlerError | StrategyError:
        """The error the bus raises when ``handler`` fails on ``event`` (a fused loop raises it; only for a
        bus without ``on_error``, whose failures stop the run)."""
        if isinstance(exc, HandlerError | StrategyError):
            return exc
        return HandlerError(_name(handler), event, exc)

    @property
    def stops_on_error(self) -> bool:
        """True when a failing handler stops delivery (no ``on_error``): a fused loop may raise then."""
        return self._on_error is None

    def _route(self, event_type: type, topic: Hashable | None) -> list[tuple[Handler, ...]]:
        key = (event_type, topic)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = [self._resolve(event_type, topic)]
        return route

    def _resolve(self, event_type: type, topic: Hashable | None) -> tuple[Handler, ...]:
        return tuple(h for (t, tp, h) in self._subs if issubclass(event_type, t) and (tp is None or tp == topic))

    def _reroute(self) -> None:
        self._changes[0] += 1
        for (event_type, topic), route in self._routes.items():
            route[0] = self._resolve(event_type, topic)
