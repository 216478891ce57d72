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

The kline building and handler steps are the feed's own (passed in as a :class:`~.lockstep_lazy.Kit`, so
this module does not import the feed): the kline each handler sees, and when, is what the general merge
gives; where no handler reads the kline on every event the loop builds none (:mod:`.lockstep_lazy`). A
subscription change takes effect from the next kline, as there: the loop returns how many klines it
delivered, and the rest of that close time's streams go through a loop over just them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ..core.bus import EventBus
from ..core.clock import ReplayClock
from ..core.events import KlineClosed, new_kline
from ..data import KlineFrame
from .lockstep_lazy import Kit, Layout, Made, Slots, lazy_lockstep_chain

#: close times per chunk (each brings one kline of every stream): columns made Python lists a chunk at a time
CHUNK_TIMES = 4_000

_LOCKSTEP = """\
def chain(changes, clock, failed, names, rows, slots, times, *cols):
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
                 progress: Callable[[int], None] | None, *, kit: Kit) -> int:
    """Publish every stream's klines, close time by close time (streams :func:`in_lockstep`, bus stopping on
    errors); returns the klines published. ``kit``: the feed's pieces the loops are made of."""
    width = len(streams)
    times_total = streams[0].count
    loops = _Loops(bus, streams, kit)
    for begin in range(0, times_total, CHUNK_TIMES):
        chunk = _Chunk(streams, begin, min(times_total, begin + CHUNK_TIMES))
        row = 0  # close times of this chunk done
        while row < len(chunk.times):
            done = loops.deliver(clock, chunk, 0, row, None)
            row += done // width
            part = done % width
            if part:  # a subscription changed inside a close time: that time's later streams on their own
                while part < width:
                    part += loops.deliver(clock, chunk, part, row, row + 1)
                row += 1
        if progress is not None:
            progress(chunk.end * width)
    return times_total * width


class _Chunk:
    """The close times ``begin:end`` of the replay (each one kline of every stream), its columns made Python
    lists on first use."""

    def __init__(self, streams: Sequence[StreamLike], begin: int, end: int) -> None:
        self.streams, self.begin, self.end = streams, begin, end
        first = streams[0]
        lo = first.start + begin
        self.times: list[int] = (first.frame.open_time[lo : lo + end - begin] + (first.frame.interval_ms - 1)).tolist()
        self._columns: dict[tuple[int, str], list[Any]] = {}  # (stream, field) -> the chunk's column
        self._laid: dict[tuple[int, Layout], list[list[Any]]] = {}  # (first stream, layout) -> laid_out

    def laid_out(self, lo: int, layout: Layout) -> list[list[Any]]:
        """What a lazy loop over streams ``lo:`` is given (:class:`~.lockstep_lazy.Layout`): the open times, and a row
        per close time of every stream's fields in turn, each row's floats made one after the other."""
        key = (lo, layout)
        made = self._laid.get(key)
        if made is None:
            made = [self.column(lo, "open_time")] if layout.open_time else []
            if layout.fields:
                arrays = [getattr(s.frame, name.rstrip("_"))[s.start + self.begin : s.start + self.end]
                          for s in self.streams[lo:] for name in layout.fields]
                if all(a.dtype == np.float64 for a in arrays):
                    # fields side by side, then read row by row: a column written into a row-major table at a
                    # time missed the cache on every row of every pass
                    made.append(np.stack(arrays).T.tolist())
                else:  # each value as its column's tolist gives it
                    table = np.empty((self.end - self.begin, len(arrays)), dtype=object)
                    for j, a in enumerate(arrays):
                        table[:, j] = a.tolist()
                    made.append(table.tolist())
            self._laid[key] = made
        return made

    def column(self, s: int, name: str) -> list[Any]:
        """Stream ``s``'s field ``name`` (one of the feed's ``FIELDS``) over the chunk."""
        col = self._columns.get((s, name))
        if col is None:
            stream = self.streams[s]
            if name == "close_time":
                col = [t + stream.frame.interval_ms - 1 for t in self.column(s, "open_time")]
            else:
                lo = stream.start + self.begin
                col = getattr(stream.frame, name.rstrip("_"))[lo : lo + self.end - self.begin].tolist()
            self._columns[s, name] = col
        return col


