"""The lockstep loop when no handler needs the kline on every event (issue 17 target 4): the multi-symbol form
of the single-stream loop that builds no kline (``backtest.feed._LAZY``), under the same conditions.

Every handler of every stream is an inline step that does not read its kline on the path taken every kline
(``core.bus.InlineStep.reads_kline`` False), or a one-slot latest-kline store (the portfolio's
``deque(maxlen=1).append``, each stream's its own). A step reads the kline's scalars; the kline is built from
the chunk's columns only where a step uses it (``@k``: a failure, a strategy that reads its kline). The slots
are brought up to date only where another object could read them: at every ``@sync`` (a step calling out: the
exchange processing a kline, the runner flushing intents or reporting a failure), when a step fails, and when
the loop ends. There each slot is given what it would hold had it been called on every kline. With the loop's
``n`` klines delivered so far (``n = t * width + s`` inside stream ``s``'s kline of close time ``t``), a slot
before the running step in delivery order holds row ``t``, one after it row ``t - 1`` (``-1``: the kline before
the call's first, which it holds already); after the loop, stream ``s``'s slots hold row
``(n - 1 - s) // width``. Every ``@sync`` settles every stream's slots, not only its own: a call out may read
any symbol's latest price (the risk gate marks every open position). That is a kline built per stream at every
call out, so a backtest's portfolio following several symbols keeps only their closes, as inline steps
(``portfolio.prices.LatestClose``), and has no slot to settle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from ..core.bus import inline_step


class KlineRows(Protocol):
    """A stream's rows from the call's first one (backtest.merge._ChunkRows)."""

    def kline(self, row: int) -> Any: ...

    def value(self, name: str, row: int) -> Any: ...


class Kit(NamedTuple):
    """The feed's pieces the lockstep loops are made of (passed in: the feed imports this package's merge)."""

    build: str  #: the source building ``k`` from the field locals (``_BUILD``)
    steps: Callable[..., str]  #: a route's handlers as source, each called or inlined (``_steps``)
    compile_: Callable[..., Callable[..., int]]  #: template, body, names, head -> the compiled loop
    step_source: Callable[..., str]  #: one inline step's source, its names bound, ``@sync`` and ``@k`` replaced
    latest_slot: Callable[[Any], bool]  #: True for a one-slot latest-kline store's append
    names_read: Callable[[str], tuple[set[str], set[str]]]  #: the fields a step reads every kline / after @sync


class Slots:
    """The latest-kline slots of a lazy lockstep call, in delivery order, and the row each holds."""

    __slots__ = ("_held", "_slots", "_width")

    def __init__(self, slots: list[tuple[int, Callable[[Any], Any]]], rows: Sequence[KlineRows], width: int) -> None:
        """``slots``: (stream, append) in delivery order; ``rows``: each stream's rows from the call's first."""
        self._slots = [(s, append, rows[s]) for s, append in slots]
        self._held = [-1] * len(slots)
        self._width = width

    def running(self, n: int, before: int) -> None:
        """Settle for a step running at ``n`` with ``before`` slots ahead of it in delivery order."""
        t = n // self._width
        held = self._held
        for i, (_s, append, rows) in enumerate(self._slots):
            row = t if i < before else t - 1
            if held[i] != row:
                held[i] = row
                append(rows.kline(row))

    def ended(self, n: int) -> None:
        """Settle after ``n`` klines were delivered."""
        width, held = self._width, self._held
        for i, (s, append, rows) in enumerate(self._slots):
            row = (n - 1 - s) // width
            if held[i] != row:
                held[i] = row
                append(rows.kline(row))


_LAZY_LOCKSTEP = """\
def chain(changes, clock, failed, names, rows, slots, times, {columns}):
{unpack}
    settle = slots.running
    seen = changes[0]
    at = None
    before = n = 0
    try:
        for {targets} in zip(times, {columns}):
{top}
{body}
    except (HandlerError, StrategyError):
        settle(n, before)
        raise
    except Exception as exc:
        settle(n, before)
        raise failed(at, rows[n % {width}].kline(n // {width}), exc) from exc
    if n:
        slots.ended(n)
    return n
"""

class Layout(NamedTuple):
    """What a lazy lockstep loop is given per close time besides the close time: the open time (the same for every
    stream in lockstep) when a step reads it, and one row holding every stream's float ``fields`` in turn (stream
    0's, then stream 1's...) when a step reads any. One row a close time, its floats made in that order, is read
    front to back: separate columns per stream and field were as many streams through memory, and the replay
    paid for their cache misses (issue 17 target 4)."""

    open_time: bool
    fields: tuple[str, ...]


Made = tuple[Callable[..., int], dict[str, Any], "list[tuple[str, ...]] | Layout",
             list[tuple[int, Callable[[Any], Any]]]]
"""A loop over close times, its names, what it is given (the eager loop: each stream's columns, ``FIELDS`` but the
close time; the lazy one: its :class:`Layout`), the latest-kline slots it settles."""


def lazy_lockstep_chain(handler_sets: Sequence[tuple[Any, ...]], topics: Sequence[tuple[str, str]],
                        kit: Kit) -> Made | None:
    """The lockstep loop over these streams that builds no kline per event, or None when a handler needs one
    (one that is called, or a step reading it: ``InlineStep.reads_kline``) or two routes share a slot."""
    width = len(topics)
    plan: list[list[tuple[int, Any]]] = []  # per stream: (handler index, its step or None for a slot)
    slots: list[tuple[int, Callable[[Any], Any]]] = []
    owners: list[Any] = []
    for handlers, topic in zip(handler_sets, topics):
        stream: list[tuple[int, Any]] = []
        for j, handler in enumerate(handlers):
            if kit.latest_slot(handler):
                if any(o is handler.__self__ for o in owners):  # one store fed by two routes: keep it eager
                    return None
                owners.append(handler.__self__)
                stream.append((j, None))
                continue
            step = inline_step(handler, topic)
            if step is None or step.reads_kline:
                return None
            stream.append((j, step))
        plan.append(stream)
    sync_slots = "settle(n, before)" if any(step is None for stream in plan for _j, step in stream) else "pass"
    names: dict[str, Any] = {}
    body: list[str] = []
    read: dict[str, tuple[set[str], set[str]]] = {}  # step source -> the fields it reads (the same for many)

    def names_read(source: str) -> tuple[set[str], set[str]]:
        found = read.get(source)
        if found is None:
            found = read[source] = kit.names_read(source)
        return found

    hots = []
    for stream in plan:
        reads = [names_read(step.source) for _j, step in stream if step is not None]
        hots.append(set().union(*(r[0] for r in reads)) - {"close_time"})
    every = set().union(*hots)
    floats = tuple(sorted(every - {"open_time"}))
    layout = Layout("open_time" in every, floats)
    for s, stream in enumerate(plan):
        hot = hots[s]
        body.append("clock.time_ms = close_time")
        # the stream's own locals read in place (``close_0``...), not copied to the step's names each kline
        own_fields = re.compile(r"(?<![.\w'\"])(" + "|".join(sorted(hot & set(floats))) + r")\b") if hot & set(floats) \
            else None
        for j, step in stream:
            if step is None:
                slots.append((s, handler_sets[s][j]))
                continue
            own = f"s{s}h{j}"
            names[own] = handler_sets[s][j]
            cold = names_read(step.source)[1] - hot - {"close_time"}
            load = "".join(f"\n{name} = rows{s}.value({name!r}, n // {width})" for name in sorted(cold))
            sync = sync_slots + load
            mark = f"at = {own}\n" + (f"before = {len(slots)}\n" if sync_slots != "pass" else "")
            source = kit.step_source(step, own, names, sync, f"rows{s}.kline(n // {width})")
            body.append(mark + (own_fields.sub(rf"\1_{s}", source) if own_fields is not None else source))
        body += ["n += 1", "if changes[0] is not seen:", "    break"]
    targets = ["close_time"] + (["open_time"] if layout.open_time else []) + (["row"] if floats else [])
    columns = (["col_open_time"] if layout.open_time else []) + (["col_rows"] if floats else [])
    row = [f"{name}_{s}" for s in range(width) for name in floats]
    top = f"            {', '.join(row)}, = row" if row else ""
    head = "\n".join(f"    rows{s} = rows[{s}]" for s in range(width))
    template = (_LAZY_LOCKSTEP.replace("{columns}", ", ".join(columns) + ("," if columns else ""))
                .replace("{targets}", ", ".join(targets) + ",").replace("{width}", str(width))
                .replace("{top}", top))  # fmt: skip
    return kit.compile_(template, "\n".join(body), names, head), names, layout, slots
