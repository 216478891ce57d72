"""Runs one strategy instance on one symbol: feeds it closed klines, turns its actions into intents.

The runner is the safety wrapper around user code: an exception in a strategy becomes a
:class:`StrategyError` carrying the event that triggered it. Backtests stop at once; live runs halt
only the broken strategy, publish :class:`StrategyHalted` and keep everything else running.

Indicators are computed before the replay over the whole history (``precomputed``) or, live, once over
the warm-up history and then kept current kline by kline (``live_indicators``); the strategy code is the
same either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import fields as dataclass_fields
from decimal import Decimal
from typing import Any

import numpy as np

from ..core.bus import EventBus, InlineStep, ignores_argument, source_digest
from ..core.clock import Clock, ReplayClock
from ..core.enums import IntentAction
from ..core.errors import StrategyError
from ..core.events import (
    KlineClosed,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    PositionChanged,
    RiskDenied,
    StrategyHalted,
)
from .base import FLAT, Position, Strategy
from .live_indicators import BASE_FIELDS, LiveIndicators, history_needed, probe_history_needed
from .rejection import OrderRejection
from .series import Series

log = logging.getLogger(__name__)
_BASE_ON_FILL = Strategy.on_fill
_SERIES_FLOAT = Series.__float__

_OPEN_LONG, _OPEN_SHORT = IntentAction.OPEN_LONG, IntentAction.OPEN_SHORT  # (a global: no enum class lookup)
_IntentTwin = type("_WritableOrderIntent", (), {"__slots__": tuple(f.name for f in dataclass_fields(OrderIntent))})
"""A writable class with exactly ``OrderIntent``'s slots, re-labelled once filled (as ``core.event_factories``)."""
_NEVER = 1 << 62  # a replay position no history reaches: a halted runner's first kline

# ``_on_replayed_kline`` as source, for the replay feed's fused loop (``core.bus.InlineStep``): the same
# steps, line for line; tests/unit/test_replay_inline.py runs both on the same scenarios.
# ``{kline}`` is ``@k``, or ``None`` when the strategy's ``on_kline`` never reads its kline (``ignores_argument``).
_REPLAY_STEP = """\
$cursor.i = $i = $cursor.i + 1
if $i >= $runner._first:
    try:
        $on_kline({kline})
    except Exception as $exc:
        @sync
        $runner._failed(@k, $exc)
    if $runner._pending:
        @sync
        $runner._flush()
"""
# source_digest(StrategyRunner._on_replayed_kline) when _REPLAY_STEP was last checked against it
_REPLAY_STEP_MIRRORS = "af66c7dc9e94b685"