class _ChunkRows:
    """Stream ``s``'s rows of a chunk from ``first`` on, and the kline of a row built from them on demand (the
    same object for the same row), for the lazy loop (``lockstep_lazy.KlineRows``)."""

    __slots__ = ("_chunk", "_first", "_k", "_row", "_s")

    def __init__(self, chunk: _Chunk, s: int, first: int) -> None:
        self._chunk, self._s, self._first = chunk, s, first
        self._row = -1
        self._k: KlineClosed | None = None

    def value(self, name: str, row: int) -> Any:
        return self._chunk.column(self._s, name)[self._first + row]

    def kline(self, row: int) -> KlineClosed:
        if row != self._row or self._k is None:
            frame = self._chunk.streams[self._s].frame
            ot, o, h, lo, c, v, ct = (self.value(name, row) for name in _KLINE_FIELDS)
            self._k = new_kline(frame.symbol, frame.timeframe, ot, o, h, lo, c, v, ct, ct)
            self._row = row
        return self._k


_KLINE_FIELDS = ("open_time", "open_", "high", "low", "close", "volume", "close_time")


class _Loops:
    """The compiled lockstep loops of one replay: one is made when the handlers of the routes it runs have
    changed, and kept from chunk to chunk while they stay the same (an inline step's objects are the same while
    its handler is: the general merge's loop, made once a chunk, relies on that too)."""

    def __init__(self, bus: EventBus, streams: Sequence[StreamLike], kit: Kit) -> None:
        self._bus, self._kit = bus, kit
        self._topics = [(s.frame.symbol, s.frame.timeframe) for s in streams]
        self._routes = [bus.route(KlineClosed, t) for t in self._topics]
        self._made: dict[int, tuple[list[tuple[Any, ...]], Made]] = {}  # first stream -> (its routes, loop)

    def _loop(self, lo: int) -> Made:
        handler_sets = [r[0] for r in self._routes[lo:]]
        known = self._made.get(lo)
        if known is not None and known[0] == handler_sets:  # the same handlers (the bus remakes every route's
            return known[1]  # tuple on any subscription, of any event type: an order's first fill listener)
        made = _chain(handler_sets, self._topics[lo:], self._kit)
        self._made[lo] = (handler_sets, made)
        return made

    def deliver(self, clock: ReplayClock, chunk: _Chunk, lo: int, row: int, stop: int | None) -> int:
        """Deliver streams ``lo:`` of the chunk's close times ``row:stop`` with a loop for their routes as they
        are now; returns the klines delivered (fewer when a subscription changed)."""
        bus = self._bus
        chain, names, wanted, slot_list = self._loop(lo)
        whole = row == 0 and stop is None
        rows = [_ChunkRows(chunk, s, row) for s in range(lo, len(self._topics))]
        if isinstance(wanted, Layout):
            given = chunk.laid_out(lo, wanted)
        else:
            given = [chunk.column(lo + i, name) for i, fields in enumerate(wanted) for name in fields]
        cols = given if whole else [col[row:stop] for col in given]
        times = chunk.times if whole else chunk.times[row:stop]
        return chain(bus.changes, clock, bus.failed, names, rows, Slots(slot_list, rows, len(rows)), times, *cols)


_EAGER_FIELDS = ("open_time", "open_", "high", "low", "close", "volume")


def _chain(handler_sets: list[tuple[Any, ...]], topics: list[tuple[str, str]], kit: Kit) -> Made:
    """The lockstep loop over these streams' routes (kline-free where it can be), the names it binds, each
    stream's columns and the latest-kline slots it settles."""
    lazy = lazy_lockstep_chain(handler_sets, topics, kit)
    if lazy is not None:
        return lazy
    names: dict[str, Any] = {}
    fields: list[str] = []
    body: list[str] = []
    for s, (handlers, topic) in enumerate(zip(handler_sets, topics)):
        names[f"sym{s}"], names[f"tf{s}"] = topic
        fields += [f"ot{s}", f"o{s}", f"hi{s}", f"lo{s}", f"c{s}", f"v{s}"]
        body += [f"open_time = ot{s}", f"open_ = o{s}", f"high = hi{s}", f"low = lo{s}", f"close = c{s}",
                 f"volume = v{s}", kit.build.format(sym=f"sym{s}", tf=f"tf{s}").rstrip(),
                 kit.steps(handlers, topic, f"s{s}", names), "n += 1", "if changes[0] is not seen:", "    return n"]
    template = _LOCKSTEP.replace("{fields}", ", ".join(fields))
    return kit.compile_(template, "\n".join(body), names), names, [_EAGER_FIELDS] * len(topics), []
