"""Skipping idle klines: a replay that jumps over klines where nothing can happen (issue 17, target 8).

A strategy that declares an act mask (:mod:`kinetic_empire.strategy.act_mask`) says on which klines its
``on_kline`` may act. On the others, while no order rests on the simulated exchange, a kline that stays inside
the book's watch levels (a liquidation price, or with several cross positions a band's edge) and opens before
its next funding time takes ``Matching.on_kline``'s quiet branch: it changes nothing but "the latest price"
(the exchange's ``last``, the portfolio's latest close) and the replay clock. The equity curve is
computed after the run from the wallet and position history (change points, none of them on such a kline), so
it needs no kline in between. So :class:`SkipPlan` delivers only the klines where something may happen (a mask
is True, the exchange would process the kline: a funding time, a level reached), the kline *before* each one
the exchange processes (processing reads the latest price and the portfolio's latest close before the kline's
own handlers set them), the last kline of each progress chunk (a ``progress`` callback marks an open position
at the latest close) and the run's last kline: every "latest" holds what it would hold without skipping
whenever anything reads it. A kline only a mask asks for needs no kline before it: the exchange takes its quiet
branch there (nothing armed, nothing read) and the portfolio's store holds it before the strategy runs, so the
strategy, the risk gate and the order it sends read it, as without skipping. Flat, the stops come from the
masks alone; in a position the run looks, once per stretch and
vectorised, for the first kline whose low or high reaches a watch level or whose open reaches the funding
time (:meth:`SkipPlan._held_target`). While an order rests (a stop, take-profit, limit or queued market order)
every kline is delivered, and only the strategy call is skipped where the mask is False (:class:`MaskGate`).

It applies only where that reasoning is complete: one replayed stream (one symbol, one timeframe), a bus
that stops on errors (a backtest's), and a route whose every handler is known: the simulated exchange's
``on_kline``, a gated runner's, a one-slot ``deque.append`` or a latest-value store (the portfolio's close).
Anything else listening to those klines (a risk rule's ATR, mark-price or ticker replays, a second strategy
without a mask) turns jumping off, and only the strategy calls are skipped.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.bus import EventBus, inline_step
from ..core.clock import ReplayClock
from ..core.errors import HandlerError, StrategyError
from ..core.events import KlineClosed, KlineFields
from ..exchange import SimulatedExchange
from ..exchange.book import INF, NEVER
from ..exchange.matching import Matching
from ..strategy.act_mask import MODES, ActMaskError, MaskGate, declared_mask, mask_error
from ..strategy.group import GroupRunner
from ..strategy.runner import StrategyRunner
from .feed import _CHUNK, Stream

log = logging.getLogger(__name__)

_DENSE, _MAX_BLOCK = 8, 4096  # SkipPlan.run: a block this long is made Python values at once (tolist); at most
_GATHER = 2048  # SkipPlan._gathered: stops read ahead at once (memory bounded whatever the mask)


def attach_gates(runners: Sequence[StrategyRunner], histories: Sequence[np.ndarray], mode: str) -> list[MaskGate]:
    """Gate each bound runner whose strategy declares an act mask (``histories``: each runner's open times).
    Multi-symbol runners are left alone (their strategy is called per aligned group, not per kline)."""
    if mode not in MODES:
        raise ActMaskError(f"act_mask mode {mode!r}: expected one of {', '.join(MODES)}")
    gates: list[MaskGate] = []
    if mode == "off":
        return gates
    for runner, open_time in zip(runners, histories):
        if isinstance(runner, GroupRunner) or runner.halted:
            continue
        mask = declared_mask(runner.strategy, len(open_time))
        if mask is not None:
            gates.append(MaskGate(runner, mask, open_time, verify=mode == "verify"))
    return gates


def verify_gates(gates: Sequence[MaskGate]) -> None:
    """``verify`` mode, after the run: :class:`ActMaskError` listing the klines where a mask was wrong."""
    findings = [f for g in gates for f in g.findings]
    if findings:
        raise mask_error(findings)


class SkipPlan:
    """Which rows of the one replayed stream must be delivered while idle, and the replay that jumps."""

    def __init__(self, exchange: SimulatedExchange, stream: Stream, gates: Sequence[MaskGate]) -> None:
        frame = stream.frame
        self.symbol, self.timeframe = frame.symbol, frame.timeframe
        self._stream = stream
        self._book = exchange.book(frame.symbol)
        self._gates = list(gates)
        self._allowed: set[Any] = {exchange.on_kline, *(g.runner.on_kline for g in gates)}
        n = len(frame)
        must = np.zeros(n, dtype=bool)
        for g in gates:
            acts = g.mask.copy()
            acts[: max(0, g.runner.warmup - 1)] = False  # the runner calls nothing before its warm-up ends
            must |= acts
        stop = must  # (not the kline before each: flat and idle, it would only set "latest" values that the
        if n:  # stop's own delivery sets again before anyone reads them; in a position, see _held_target)
            stop[-1] = True  # the run ends on its own last kline, whatever the masks say
        self._stops = np.flatnonzero(stop)
        self._open_time, self._low, self._high = frame.open_time, frame.low, frame.high
        # jumping in a position relies on Matching.on_kline's quiet branch (only the last price moves)
        self._held_exact = getattr(type(exchange), "on_kline", None) is Matching.on_kline
        self._funding_time = self._funding_row = -1  # the last funding time looked up, and its row
        self.delivered = 0
        """Klines actually delivered by the last run (the rest were jumped over)."""
        self.held_skipped = 0
        """Of the klines jumped over by the last run, those in a position (the rest were flat)."""

    @classmethod
    def build(cls, bus: EventBus, exchange: SimulatedExchange, streams: Sequence[Stream],
              gates: Sequence[MaskGate]) -> SkipPlan | None:
        """A plan when jumping is sound for this run (see the module docstring), else None."""
        if len(streams) != 1 or not gates or not bus.stops_on_error:
            return None
        stream = streams[0]
        topic = (stream.frame.symbol, stream.frame.timeframe)
        mine = [g for g in gates if (g.runner.symbol, g.runner.timeframe) == topic]
        if len(mine) != len(gates):
            return None
        plan = cls(exchange, stream, mine)
        if not plan.known(bus.route(KlineClosed, topic)[0]):
            log.info("act mask: klines of %s %s have other listeners; only strategy calls are skipped", *topic)
            return None
        return plan

    def known(self, handlers: tuple[Any, ...]) -> bool:
        """Every handler is one whose state after a skipped idle stretch is what it would have been."""
        runners = {g.runner.on_kline for g in self._gates}
        if not runners <= set(handlers):  # a gated runner no longer listening: nothing to trust
            return False
        topic = (self.symbol, self.timeframe)
        return all(h in self._allowed or _latest_slot(h) or _latest_store(h, topic) for h in handlers)

    def idle(self) -> bool:
        """Flat, no order waiting, no trigger, liquidation level or funding time armed: a kline can only move
        the latest price (the exchange's fast path)."""
        book = self._book
        return (not book.busy and book.next_funding >= NEVER and book.watch_low == -INF and book.watch_high == INF
                and book.pos.qty_f == 0.0)

    def run(self, bus: EventBus, clock: ReplayClock, progress: Callable[[int], None] | None = None) -> int:
        """The stream's klines from its start to its end, handlers called as the bus calls them, jumping over
        idle stretches; returns the klines replayed (skipped ones included, as a full replay counts them).

        ``progress(done)`` is called at the same counts as the feed's own loop (every ``_CHUNK`` klines, then
        the total), once every kline before that count is behind: one jumped over was idle, so the state a
        callback reads there (equity, the optimiser's pruning) is what it would have been. It runs outside the
        handlers' error wrapping, so what it raises (an optimiser's pruning) reaches the caller as it is.

        A kline is read value by value (``ndarray.item``) while the run jumps (it pays per kline delivered);
        after ``_DENSE`` klines delivered one after another (an order resting) rows are converted a block at
        once (``tolist`` of a slice), blocks doubling up to ``_MAX_BLOCK``, so a dense stretch pays per block."""
        s = self._stream
        f = s.frame
        start, n = s.start, s.count
        end = start + n
        sym, tf = f.symbol, f.timeframe
        route = bus.route(KlineClosed, (sym, tf))
        arrays = (f.open_time, f.open, f.high, f.low, f.close, f.volume)
        ot_a, o_a, h_a, lo_a, c_a, v_a = arrays
        last_ms = f.interval_ms - 1
        stops = self._stops.tolist()  # ascending; the last is the frame's last row, so a search always ends
        stops.append(end)  # and past it: stops[si] >= row holds at the end too
        si = int(self._stops.searchsorted(start))  # stops[si]: the first stop at or after the row (rows only
        g_rows, g_vals, g_next = self._gathered(si, end)  # move forward); rows most delivered, read ahead
        g_last, gp = len(g_rows) - 1, 0  # (g_rows[g_last] is end, never a row delivered)
        cursors = [g.runner.strategy._cursor for g in self._gates]
        checked: tuple[Any, ...] | None = None
        may_jump = False
        book = self._book
        pos = book.pos
        held_exact = self._held_exact
        retry_at = 0  # while in a position: the first row worth looking for a stretch again (see _held_target)
        delivered = held_skipped = 0
        checkpoint = _CHUNK  # the next progress count, and the row it falls on (end: none before the end)
        pause = start + checkpoint if progress is not None and checkpoint < n else end
        row = start
        streak = 0  # klines delivered one after another since the last jump
        block = _DENSE  # the next dense block's length
        dense_lo = dense_hi = start  # rows [dense_lo, dense_hi) are converted, in the lists below
        ot: list[Any] = []
        o = h = lo = c = v = ot
        handler: Any = None
        k: Any = None
        while row < end:
            try:
                while row < pause:
                    handlers = route[0]
                    if handlers is not checked:  # subscriptions changed: jump only if every listener is known
                        checked, may_jump = handlers, self.known(handlers)
                    k = KlineFields()  # built as new_kline builds it, without the call (see feed._chain)
                    k.symbol, k.timeframe = sym, tf
                    if row < dense_hi:
                        j = row - dense_lo
                        k.open_time, k.open, k.high, k.low, k.close, k.volume = ot[j], o[j], h[j], lo[j], c[j], v[j]
                    elif streak >= _DENSE:
                        dense_lo, dense_hi = row, min(end, row + block)
                        block = min(block * 2, _MAX_BLOCK)
                        ot, o, h, lo, c, v = (a[row:dense_hi].tolist() for a in arrays)
                        k.open_time, k.open, k.high, k.low, k.close, k.volume = ot[0], o[0], h[0], lo[0], c[0], v[0]
                    else:
                        gr = g_rows[gp]
                        while gr < row:
                            gp += 1
                            gr = g_rows[gp]
                            if gp == g_last and g_next < len(self._stops):  # this window's rows are behind
                                g_rows, g_vals, g_next = self._gathered(g_next, end)
                                g_last, gp = len(g_rows) - 1, 0
                                gr = g_rows[0]
                        if gr == row:
                            k.open_time, k.open, k.high, k.low, k.close, k.volume = g_vals[gp]
                        else:
                            k.open_time, k.open, k.high, k.low, k.close, k.volume = (
                                ot_a.item(row), o_a.item(row), h_a.item(row), lo_a.item(row), c_a.item(row),
                                v_a.item(row))
                    k.ts_event = k.ts_init = t = k.open_time + last_ms
                    k.__class__ = KlineClosed
                    clock.time_ms = t
                    for handler in handlers:
                        handler(k)
                    delivered += 1
                    row += 1
                    if stops[si] < row:  # (by one at most: stops are distinct, the row moved by one)
                        si += 1
                    streak += 1
                    if not may_jump or book.busy or row >= end:
                        continue
                    if pos.qty_f == 0.0:  # flat: idle unless a funding time or a watch level is armed (idle())
                        if book.next_funding < NEVER or book.watch_low != -INF or book.watch_high != INF:
                            continue
                        target = stops[si]
                    elif row >= retry_at and held_exact:  # in a position, no order resting: to the next kline
                        top = min(end, start + ((row - start) // _CHUNK + 1) * _CHUNK)  # that acts, or the last
                        target, retry_at = self._held_target(row, min(stops[si], top - 1))  # of the progress chunk
                        held_skipped += target - row
                    else:
                        continue
                    if target > row:  # (target <= stops[si]: si still points at the first stop from here)
                        for cur in cursors:  # the runners' place in their history, as if they saw each kline
                            cur.i += target - row
                        row = target
                        streak, block, dense_hi = 0, _DENSE, row
            except (HandlerError, StrategyError):
                raise
            except Exception as exc:
                raise bus.failed(handler, k, exc) from exc
            if progress is not None:
                while checkpoint < n and checkpoint <= row - start:
                    progress(checkpoint)
                    checkpoint += _CHUNK
                pause = start + checkpoint if checkpoint < n else end
        self.delivered = delivered
        self.held_skipped = held_skipped
        if progress is not None:
            progress(n)
        return n

    def _gathered(self, first: int, end: int) -> tuple[list[int], list[tuple[Any, ...]], int]:
        """The rows of stops ``first`` to ``first + _GATHER`` and the row after each (where a queued market order
        fills: with the stops, most rows a sparse replay delivers), ascending, then ``end``; their values as
        python scalars (open time, open, high, low, close, volume), read at once; and the next window's first."""
        picked = self._stops[first : first + _GATHER]
        rows = np.empty(2 * len(picked), dtype=np.int64)
        rows[0::2], rows[1::2] = picked, picked + 1
        at = np.minimum(rows, len(self._low) - 1)  # (the row after the last one is never delivered)
        f = self._stream.frame
        values = list(zip(*(a[at].tolist() for a in (f.open_time, f.open, f.high, f.low, f.close, f.volume))))
        return [*rows.tolist(), end], values, first + len(picked)

    def _held_target(self, row: int, stop: int) -> tuple[int, int]:
        """In a position with no order resting: the row to jump to from ``row`` (``row`` itself: none), and the
        first row worth looking again; ``stop`` is the next row that must be delivered anyway (the next one a
        mask lets act, or the progress chunk's last).

        Every row skipped must take :meth:`Matching.on_kline`'s quiet branch: its low above the book's lower
        watch level, its high below the upper one (liquidation price, or a cross band's edge) and its open time
        before the next funding time. That branch changes only the last price, so the levels stay as they are
        over the stretch and one vectorised look finds the first row that would be processed. The jump lands on
        the row before it (or on ``stop``), which is delivered so that every "latest" holds what it would hold;
        the run looks again only after that row is processed."""
        if stop <= row:
            return row, 0
        book = self._book
        first = stop + 1  # the first row in [row, stop] the exchange would process (stop + 1: none)
        funding = book.next_funding
        if funding < NEVER:
            if funding != self._funding_time:  # the row of a funding time, searched once (many looks share one)
                self._funding_time, self._funding_row = funding, int(self._open_time.searchsorted(funding))
            first = min(first, max(row, self._funding_row))
        level = book.watch_low
        if level > -INF and first > row:
            lows = self._low[row:first]
            if not lows.min() > level:  # (a NaN low fails this but is not a hit, as in on_kline)
                hits = np.flatnonzero(lows <= level)
                if hits.size:
                    first = row + int(hits[0])
        level = book.watch_high
        if level < INF and first > row:
            highs = self._high[row:first]
            if not highs.max() < level:
                hits = np.flatnonzero(highs >= level)
                if hits.size:
                    first = row + int(hits[0])
        if first > stop:
            return stop, 0
        return max(row, first - 1), first + 1


def _latest_slot(handler: Any) -> bool:
    """``deque(maxlen=1).append``: a store of the latest kline, the same after each jump
    because the kline before every delivered one is delivered too."""
    owner = getattr(handler, "__self__", None)
    return isinstance(owner, deque) and owner.maxlen == 1 and getattr(handler, "__name__", "") == "append"


def _latest_store(handler: Any, topic: tuple[str, str]) -> bool:
    """A handler whose inline step only keeps the latest kline's values (``InlineStep.latest_only``: the
    portfolio's latest close), the same after each jump for the same reason as a one-slot deque."""
    step = inline_step(handler, topic)
    return step is not None and step.latest_only


__all__ = ["SkipPlan", "attach_gates", "verify_gates"]
