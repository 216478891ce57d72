"""Runs one multi-symbol strategy (pairs, spreads, hedges, rotation): one instance, several symbols.

The strategy's ``on_kline`` runs once per kline open time, after every one of its symbols' klines of that
time has closed ("the group"). Its history holds one row per time where every symbol has a kline, so each
symbol's series and any cross-symbol indicator line up on the same kline, in a backtest and live alike.

A time where some symbol has no kline is skipped: no ``on_kline``, no row in the strategy's history,
never a value carried forward from another time (which could only be an older one) and never a wait for
a later one. Backtest: the history is the intersection of the symbols' open times, and the replay
skips the same times (``skipped`` counts them). Live: once the first kline of a time arrives, the runner
waits ``group_wait_s`` seconds (the config entry's, else the class attribute) on the injected clock for
the rest; a time still incomplete then (or when a later time completes first) is skipped with a warning
and an ``Alert``, and a kline of a time already skipped or acted on arrives too late and is dropped
(``late`` counts them). Both publish an ``Alert`` (``group_kline_missing``, ``group_kline_late``), so a
live run's journal and report count them. A late leg therefore costs one decision, never a stall.

Intents name their symbol (``self.buy(symbol="NEARUSDT")``; None is the first symbol); each leg is an
ordinary intent for that symbol, sized, checked and journaled by the risk manager like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np

from ..core.bus import EventBus
from ..core.clock import Clock
from ..core.enums import IntentAction
from ..core.events import (
    Alert,
    KlineClosed,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    PositionChanged,
    RiskDenied,
)
from .base import FLAT, Position, Strategy
from .rejection import OrderRejection
from .runner import StrategyRunner
from .symbol_data import FIELDS

log = logging.getLogger(__name__)
_OPEN_LONG, _OPEN_SHORT = IntentAction.OPEN_LONG, IntentAction.OPEN_SHORT  # (a global: no enum class lookup)


def aligned_history(
    histories: Mapping[str, tuple[np.ndarray, ...]],
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Open times where every symbol has a kline, and the five price arrays with a column per symbol.

    ``histories``: per symbol (in the strategy's order) ``(open_time, open, high, low, close, volume)``."""
    times: np.ndarray | None = None
    for cols in histories.values():
        t = np.asarray(cols[0], dtype=np.int64)
        times = t if times is None else np.intersect1d(times, t, assume_unique=True)
    assert times is not None
    rows = []
    for cols in histories.values():
        idx = np.searchsorted(np.asarray(cols[0], dtype=np.int64), times)
        rows.append([np.asarray(c, dtype=np.float64)[idx] for c in cols[1:]])
    arrays = tuple(np.column_stack([r[f] for r in rows]) if len(times) else np.empty((0, len(rows)))
                   for f in range(len(FIELDS)))
    return times, arrays


