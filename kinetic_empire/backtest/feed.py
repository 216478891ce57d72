"""Historical replay: publishes closed klines on the bus in time order, moving the replay clock.

This loop is the hot path of every backtest. It does per kline only what must be done per kline:
move the clock, build the event with the slot-filling constructor, publish it; and where no handler reads
the event on every kline (an exchange and a strategy that decide from scalars and series), not even build it
(``_LAZY``). Several streams
(symbols and timeframes) are merged once, up front, into one ordering by close time; a coarser
kline closing at the same instant as a finer one is published after it, so the exchange has
processed the execution kline before a strategy sees the higher-timeframe close.
"""

from __future__ import annotations

import gc
import linecache
import re
import textwrap
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from itertools import repeat
from typing import Any

import numpy as np

from ..core.bus import EventBus, InlineStep, inline_step
from ..core.clock import ReplayClock
from ..core.errors import HandlerError, StrategyError
from ..core.events import KlineClosed, KlineFields, new_kline
from ..data import KlineFrame
from .lockstep_lazy import Kit
from .merge import in_lockstep, run_lockstep
from .rows import FIELDS, Rows, cold_load, column, store_source

_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class Stream:
    """One (symbol, timeframe) series to publish from row ``start`` (earlier rows are warm-up only)."""

    frame: KlineFrame
    start: int = 0

    @property
    def count(self) -> int:
        return max(0, len(self.frame) - self.start)


