"""Historical replay: publishes closed klines on the bus in time order, moving the replay clock.

This loop is the hot path of every backtest. It does per kline only what must be done per kline:
move the clock, build the event with the slot-filling constructor, publish it. Several streams
(symbols and timeframes) are merged once, up front, into one ordering by close time; a coarser
kline closing at the same instant as a finer one is published after it, so the exchange has
processed the execution kline before a strategy sees the higher-timeframe close.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from itertools import repeat
from typing import Any

import numpy as np

from ..core.bus import EventBus
from ..core.clock import ReplayClock
from ..core.errors import HandlerError, StrategyError
from ..core.events import KlineClosed, KlineFields, new_kline
from ..data import KlineFrame

_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class Stream:
    """One (symbol, timeframe) series to publish from row ``start`` (earlier rows are warm-up only)."""

    frame: KlineFrame
    start: int = 0

    @property
    def count(self) -> int:
        return max(0, len(self.frame) - self.start)


class ReplayFeed:
    def __init__(self, bus: EventBus, clock: ReplayClock, streams: list[Stream],
                 skip: Callable[[EventBus, ReplayClock, Callable[[int], None] | None], int] | None = None) -> None:
        """``skip``: a replay of the one stream that jumps over idle klines (``backtest.skip.SkipPlan.run``)."""
        self._bus = bus
        self._clock = clock
        self._streams = [s for s in streams if s.count > 0]
        self._skip = skip

    @property
    def total(self) -> int:
        return sum(s.count for s in self._streams)

    def run(self, progress: Callable[[int], None] | None = None) -> int:
        """Publish everything; ``progress(n)`` is called every few thousand klines with the count done.

        The cyclic garbage collector is paused during the replay: every kline allocates an event
        that reference counting frees at once, and the collector's periodic scans of those young
        objects cost more than the rest of the bus. Objects set up before the replay are frozen out
        of its view; anything cyclic made during the run is collected when it ends. A caller that has
        disabled the collector already manages it (the optimiser freezes its data once and collects
        only each trial's garbage), so a full collection per run is skipped then.
        """
        was_enabled = gc.isenabled()
        if was_enabled:
            gc.collect()
            gc.freeze()
            gc.disable()
        try:
            if len(self._streams) == 1 and self._skip is not None:
                return self._skip(self._bus, self._clock, progress)
            if len(self._streams) == 1:
                return self._run_single(self._streams[0], progress)
            return self._run_merged(progress)
        finally:
            if was_enabled:
                gc.unfreeze()
                gc.enable()

    def _run_single(self, s: Stream, progress: Callable[[int], None] | None) -> int:
        f = s.frame
        n = s.count
        sym, tf = f.symbol, f.timeframe
        bus, make, clock = self._bus, new_kline, self._clock
        route = bus.route(KlineClosed, (sym, tf))
        publish = bus.publisher(KlineClosed, (sym, tf))
        arrays = (f.open_time, f.open, f.high, f.low, f.close, f.volume)
        last_ms = f.interval_ms - 1  # close time = open time + interval - 1, made per chunk (no history copy)
        for begin in range(s.start, s.start + n, _CHUNK):
            # python scalars a chunk at a time: a working set that stays in cache
            cols = [a[begin : begin + _CHUNK].tolist() for a in arrays]
            cols.append((f.open_time[begin : begin + _CHUNK] + last_ms).tolist())
            if bus.stops_on_error:
                done, size = 0, len(cols[0])
                while done < size:  # a subscription change ends a chain: the rest goes to the new one
                    handlers = route[0]
                    rest = cols if done == 0 else [c[done:] for c in cols]
                    done += _chain(len(handlers))(route, handlers, clock, sym, tf, bus.failed, *rest)
            else:
                ot, o, h, lo, c, v, ct = cols
                for k in map(make, repeat(sym), repeat(tf), ot, o, h, lo, c, v, ct, ct):
                    clock.time_ms = k.ts_event
                    publish(k)
            if progress is not None:
                progress(min(n, begin - s.start + _CHUNK))
        return n

    def _run_merged(self, progress: Callable[[int], None] | None) -> int:
        """Several streams in one ordering by close time (a coarser timeframe after a finer one, then
        stream order), kept as one sorted int64 key per kline: ``close_time * R + rank`` with ``rank`` the
        stream's place in that tie order. Each stream's rows follow one another in close-time order, so a
        chunk's rows of one stream are the next ones after the last chunk's: no row array is kept."""
        streams = self._streams
        tie_order = sorted(range(len(streams)), key=lambda k: (streams[k].frame.interval_ms, k))
        radix = len(streams)
        sid_of_rank = np.array(tie_order, dtype=np.int64)
        keys = np.empty(self.total, dtype=np.int64)
        at = 0
        for rank, k in enumerate(tie_order):
            s = streams[k]
            part = keys[at : at + s.count]
            np.multiply(s.frame.open_time[s.start :], radix, out=part)
            part += (s.frame.interval_ms - 1) * radix + rank  # close time, scaled, plus the tie rank
            at += s.count
        keys.sort()  # unique keys (one stream never repeats a close time), so any sort order is the same
        frames = [s.frame for s in streams]
        topics = [(f.symbol, f.timeframe) for f in frames]
        routes = [self._bus.route(KlineClosed, t) for t in topics]
        publishers = [self._bus.publisher(KlineClosed, t) for t in topics]
        next_row = [s.start for s in streams]
        fused = self._bus.stops_on_error
        make, clock, failed = new_kline, self._clock, self._bus.failed
        n = len(keys)
        for begin in range(0, n, _CHUNK):
            chunk = keys[begin : begin + _CHUNK]
            sids = sid_of_rank[chunk % radix]
            times = (chunk // radix).tolist()
            # each stream's rows in this chunk: the next ``count`` after the previous chunk's, as lists
            cols: list[tuple[Any, ...] | None] = []
            local = np.empty(len(chunk), dtype=np.int64)  # the row's index within its stream's slice
            for k, f in enumerate(frames):
                mine = sids == k
                count = int(np.count_nonzero(mine))
                if count == 0:
                    cols.append(None)
                    continue
                lo_row = next_row[k]
                next_row[k] = lo_row + count
                local[mine] = np.arange(count)
                arrays = (f.open_time, f.open, f.high, f.low, f.close, f.volume)
                cols.append((f.symbol, f.timeframe, routes[k] if fused else publishers[k],
                             *(a[lo_row : lo_row + count].tolist() for a in arrays)))  # fmt: skip
            rows = zip(sids.tolist(), local.tolist(), times)
            if fused:
                _deliver_merged(rows, cols, clock, failed)
            else:
                for sid, i, t in rows:
                    sym, tf, publish, ot, o, h, lo, c, v = cols[sid]
                    clock.time_ms = t
                    publish(make(sym, tf, ot[i], o[i], h[i], lo[i], c[i], v[i], t, t))
            if progress is not None:
                progress(min(n, begin + _CHUNK))
        return n


def _deliver_merged(
    rows: Iterator[tuple[int, int, int]], cols: list[tuple[Any, ...] | None], clock: ReplayClock,
    failed: Callable[[Any, Any, Exception], Exception],
) -> None:
    """The merged streams' klines to each one's route, handlers called in order from the route's current
    tuple (a subscription change counts from the next kline); a failure raised as the bus raises it."""
    make = new_kline
    k: Any = None
    handler: Any = None
    try:
        for sid, i, t in rows:
            sym, tf, route, ot, o, h, lo, c, v = cols[sid]  # type: ignore[misc]
            k = make(sym, tf, ot[i], o[i], h[i], lo[i], c[i], v[i], t, t)
            clock.time_ms = t
            for handler in route[0]:
                handler(k)
    except (HandlerError, StrategyError):
        raise
    except Exception as exc:
        raise failed(handler, k, exc) from exc


_CHAIN_SOURCE = """
def chain(route, handlers, clock, sym, tf, failed, ot, o, hi, lo, c, v, ct):
    {unpack}
    k = None
    stage = 0
    n = 0
    try:
        for open_time, open_, high, low, close, volume, close_time in zip(ot, o, hi, lo, c, v, ct):
            k = Fields()
            k.symbol = sym
            k.timeframe = tf
            k.open_time = open_time
            k.open = open_
            k.high = high
            k.low = low
            k.close = close
            k.volume = volume
            k.ts_event = close_time
            k.ts_init = close_time
            k.__class__ = KlineClosed
            clock.time_ms = close_time
{calls}
            n += 1
            if route[0] is not handlers:
                return n
    except (HandlerError, StrategyError):
        raise
    except Exception as exc:
        raise failed(handlers[stage], k, exc) from exc
    return n
"""

_Chain = Callable[..., int]
_chains: dict[int, _Chain] = {}


def _chain(count: int) -> _Chain:
    """The delivery loop for a route of ``count`` handlers, compiled once per count.

    The same delivery as ``bus.publish`` (handlers in subscription order, a failure raised as the bus
    raises it, naming the handler and the kline), fused into one loop over a chunk of columns: the
    kline is built inline (the fields stored into a :class:`KlineFields` that is then re-labelled, as
    :func:`new_kline` does, without a call per kline), the clock moved and each handler called from a
    local, with no call into the bus. It returns how many klines it delivered: fewer than the chunk
    when a subscription changed (taking effect from the next kline), so the caller goes on with the
    route's new handlers. ``stage`` names the handler running, for the error.
    """
    chain = _chains.get(count)
    if chain is None:
        calls = "\n".join(f"            stage = {i}\n            h{i}(k)" for i in range(count))
        unpack = f"{''.join(f'h{i}, ' for i in range(count))}= handlers" if count else "pass"
        scope = {"Fields": KlineFields, "KlineClosed": KlineClosed, "HandlerError": HandlerError,
                 "StrategyError": StrategyError}  # fmt: skip
        exec(compile(_CHAIN_SOURCE.format(unpack=unpack, calls=calls or "            pass"), f"<kline chain {count}>",
                     "exec"), scope)  # fmt: skip
        chain = _chains[count] = scope["chain"]
    return chain


if set(re.findall(r"\bk\.(\w+) = ", _CHAIN_SOURCE)) - {"__class__"} != {f.name for f in fields(KlineClosed)}:
    raise TypeError("the compiled kline chain must set exactly the fields of KlineClosed")