class StrategyRunner:
    """Binds a :class:`Strategy` to the bus for one symbol and timeframe."""

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
    ) -> None:
        self.strategy = strategy
        self.strategy_id = strategy_id
        self.symbol = strategy.symbol
        self.symbols: tuple[str, ...] = (strategy.symbol,)  # a GroupRunner's strategy trades several
        self.timeframe = strategy.timeframe
        self._bus = bus
        self._clock = clock
        self._fail_fast = fail_fast
        self._prefix = id_prefix
        self._seq = 0
        self._pending: list[Any] = []  # OrderIntent, ProtectionIntent, TargetPositionIntent
        self.send_intent: Callable[[Any], None] | None = None
        """How intents leave the runner: None, published; a backtest may hand them to their readers directly
        while that is what the bus would do (:mod:`kinetic_empire.backtest.direct`)."""
        self.halted = False
        self.intents_emitted = 0
        self.entries_ignored = 0
        """buy() while long / sell() while short with ``add_to_position`` off (see Strategy)."""
        self._window = window  # live: klines of history kept visible; None: precomputed history
        self._open_time: np.ndarray | None = None  # replay: the bound history's open times
        self._live: LiveIndicators | None = None  # live: indicators kept current kline by kline
        self._last_open = -1  # live: open time of the newest kline taken
        self._seen = 0  # live: klines taken, warm-up included
        self._i = -1
        self._warmup = 1
        self._first = 0  # index of the first kline the strategy sees (warm-up done)
        self._cursor = strategy._cursor
        self._own = id_prefix + "-"  # this runner's client order ids start with it (see owns)
        self._strategy_on_kline = strategy.on_kline
        # what _collect reads per intent without a call where it may: the replay clock's time, the close series
        self._replay: ReplayClock | None = clock if type(clock) is ReplayClock else None
        self._plain_close = type(strategy).close is Strategy.close and Series.__float__ is _SERIES_FLOAT
        strategy._emit = self._collect
        strategy._emit_intent = self._collect_intent
        self.on_kline = self._on_live_kline if window is not None else self._on_replayed_kline  # type: ignore[method-assign]
        bus.subscribe(KlineClosed, self.on_kline, topic=(self.symbol, self.timeframe))
        bus.subscribe(PositionChanged, self._on_position)
        bus.subscribe(OrderFilled, self._on_fill)
        bus.subscribe(OrderRejected, self._on_rejected)
        bus.subscribe(RiskDenied, self._on_denied)

    # ----------------------------------------------------------------------------- history
    def bind_history(
        self,
        open_time: np.ndarray,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        *,
        start_index: int = 0,
    ) -> None:
        """Precompute indicators over the whole history; klines arrive in the same order later.

        ``start_index``: position in the history of the first kline that will be published (earlier
        rows are warm-up history only).
        """
        self._guard(lambda: self.strategy._bind(open_, high, low, close, volume, open_time), "init")
        self._open_time = open_time  # a reference: nothing per kline is kept in a replay
        self._cursor.whole = True  # the arrays hold the whole history: crossovers may be precomputed
        self._cursor.i = self._i = start_index - 1
        self._warmup = self.strategy._inferred_warmup()
        self._first = self._warmup - 1 if not self.halted else _NEVER

    def warm_up_live(self, klines: list[KlineClosed]) -> None:
        """Run ``init`` once on the warm-up history (REST klines); later klines update the indicators
        incrementally (``live_indicators``). With no history, the first live kline is the warm-up."""
        rows: list[KlineClosed] = []
        for k in klines:
            if not rows or k.open_time > rows[-1].open_time:  # duplicates or old klines: already had
                rows.append(k)
        if not rows:
            return
        cols = [np.fromiter((getattr(k, f) for k in rows), dtype=np.float64, count=len(rows)) for f in BASE_FIELDS]
        times = np.fromiter((k.open_time for k in rows), dtype=np.int64, count=len(rows))
        o, h, lo, c, v = cols
        self._guard(lambda: self.strategy._bind(o, h, lo, c, v, times), "init")
        if self.halted:
            return
        assert self._window is not None
        self._guard(lambda: self._start_live(len(rows)), "init")
        self._last_open = rows[-1].open_time

    def warm_up_from(self, history: Mapping[tuple[str, str], list[KlineClosed]]) -> None:
        """:meth:`warm_up_live` from the REST history of every (symbol, timeframe) fetched."""
        self.warm_up_live(list(history.get((self.symbol, self.timeframe), [])))

    def _start_live(self, n: int) -> None:
        assert self._window is not None
        self._live = LiveIndicators(self.strategy, window=self._window, keep=self._window)
        self._cursor.i = n - 1
        self._seen = n
        per = history_needed(self.strategy, self._window)[1]
        short = {name: k for name, k in per.items() if k > n}
        if short:
            log.warning("%s on %s %s: %d klines of warm-up history, fewer than %s need to equal a backtest's "
                        "values to 1e-9; they converge as klines arrive", self.strategy_id, self.symbol,
                        self.timeframe, n, ", ".join(f"{name} ({k})" for name, k in short.items()))

    def live_history_needed(self) -> int:
        """Klines of warm-up history this strategy needs live (see ``live_indicators.history_needed``)."""
        assert self._window is not None
        try:
            return probe_history_needed(self.strategy, self._window)[0]
        except Exception as exc:  # a strategy whose init cannot run on a synthetic history
            log.warning("%s: warm-up length not inferred from its indicators (%s); using %d klines",
                        self.strategy_id, exc, self._window)
            return self._window

    def start(self) -> None:
        self._guard(self.strategy.on_start, "on_start")

    def stop(self) -> None:
        self._guard(self.strategy.on_stop, "on_stop")

    @property
    def position_in_history(self) -> int:
        """Index of the last kline delivered (replay): the engine checks it against the history's end."""
        return self._cursor.i if self._open_time is not None else self._i

    @property
    def history_open_time(self) -> np.ndarray:
        """Open times of the bound history (replay), aligned with the strategy's series: for reports."""
        if self._open_time is not None:
            return np.asarray(self._open_time, dtype=np.int64)
        return np.empty(0, dtype=np.int64)

    @property
    def warmup(self) -> int:
        return self._warmup

    @property
    def live_ready(self) -> bool:
        """Live: the warm-up is behind (``on_kline`` is being called), so hooks may run too."""
        live = self._live
        if live is None:
            return False
        warmup = self.strategy.warmup
        return self._seen >= warmup if warmup else live.ready

    # ------------------------------------------------------------------------------ klines
    def on_kline(self, kline: KlineClosed) -> None:
        """Replaced per instance by the replay or the live variant (no mode test per kline)."""
        raise NotImplementedError

    def _on_replayed_kline(self, kline: KlineClosed) -> None:
        # the feed runs _REPLAY_STEP in place of this method: a change here is a change there
        cursor = self._cursor  # the cursor moves on every replayed kline (warm-up included): it is the position
        i = cursor.i = cursor.i + 1
        if i < self._first:  # warm-up, or halted (``_first`` is then past every index)
            return
        try:
            self._strategy_on_kline(kline)
        except Exception as exc:
            self._failed(kline, exc)
            return
        if self._pending:
            self._flush()

    def inline_step(self, handler: Callable[[Any], None], topic: Hashable | None) -> InlineStep | None:
        """The replay handler as source for the feed's fused loop (a Python call less per kline)."""
        if (handler != self._on_replayed_kline or topic != (self.symbol, self.timeframe)
                or type(self)._on_replayed_kline is not StrategyRunner._on_replayed_kline  # a subclass's own
                or source_digest(StrategyRunner._on_replayed_kline) != _REPLAY_STEP_MIRRORS):  # edited alone
            return None
        call = self._strategy_on_kline
        ignored = ignores_argument(call)
        return InlineStep(_REPLAY_STEP.format(kline="None" if ignored else "@k"),
                          {"runner": self, "cursor": self._cursor, "on_kline": call}, reads_kline=not ignored)

    def _on_live_kline(self, kline: KlineClosed) -> None:
        if self.halted or kline.open_time <= self._last_open:
            return  # halted, or a duplicate or old kline (after a reconnect): already had
        live = self._live
        if live is None:
            self.warm_up_live([kline])
            live = self._live
            if live is None:
                return
        else:
            self._last_open = kline.open_time
            try:
                live.append(kline.open, kline.high, kline.low, kline.close, kline.volume, kline.open_time)
            except Exception as exc:
                self._failed(kline, exc)
                return
            self._seen += 1
        if not self.live_ready:
            return
        try:
            self._strategy_on_kline(kline)
        except Exception as exc:
            self._failed(kline, exc)
            return
        if self._pending:
            self._flush()

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
        if symbol is not None and symbol != self.symbol:
            raise ValueError(self._foreign(symbol))
        pending = self._pending
        strategy = self.strategy
        if (action is _OPEN_LONG or action is _OPEN_SHORT) and not strategy.add_to_position and (
                ((strategy.position.size > 0) if action is _OPEN_LONG else (strategy.position.size < 0))
                or (pending and any(getattr(p, "action", None) is action for p in pending))):  # (_held, inlined)
            self.entries_ignored += 1
            if log.isEnabledFor(logging.DEBUG):  # a signal that stays true repeats this every kline
                log.debug("%s on %s: %s ignored, the position is already in that direction", self.strategy_id,
                          self.symbol, action._value_)
            return
        seq = self._seq = self._seq + 1
        replay = self._replay
        now = replay.time_ms if replay is not None else self._clock.now_ms()  # (a ReplayClock's now_ms, inlined)
        # new_order_intent(...), its stores written out (a call with 13 arguments less per order; the intent equals
        # the keyword-built one: tests/unit/test_runner_intents.py)
        e: Any = _IntentTwin()
        e.intent_id = f"{self._prefix}-{seq}"
        e.strategy_id = self.strategy_id
        e.symbol = self.symbol
        e.action = action
        e.quantity = quantity if quantity is None or isinstance(quantity, Decimal) else Decimal(repr(quantity))
        e.fraction = fraction
        e.stop_loss = stop_loss
        e.take_profit = take_profit
        e.limit_price = limit
        # close[-1], read without moving its window: ``float(strategy.close)``, the property and ``Series.__float__``
        # inlined where they are the base ones (``item``: the same float ``float(values[i])`` gives)
        if self._plain_close:
            close = strategy._base["close"]
            e.reference_price = close._values.item(close._cur.i) if type(close) is Series else float(close)
        else:
            e.reference_price = float(strategy.close)
        e.tag = tag
        e.ts_event = now
        e.ts_init = now
        e.__class__ = OrderIntent
        pending.append(e)

    def _foreign(self, symbol: str) -> str:
        return (f"{self.strategy_id} trades {self.symbol} only, not {symbol}: a strategy that trades several "
                "symbols sets multi_symbol = True and lists them in its config entry")

    def _collect_intent(self, intent_type: type, symbol: str | None = None, **fields: Any) -> None:
        """An intent other than buy/sell/close/reduce (a stop move, a target position), numbered like them."""
        if symbol is not None and symbol != self.symbol:
            raise ValueError(self._foreign(symbol))
        self._seq += 1
        now = self._clock.now_ms()
        self._pending.append(intent_type(intent_id=f"{self._prefix}-{self._seq}", strategy_id=self.strategy_id,
                                  symbol=self.symbol, reference_price=self.strategy.close[-1], ts_event=now,
                                  ts_init=now, **fields))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        send = self.send_intent or self._bus.publish
        for intent in pending:
            self.intents_emitted += 1
            send(intent)

    def continue_ids_after(self, seq: int) -> None:
        """Resume numbering intents after ``seq`` (from a journal): a client order id is never reused."""
        self._seq = max(self._seq, seq)

    def owns(self, client_order_id: str) -> bool:
        return client_order_id.startswith(self._own)

    # ------------------------------------------------------------------------------ events
    def _on_position(self, event: PositionChanged) -> None:
        if event.symbol == self.symbol:
            self.strategy.position = (
                Position(float(event.quantity), float(event.entry_price)) if event.quantity else FLAT
            )

    def _on_fill(self, event: OrderFilled) -> None:
        if event.symbol == self.symbol and event.client_order_id.startswith(self._own):
            hook = self.strategy.on_fill
            if getattr(hook, "__func__", None) is not _BASE_ON_FILL:  # the base hook does nothing: skip the guard
                self._guard(lambda: hook(event), "on_fill", event)
            if self._pending:
                self._flush()

    def hears_fills(self) -> bool:
        """Whether the strategy has an ``on_fill`` hook (the base one does nothing): then :meth:`_on_fill` needs
        the event; else :meth:`fill_without_event` does what it does (a backtest's direct delivery: backtest.direct)."""
        hook = self.strategy.on_fill
        try:  # getattr(hook, "__func__", None) is not _BASE_ON_FILL, without the call (asked on every fill)
            return hook.__func__ is not _BASE_ON_FILL  # type: ignore[attr-defined]
        except AttributeError:
            return True

    def fill_without_event(self, client_order_id: str) -> None:
        """:meth:`_on_fill` of a fill of this runner's symbol while the strategy has no ``on_fill`` hook."""
        if self._pending and client_order_id.startswith(self._own):
            self._flush()

    def position_of_symbol(self, quantity: Decimal, size: float, entry: float) -> None:
        """:meth:`_on_position` of this runner's symbol's position, ``size`` and ``entry`` being
        ``float(quantity)`` and the float of its entry price (the simulated exchange keeps both)."""
        self.strategy.position = Position(size, entry) if quantity else FLAT

    def _on_rejected(self, event: OrderRejected) -> None:
        if event.symbol == self.symbol and self.owns(event.client_order_id):
            self._guard(lambda: self.strategy.on_order_rejected(OrderRejection.of(event)), "on_order_rejected", event)

    def _on_denied(self, event: RiskDenied) -> None:
        if event.strategy_id == self.strategy_id and event.symbol == self.symbol:
            self._guard(lambda: self.strategy.on_order_rejected(OrderRejection.of(event)), "on_order_rejected", event)

    # ------------------------------------------------------------------------------ safety
    def _guard(self, call: Callable[[], Any], hook: str, event: Any = None) -> None:
        if self.halted:
            return
        try:
            call()
        except Exception as exc:
            self._failed(event if event is not None else hook, exc)

    def _failed(self, event: Any, exc: BaseException) -> None:
        error = StrategyError(self.strategy_id, event, exc)
        if self._fail_fast:
            raise error from exc
        self.halted = True
        self._first = _NEVER
        self._pending.clear()
        log.error("strategy halted: %s %s", error, error.where)
        now = self._clock.now_ms()
        self._bus.publish(StrategyHalted(strategy_id=self.strategy_id, error=f"{error} {error.where}", ts_event=now,
                                         ts_init=now))
