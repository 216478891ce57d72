"""Replay of several streams that close at the same instants: one loop step per close time, every stream's
kline of that instant in turn, with no per-kline choice of stream (issue 17 target 4).

The general merged replay (:meth:`backtest.feed.ReplayFeed._run_merged`) orders klines by one sorted key
per kline and sends each down a tree of comparisons to its stream's branch, reading its fields by index:
about 0.7 µs a kline more than a single stream. Symbols of one timeframe over the same period (the usual
multi-symbol backtest) close in lockstep, and their merged order is then fixed: at each close time stream
0's kline, then stream 1's, and so on (the tie order of the general merge). So the loop here zips every
stream's columns side by side and runs each stream's branch straight after the previous one. Streams that
are not in lockstep (other timeframes, gaps, other lengths) keep the general merge: :func:`in_lockstep`
decides, once, on the whole replay.

The kline building and handler steps are the feed's own (passed in as ``build``, ``steps`` and ``compile_``,
so this module does not import the feed): the kline each handler sees, and when, is what the general merge
gives. A subscription change takes effect from the next kline, as there: the loop returns how many klines
it delivered, and the rest of that close time's streams go through a loop over just them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ..core.bus import EventBus
from ..core.clock import ReplayClock
from ..core.events import KlineClosed
from ..data import KlineFrame

#: close times per chunk (each brings one kline of every stream): columns made Python lists a chunk at a time
CHUNK_TIMES = 4_000

_LOCKSTEP = """\
def chain(changes, clock, failed, names, times, *cols):
{unpack}
    seen = changes[0]
    k = at = None
    n = 0
    try:
        for close_time, {fields} in zip(times, *cols):
{body}
    except (HandlerError, StrategyError):
        raise
    except Exception as exc:
        raise failed(at, k, exc) from exc
    return n
"""

_Chain = Callable[..., int]


class StreamLike(Protocol):
    """What a replay stream offers (backtest.feed.Stream)."""

    @property
    def frame(self) -> KlineFrame: ...

    @property
    def start(self) -> int: ...

    @property
    def count(self) -> int: ...


def in_lockstep(streams: Sequence[StreamLike]) -> bool:
    """True when every stream has one timeframe and the same open times from its start row: then each close
    time brings one kline of every stream, in stream order."""
    first = streams[0]
    times = first.frame.open_time[first.start :]
    for s in streams[1:]:
        f = s.frame
        if f.interval_ms != first.frame.interval_ms or s.count != first.count:
            return False
        if not np.array_equal(f.open_time[s.start :], times):
            return False
    return True


def run_lockstep(bus: EventBus, clock: ReplayClock, streams: Sequence[StreamLike],
                 progress: Callable[[int], None] | None, *, build: str, steps: Callable[..., str],
                 compile_: Callable[..., _Chain]) -> int:
    """Publish every stream's klines, close time by close time (streams :func:`in_lockstep`, bus stopping on
    errors); returns the klines published. ``build``, ``steps`` and ``compile_`` are the feed's kline
    template, handler-step source and chain compiler."""
    width = len(streams)
    topics = [(s.frame.symbol, s.frame.timeframe) for s in streams]
    routes = [bus.route(KlineClosed, t) for t in topics]
    changes = bus.changes
    times_total = streams[0].count
    last_ms = streams[0].frame.interval_ms - 1
    first = streams[0]
    for begin in range(0, times_total, CHUNK_TIMES):
        end = min(times_total, begin + CHUNK_TIMES)
        times = (first.frame.open_time[first.start + begin : first.start + end] + last_ms).tolist()
        cols: list[list[Any]] = []
        for s in streams:
            f, lo = s.frame, s.start + begin
            hi = s.start + end
            cols += [a[lo:hi].tolist() for a in (f.open_time, f.open, f.high, f.low, f.close, f.volume)]
        row = 0  # close times of this chunk done
        while row < len(times):
            chain, names = _chain([r[0] for r in routes], topics, build, steps, compile_)
            rest = cols if row == 0 else [c[row:] for c in cols]
            done = chain(changes, clock, bus.failed, names, times if row == 0 else times[row:], *rest)
            row += done // width
            part = done % width
            if part:  # a subscription changed inside a close time: that time's later streams on their own
                while part < width:
                    sub, names = _chain([r[0] for r in routes[part:]], topics[part:], build, steps, compile_)
                    part += sub(changes, clock, bus.failed, names, times[row : row + 1],
                                *(c[row : row + 1] for c in cols[6 * part :]))
                row += 1
        if progress is not None:
            progress(end * width)
    return times_total * width


def _chain(handler_sets: list[tuple[Any, ...]], topics: list[tuple[str, str]], build: str,
           steps: Callable[..., str], compile_: Callable[..., _Chain]) -> tuple[_Chain, dict[str, Any]]:
    """The lockstep loop over these streams' routes, and the names it binds."""
    names: dict[str, Any] = {}
    fields: list[str] = []
    body: list[str] = []
    for s, (handlers, topic) in enumerate(zip(handler_sets, topics)):
        names[f"sym{s}"], names[f"tf{s}"] = topic
        fields += [f"ot{s}", f"o{s}", f"hi{s}", f"lo{s}", f"c{s}", f"v{s}"]
        body += [f"open_time = ot{s}", f"open_ = o{s}", f"high = hi{s}", f"low = lo{s}", f"close = c{s}",
                 f"volume = v{s}", build.format(sym=f"sym{s}", tf=f"tf{s}").rstrip(),
                 steps(handlers, topic, f"s{s}", names), "n += 1", "if changes[0] != seen:", "    return n"]
    template = _LOCKSTEP.replace("{fields}", ", ".join(fields))
    return compile_(template, "\n".join(body), names), names