class GroupRunner(StrategyRunner):
    """A :class:`StrategyRunner` whose strategy trades several symbols on one timeframe."""

    def __init__(
        self,
        strategy: Strategy,
        bus: EventBus,
        clock: Clock,
        *,
        strategy_id: str,
        id_prefix: str,
        fail_fast: bool = True,
        window: int | None = None,
        wait_s: float | None = None,
    ) -> None:
        # the base subscribes the first symbol's klines to _on_replayed_kline / _on_live_kline (overridden)
        super().__init__(strategy, bus, clock, strategy_id=strategy_id, id_prefix=id_prefix, fail_fast=fail_fast,
                         window=window)
        self.symbols = strategy.symbols
        self._count = len(self.symbols)
        self._wait_s = float(strategy.group_wait_s if wait_s is None else wait_s)
        self._waiting: dict[int, dict[str, KlineClosed]] = {}  # open time -> the klines of it arrived so far
        self._resolved = -1  # newest open time acted on or skipped
        self._timers: dict[int, asyncio.Task[None]] = {}  # live: open time -> its bounded wait
        self._t, self._got = -1, 0  # replay: the current open time, and how many of its klines arrived so far
        self._head: Any = None  # replay: the first symbol's kline of the current time (what on_kline receives)
        self.skipped = 0
        """Kline times skipped because some symbol had no kline of that time (or, live, not in time)."""
        self.late = 0
        """Live: klines dropped because their time had already been acted on or skipped."""
        for sym in self.symbols[1:]:
            bus.subscribe(KlineClosed, self.on_kline, topic=(sym, self.timeframe))
        strategy._positions = {sym: FLAT for sym in self.symbols}

    @property
    def wait_s(self) -> float:
        """Live: seconds to wait for the other symbols' klines of a time (config ``group_wait_s``, else the
        class attribute)."""
        return self._wait_s

    # ------------------------------------------------------------------------------ history
    def warm_up_from(self, history: Mapping[tuple[str, str], list[KlineClosed]]) -> None:
        per: dict[str, list[KlineClosed]] = {}
        for sym in self.symbols:
            rows: list[KlineClosed] = []
            for k in history.get((sym, self.timeframe), []):
                if not rows or k.open_time > rows[-1].open_time:
                    rows.append(k)
            per[sym] = rows
        if not all(per.values()):
            return  # the first live group is the warm-up
        times, arrays = aligned_history({sym: _columns(rows) for sym, rows in per.items()})
        if not len(times):
            return
        o, h, lo, c, v = arrays
        self._guard(lambda: self.strategy._bind(o, h, lo, c, v, times), "init")
        if self.halted:
            return
        self._guard(lambda: self._start_live(len(times)), "init")
        self._resolved = self._last_open = int(times[-1])
        for sym, rows in per.items():  # a symbol's newest klines, after the last common time: part of the next group
            for k in rows:
                if k.open_time > self._resolved:
                    self._waiting.setdefault(k.open_time, {})[sym] = k

    def warm_up_live(self, klines: list[KlineClosed]) -> None:
        self.warm_up_from({(k.symbol, k.timeframe): [k] for k in klines})

    # ------------------------------------------------------------------------------ klines
    def _on_replayed_kline(self, kline: KlineClosed) -> None:
        # a replay delivers klines in time order, each once: counting the klines of the current time is enough
        t = kline.open_time
        if t == self._t:
            self._got += 1
        else:
            if self._got:
                self.skipped += 1  # the previous time never completed: some symbol has no kline of it
            self._t, self._got = t, 1
        if kline.symbol == self.symbol:
            self._head = kline
        if self._got < self._count:
            return
        self._got = 0
        cursor = self._cursor
        i = cursor.i = cursor.i + 1
        if i < self._first or self.halted:
            return
        try:
            self._strategy_on_kline(self._head)
        except Exception as exc:
            self._failed(self._head, exc)
            return
        if self._pending:
            self._flush()

    def _on_live_kline(self, kline: KlineClosed) -> None:
        if self.halted:
            return
        group = self._arrive(kline)
        if group is None:
            return
        live = self._live
        if live is None:
            self.warm_up_from({(k.symbol, k.timeframe): [k] for k in group})
            if self._live is None:
                return
        else:
            self._last_open = group[0].open_time
            values = [getattr(k, f) for k in group for f in FIELDS]
            try:
                live.append_rows(values, group[0].open_time)
            except Exception as exc:
                self._failed(group[0], exc)
                return
            self._seen += 1
        if self.live_ready:
            self._decide(group)

    def _decide(self, group: list[KlineClosed]) -> None:
        try:
            self._strategy_on_kline(group[0])
        except Exception as exc:
            self._failed(group[0], exc)
            return
        if self._pending:
            self._flush()

    def _arrive(self, kline: KlineClosed) -> list[KlineClosed] | None:
        """Live: take one symbol's kline; the whole group (in ``symbols`` order) once the last of its time
        arrived. (A replay, in time order, only counts: ``_on_replayed_kline``.)"""
        t = kline.open_time
        if t <= self._resolved:
            self.late += 1
            message = (f"{self.strategy_id}: {kline.symbol} kline of {t} arrived after that time was acted on or "
                       f"skipped; dropped ({self.late} so far)")
            log.warning(message)
            now = self._clock.now_ms()  # journaled: the live report counts these
            self._bus.publish(Alert(kind="group_kline_late", message=message, symbol=kline.symbol, ts_event=now,
                                    ts_init=now))
            return None
        have = self._waiting.get(t)
        if have is None:
            have = self._waiting[t] = {}
            if self._wait_s > 0:
                self._start_timer(t)
        have[kline.symbol] = kline
        if len(have) < self._count:
            return None
        del self._waiting[t]
        timer = self._timers.pop(t, None)
        if timer is not None:
            timer.cancel()  # complete in time: the wait ends here
        if self._waiting:  # older times still incomplete: a later one is complete, so they never will be
            for old in sorted(x for x in self._waiting if x < t):
                self._skip(old, "a later time completed first")
        self._resolved = t
        return [have[sym] for sym in self.symbols]

    def _skip(self, t: int, why: str) -> None:
        have = self._waiting.pop(t)
        timer = self._timers.pop(t, None)
        if timer is not None:
            timer.cancel()
        self._resolved = max(self._resolved, t)
        self.skipped += 1
        missing = [s for s in self.symbols if s not in have]
        message = (f"{self.strategy_id}: kline time {t} skipped, no {', '.join(missing)} kline ({why}); "
                   f"{self.skipped} skipped so far")
        log.warning(message)
        now = self._clock.now_ms()
        self._bus.publish(Alert(kind="group_kline_missing", message=message, symbol=missing[0], ts_event=now,
                                ts_init=now))

    def _start_timer(self, t: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous test feeding klines): a later complete time resolves it
        self._timers[t] = loop.create_task(self._expire(t))

    async def _expire(self, t: int) -> None:
        await self._clock.sleep(self._wait_s)
        self._timers.pop(t, None)
        if t in self._waiting:
            for old in sorted(x for x in self._waiting if x <= t):
                self._skip(old, f"not in within {self._wait_s:g} s")

    def stop(self) -> None:
        for task in self._timers.values():
            task.cancel()
        self._timers.clear()
        super().stop()

    # ----------------------------------------------------------------------------- intents
    def _collect(
        self,
        action: IntentAction,
        quantity: float | Decimal | None,
        fraction: float | None,
        stop_loss: float | None,
        take_profit: float | None,
        limit: float | None,
        tag: str,
        symbol: str | None = None,
    ) -> None:
        sym = self._symbol(symbol)
        if (action is _OPEN_LONG or action is _OPEN_SHORT) and self._held_in(sym, action):
            self.entries_ignored += 1
            return
        self._seq += 1
        now = self._clock.now_ms()
        qty = None if quantity is None else (quantity if isinstance(quantity, Decimal) else Decimal(repr(quantity)))
        self._pending.append(OrderIntent(
            intent_id=f"{self._prefix}-{self._seq}", strategy_id=self.strategy_id, symbol=sym, action=action,
            quantity=qty, fraction=fraction, stop_loss=stop_loss, take_profit=take_profit, limit_price=limit,
            reference_price=self.strategy.data[sym].close[-1], tag=tag, ts_event=now, ts_init=now,
        ))

    def _collect_intent(self, intent_type: type, symbol: str | None = None, **fields: Any) -> None:
        sym = self._symbol(symbol)
        self._seq += 1
        now = self._clock.now_ms()
        self._pending.append(intent_type(intent_id=f"{self._prefix}-{self._seq}", strategy_id=self.strategy_id,
                                         symbol=sym, reference_price=self.strategy.data[sym].close[-1],
                                         ts_event=now, ts_init=now, **fields))

    def _symbol(self, symbol: str | None) -> str:
        if symbol is None:
            return self.symbol
        if symbol not in self.symbols:
            raise ValueError(f"{self.strategy_id} trades {', '.join(self.symbols)}; not {symbol}")
        return symbol

    def _held_in(self, symbol: str, action: IntentAction) -> bool:
        strategy = self.strategy
        if strategy.add_to_position:
            return False
        size = strategy.position_of(symbol).size
        if (size > 0) if action is _OPEN_LONG else (size < 0):
            return True
        return any(getattr(p, "action", None) is action and p.symbol == symbol for p in self._pending)

    # ------------------------------------------------------------------------------ events
    def _on_position(self, event: PositionChanged) -> None:
        sym = event.symbol
        if sym in self.strategy._positions:
            pos = Position(float(event.quantity), float(event.entry_price)) if event.quantity else FLAT
            self.strategy._positions[sym] = pos
            if sym == self.symbol:
                self.strategy.position = pos

    def _on_fill(self, event: OrderFilled) -> None:
        if event.symbol in self.symbols and self.owns(event.client_order_id):
            self._guard(lambda: self.strategy.on_fill(event), "on_fill", event)
            if self._pending:
                self._flush()

    def _on_rejected(self, event: OrderRejected) -> None:
        if event.symbol in self.symbols and self.owns(event.client_order_id):
            self._guard(lambda: self.strategy.on_order_rejected(OrderRejection.of(event)), "on_order_rejected", event)

    def _on_denied(self, event: RiskDenied) -> None:
        if event.strategy_id == self.strategy_id and event.symbol in self.symbols:
            self._guard(lambda: self.strategy.on_order_rejected(OrderRejection.of(event)), "on_order_rejected", event)


def _columns(rows: list[KlineClosed]) -> tuple[np.ndarray, ...]:
    n = len(rows)
    times = np.fromiter((k.open_time for k in rows), dtype=np.int64, count=n)
    return (times, *(np.fromiter((getattr(k, f) for k in rows), dtype=np.float64, count=n) for f in FIELDS))


__all__ = ["GroupRunner", "aligned_history"]