def _age_run_objects() -> None:
    """Move every tracked object, the run's included, to the oldest generation and unfreeze the setup's:
    ``freeze`` takes all generations (the young ones too) and ``unfreeze`` puts them back as the oldest."""
    gc.freeze()
    gc.unfreeze()


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
        of its view (after a collection of the young generations, where the setup's garbage is: a full one
        walks every object the imports made, 0.1-0.3 s a run). What the run made is nearly all kept (orders,
        trades, records: some 9 tracked objects an order, 180k on the 1M benchmark) and would be the youngest
        generation when the collector resumes, so its first scan walked every one of them for nothing (0.1 s):
        they join the oldest generation instead, unscanned (:func:`_age_run_objects`), where the next full
        collection finds any cyclic garbage the run made, or older garbage frozen with the rest. A caller that
        has disabled the collector already manages it (the optimiser freezes its data once and collects only
        each trial's garbage), so a full collection per run is skipped then.
        """
        was_enabled = gc.isenabled()
        if was_enabled:
            gc.collect(1)
            gc.freeze()
            gc.disable()
        try:
            if len(self._streams) == 1 and self._skip is not None:
                return self._skip(self._bus, self._clock, progress)
            if len(self._streams) == 1:
                return self._run_single(self._streams[0], progress)
            if self._bus.stops_on_error and in_lockstep(self._streams):  # streams closing together: backtest.merge
                return run_lockstep(self._bus, self._clock, self._streams, progress, kit=_LOCKSTEP_KIT)
            return self._run_merged(progress)
        finally:
            if was_enabled:
                _age_run_objects()
                gc.enable()

    def _run_single(self, s: Stream, progress: Callable[[int], None] | None) -> int:
        f = s.frame
        n = s.count
        sym, tf = f.symbol, f.timeframe
        bus, make, clock = self._bus, new_kline, self._clock
        route = bus.route(KlineClosed, (sym, tf))
        publish = bus.publisher(KlineClosed, (sym, tf))
        end = s.start + n
        for begin in range(s.start, end, _CHUNK):
            stop = min(end, begin + _CHUNK)
            if bus.stops_on_error:
                at = begin
                made: dict[str, list[Any]] = {}  # the chunk's columns made so far, from ``begin``
                while at < stop:  # a subscription change ends a chain: the rest goes to the new one
                    handlers = route[0]
                    chain, names, wanted = _single_chain(handlers, (sym, tf))
                    # python scalars a chunk at a time (a working set that stays in cache), only the columns
                    # the loop reads on every kline; the next chain's rest of a column made already is a copy of
                    # its tail (the same scalars; a subscription changes on a first order: five columns again)
                    for name in wanted:
                        if name not in made:
                            made[name] = column(f, name, begin, stop)
                    cols = [made[name][at - begin :] if at > begin else made[name] for name in wanted]
                    at += chain(route, handlers, clock, bus.failed, names, Rows(f, at), sym, tf, *cols)
            else:
                ot, o, h, lo, c, v, ct = (column(f, name, begin, stop) for name in FIELDS)
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
        bus = self._bus
        routes = [bus.route(KlineClosed, t) for t in topics]
        publishers = [bus.publisher(KlineClosed, t) for t in topics]
        next_row = [s.start for s in streams]
        fused = bus.stops_on_error
        make, clock = new_kline, self._clock
        n = len(keys)
        for begin in range(0, n, _CHUNK):
            chunk = keys[begin : begin + _CHUNK]
            sids = sid_of_rank[chunk % radix]
            times = (chunk // radix).tolist()
            # each stream's rows in this chunk: the next ``count`` after the previous chunk's, as lists
            cols: list[tuple[Any, ...]] = []
            counts = np.bincount(sids, minlength=radix)
            # the row's index within its stream's slice: its place among the chunk's rows of that stream
            order = np.argsort(sids, kind="stable")
            local = np.empty(len(chunk), dtype=np.int64)
            local[order] = np.arange(len(chunk)) - np.repeat(np.cumsum(counts) - counts, counts)
            for k, f in enumerate(frames):
                count = int(counts[k])
                lo_row = next_row[k]
                next_row[k] = lo_row + count
                arrays = (f.open_time, f.open, f.high, f.low, f.close, f.volume)
                cols.append((f.symbol, f.timeframe, *(a[lo_row : lo_row + count].tolist() for a in arrays)))
            rows = zip(sids.tolist(), local.tolist(), times)
            if fused:
                done, size = 0, len(chunk)
                while done < size:  # a subscription change ends a chain: the rest goes to the new one
                    handler_sets = [r[0] for r in routes]
                    chain, names = _merged_chain(handler_sets, topics)
                    done += chain(bus.changes, handler_sets, clock, bus.failed, names, rows, cols)
            else:
                for sid, i, t in rows:
                    sym, tf, ot, o, h, lo, c, v = cols[sid]
                    clock.time_ms = t
                    publishers[sid](make(sym, tf, ot[i], o[i], h[i], lo[i], c[i], v[i], t, t))
            if progress is not None:
                progress(min(n, begin + _CHUNK))
        return n


# ------------------------------------------------------------------------ the compiled delivery loops
#
# One loop per route shape, generated and compiled once: it builds each kline inline (the fields stored
# into a KlineFields, then re-labelled KlineClosed as new_kline does, without a call per kline), moves
# the clock and runs the route's handlers in subscription order, each as a call or, where the handler's
# owner offers one (core.bus.InlineStep), as its body inlined: no call into the bus and no Python call
# for an inlined handler. A failure is raised as the bus raises it, naming the handler (``at``) and the
# kline. A loop returns how many klines it delivered: fewer than it was given when a subscription changed
# (which takes effect from the next kline), so the caller goes on with a loop for the new handlers.

_BUILD = """\
k = Fields()
k.symbol = {sym}
k.timeframe = {tf}
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
"""

_SINGLE = """\
def chain(route, handlers, clock, failed, names, rows, sym, tf, ot, o, hi, lo, c, v, ct):
{unpack}
    k = at = None
    n = 0
    try:
        for open_time, open_, high, low, close, volume, close_time in zip(ot, o, hi, lo, c, v, ct):
{body}
            n += 1
            if route[0] is not handlers:
                return n
    except (HandlerError, StrategyError):
        raise
    except Exception as exc:
        raise failed(at, k, exc) from exc
    return n
"""

# The single-stream loop when no handler needs the kline on every event (issue 17, target 3): the inline steps
# read the scalars, and the kline is built from the chunk's columns (``rows.kline``) only where a step uses it
# (``@k``: a failure, a strategy that reads its kline). A one-slot latest-kline store (``deque(maxlen=1).append``)
# or a latest-value step (``InlineStep.latest_only``: the portfolio's latest close, stored from the columns
# without a kline) is brought up to date only at each ``@sync`` (before a step calls out: the
# exchange processing a kline, the runner flushing intents or reporting a failure) and when the loop ends,
# with what it would hold there had it been called on every kline: the current kline if it comes before that
# step, the previous one if after (``held<j>``: the row it holds; -1, the kline before this call's first).
_LAZY = """\
def chain(route, handlers, clock, failed, names, rows, sym, tf, {columns}):
{unpack}
    at = None
    n = 0
    try:
        for {fields}, in zip({columns}):
            clock.time_ms = close_time
{body}
            n += 1
            if route[0] is not handlers:
                break
    except (HandlerError, StrategyError):
{failing}
        raise
    except Exception as exc:
{failing}
        raise failed(at, rows.kline(n), exc) from exc
{ending}
    return n
"""

_MERGED = """\
def chain(changes, handler_sets, clock, failed, names, rows, cols):
{unpack}
    seen = changes[0]
    k = at = None
    n = 0
    try:
        for sid, i, close_time in rows:
{body}
            n += 1
            if changes[0] is not seen:
                return n
    except (HandlerError, StrategyError):
        raise
    except Exception as exc:
        raise failed(at, k, exc) from exc
    return n
"""

_Chain = Callable[..., int]
_Made = tuple[_Chain, dict[str, Any], tuple[str, ...]]  # a single-stream loop, its names, its columns
_compiled: dict[str, _Chain] = {}
_DOLLAR = re.compile(r"\$(\w+)")


_SYNC = re.compile(r"^( *)@sync$", re.MULTILINE)
_KLINE = re.compile(r"@k\b")


def _step_source(step: InlineStep, own: str, names: dict[str, Any], sync: str = "pass", kline: str = "k") -> str:
    """``step``'s source for handler ``own``: its names bound, ``@sync`` and ``@k`` replaced as given."""
    for name, value in step.names.items():
        names[f"{own}_{name}"] = value
    source = _DOLLAR.sub(rf"{own}_\1", step.source.rstrip())
    source = _SYNC.sub(lambda m: textwrap.indent(sync, m.group(1)), source)
    return _KLINE.sub(kline, source)


def _steps(handlers: tuple[Any, ...], topic: tuple[str, str], prefix: str, names: dict[str, Any]) -> str:
    """The source delivering ``k`` to ``handlers``, in order: a call each, or the inline step offered."""
    lines: list[str] = []
    for j, handler in enumerate(handlers):
        own = f"{prefix}h{j}"
        names[own] = handler
        lines.append(f"at = {own}")
        step = inline_step(handler, topic)
        if step is None:
            lines.append(f"{own}(k)")
            continue
        lines.append(_step_source(step, own, names))
    return "\n".join(lines)


def _latest_slot(handler: Any) -> bool:
    """``deque(maxlen=1).append``: a store of the latest kline whose only observable state is that kline."""
    owner = getattr(handler, "__self__", None)
    return isinstance(owner, deque) and owner.maxlen == 1 and getattr(handler, "__name__", "") == "append"


def _names_read(source: str) -> tuple[set[str], set[str]]:
    """The ``FIELDS`` a step's source reads on its path taken every kline, and those read only in a block after
    an ``@sync`` (a call out: rare on the replay's hot path), which the lazy loop loads there."""
    hot: set[str] = set()
    cold: set[str] = set()
    sync_indent: int | None = None
    for line in source.splitlines():
        indent = len(line) - len(line.lstrip())
        if sync_indent is not None and indent < sync_indent:
            sync_indent = None
        if line.strip() == "@sync":
            sync_indent = indent
            continue
        found = {name for name in FIELDS if re.search(rf"\b{name}\b", line)}
        (cold if sync_indent is not None else hot).update(found)
    return hot, cold - hot


def _lazy_chain(handlers: tuple[Any, ...], topic: tuple[str, str]) -> _Made | None:
    """The single-stream loop that builds no kline per event (``_LAZY``) and the columns it reads, or None when a
    handler needs a kline per event: a handler that is called, or a step that reads it (``InlineStep.reads_kline``)."""
    steps = {j: inline_step(h, topic) for j, h in enumerate(handlers) if not _latest_slot(h)}
    if any(step is None or step.reads_kline for step in steps.values()):
        return None
    names: dict[str, Any] = {}
    stores: dict[int, str] = {}  # latest-only steps, run where the slots are settled (``InlineStep.latest_only``)
    for j, step in list(steps.items()):
        if step is not None and step.latest_only and not _SYNC.search(step.source) and not _KLINE.search(step.source):
            stores[j] = store_source(_step_source(step, f"sh{j}", names))
            del steps[j]
    slots = [j for j in range(len(handlers)) if j not in steps]
    for j in slots:
        names[f"sh{j}"] = handlers[j]

    def settle(at: int | None) -> str:
        """Each latest-kline slot given what it holds while handler ``at`` runs (None: after the kline)."""
        out = []
        for j in slots:
            row = "n" if at is not None and j < at else "n - 1"
            store = f"row_i = rows._start + {row}\n{stores[j]}" if j in stores else f"sh{j}(rows.kline({row}))"
            out.append(f"if held{j} != {row}:\n    held{j} = {row}\n{textwrap.indent(store, '    ')}")
        return "\n".join(out) or "pass"

    body = []
    hot = {"close_time"}  # the clock's
    for j, step in steps.items():
        assert step is not None
        own = f"sh{j}"
        names[own] = handlers[j]
        step_hot, step_cold = _names_read(step.source)
        hot |= step_hot
        load = "".join(f"\n{name} = {cold_load(name)}" for name in sorted(step_cold - hot))
        body.append(f"at = {own}\n" + _step_source(step, own, names, settle(j) + load, "rows.kline(n)"))
    failing = "\n".join(f"{'el' if body_j else ''}if at is sh{j}:\n{textwrap.indent(settle(j), '    ')}"
                        for body_j, j in enumerate(steps)) or "pass"
    ending = "if n:\n" + textwrap.indent(settle(None), "    ")
    head = "\n".join(f"    held{j} = -1" for j in slots)
    wanted = tuple(name for name in FIELDS if name in hot)
    columns = ", ".join(f"col_{name}" for name in wanted)
    source = (_LAZY.replace("{failing}", textwrap.indent(failing, " " * 8))
              .replace("{ending}", textwrap.indent(ending, " " * 4))
              .replace("{columns}", columns).replace("{fields}", ", ".join(wanted)))  # fmt: skip
    return _compile(source, "\n".join(body), names, head), names, wanted


def _compile(template: str, body: str, names: dict[str, Any], head: str = "") -> _Chain:
    unpack = "\n".join([*(f"    {n} = names[{n!r}]" for n in names), *head.splitlines()]) or "    pass"
    source = template.format(unpack=unpack, body=textwrap.indent(body, " " * 12))
    chain = _compiled.get(source)
    if chain is None:
        filename = f"<kline chain {len(_compiled)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # readable tracebacks
        scope = {"Fields": KlineFields, "KlineClosed": KlineClosed, "HandlerError": HandlerError,
                 "StrategyError": StrategyError}  # fmt: skip
        exec(compile(source, filename, "exec"), scope)
        chain = _compiled[source] = scope["chain"]
    return chain


def _single_chain(handlers: tuple[Any, ...], topic: tuple[str, str]) -> _Made:
    """The loop for one stream's route, the names it binds (handlers, inline steps' objects) and the columns
    (``FIELDS``) it is given, in order."""
    lazy = _lazy_chain(handlers, topic)
    if lazy is not None:
        return lazy
    names: dict[str, Any] = {}
    body = _BUILD.format(sym="sym", tf="tf") + _steps(handlers, topic, "s", names)
    return _compile(_SINGLE, body, names), names, FIELDS


def _merged_chain(handler_sets: list[tuple[Any, ...]], topics: list[tuple[str, str]]) -> tuple[_Chain, dict[str, Any]]:
    """The loop for several streams' routes: each row ``(stream, index, close time)`` goes down a binary
    tree of comparisons on the stream to that stream's branch, which builds its kline from the stream's
    columns at ``index`` and runs that stream's handlers. Stream ``s``'s columns are ``cols[s]``."""
    names: dict[str, Any] = {}
    head = "\n".join(f"    sym{s}, tf{s}, ot{s}, o{s}, hi{s}, lo{s}, c{s}, v{s} = cols[{s}]"
                     for s in range(len(topics)))

    def branch(s: int) -> str:
        fields = f"open_time = ot{s}[i]\nopen_ = o{s}[i]\nhigh = hi{s}[i]\nlow = lo{s}[i]\nclose = c{s}[i]\n" \
                 f"volume = v{s}[i]\n"  # fmt: skip
        return fields + _BUILD.format(sym=f"sym{s}", tf=f"tf{s}") + _steps(handler_sets[s], topics[s], f"s{s}", names)

    def tree(lo: int, hi: int) -> str:
        if hi - lo == 1:
            return branch(lo)
        mid = (lo + hi) // 2
        return (f"if sid < {mid}:\n{textwrap.indent(tree(lo, mid), '    ')}\n"
                f"else:\n{textwrap.indent(tree(mid, hi), '    ')}")  # fmt: skip

    body = tree(0, len(topics))
    return _compile(_MERGED, body, names, head), names


# the pieces of these loops the lockstep replay (backtest.merge, backtest.lockstep_lazy) is made of
_LOCKSTEP_KIT = Kit(_BUILD, _steps, _compile, _step_source, _latest_slot, _names_read)

if set(re.findall(r"\bk\.(\w+) = ", _BUILD)) - {"__class__"} != {f.name for f in fields(KlineClosed)}:
    raise TypeError("the compiled kline chain must set exactly the fields of KlineClosed")
