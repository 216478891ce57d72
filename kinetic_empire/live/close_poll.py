"""Busy-polling the engine's event loop around kline closes, so the core is awake when the closing klines arrive.

On a virtual machine, a core that idles is handed back to the host; the message that should wake it then waits
until the host runs that core again. Measured on a 2-vCPU Firecracker microVM (``bench_live.py --gap-ms 100``,
the engine idle 100 ms before each close, while the host was busy): kline-to-order p99 of 12.8-27.8 ms, the slow
samples' CPU time 1-1.5 ms, the rest spent waiting to be run; polling through the wait, 2.6-5.1 ms. A live kline
comes after most of a minute idle.

While a window is open the loop never blocks: a task yields with ``sleep(0)``, so every turn of the loop polls the
sockets without waiting, and the task leaves when the window closes. The windows are the GC pacer's quiet ones,
from ``before`` ms ahead of each minute boundary of the timer's clock (the venue's, to within its offset) to
``after`` ms past it: about 900 ms of one core a minute by default. It keeps the core awake, not its caches warm:
code not run for a while still runs slower (``bench_live.py --cold-probe``). So inside a window the engine also
rehearses a kline's path every ``rehearse_every_s`` (:func:`kline_rehearsal`: the journal's newest row read, an intent
encoded, the risk decision of a likely next intent made and dropped, an order's query signed): only reads, nothing
sent or kept. Off unless ``live.close_poll`` is set. :meth:`hold` opens a window now, for a while (the benchmark's
stepped sandbox closes klines off the boundaries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.clock import Clock
from ..core.enums import IntentAction
from ..core.events import OrderIntent
from .gcpace import boundary_window_left_s
from .journal_codec import payload

if TYPE_CHECKING:
    from ..binance.rest import BinanceRest
    from ..portfolio import Portfolio
    from ..risk import RiskManager
    from ..strategy.runner import StrategyRunner
    from .journal import Journal

log = logging.getLogger(__name__)

_MINUTE_MS = 60_000


@dataclass
class ClosePoll:
    """:meth:`run` is the engine's task; ``window_ms`` None: no minute windows, only :meth:`hold`'s."""

    timer: Clock
    window_ms: tuple[int, int] | None = None
    """(before, after) each minute boundary, ms."""
    windows: int = 0
    """Windows polled through."""
    turns: int = 0
    """Loop turns spent polling."""
    rehearse: Callable[[], None] | None = None
    """Called every ``rehearse_every_s`` while a window is open; dropped at its first exception."""
    rehearse_every_s: float = 0.001
    rehearsals: int = 0
    _held_until: float = 0.0  # timer.monotonic() when a held window closes
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.window_ms is not None:
            before, after = self.window_ms
            if before < 0 or after < 0 or before + after >= _MINUTE_MS:
                raise ValueError(f"close_poll window {self.window_ms}: two non-negative ms spans, under a minute")

    def hold(self, seconds: float) -> None:
        """Poll from now for ``seconds`` (longer if a window is open anyway)."""
        self._held_until = max(self._held_until, self.timer.monotonic() + seconds)
        self._wake.set()

    def open_for_s(self) -> float:
        """Seconds the window open now has left (0: none is open)."""
        held = self._held_until - self.timer.monotonic()
        boundary = 0.0 if self.window_ms is None else boundary_window_left_s(self.timer.now_ms(), self.window_ms)
        return max(held, boundary, 0.0)

    def next_in_s(self) -> float | None:
        """Seconds until the next minute window opens (None: no minute windows)."""
        if self.window_ms is None:
            return None
        before, after = self.window_ms
        phase = self.timer.now_ms() % _MINUTE_MS
        return max(0.0, (_MINUTE_MS - before - phase) / 1000) if phase >= after else (after - phase) / 1000

    async def run(self) -> None:
        """Poll through each window, and sleep (the timer's sleep, or until :meth:`hold`) between them."""
        while True:
            if self.open_for_s() <= 0:
                await self._idle(self.next_in_s())
                continue
            self.windows += 1
            due = 0.0
            while self.open_for_s() > 0:
                now = self.timer.monotonic()
                if self.rehearse is not None and now >= due:
                    due = now + self.rehearse_every_s
                    self._rehearse()
                await asyncio.sleep(0)  # one loop turn: the sockets polled, nothing waited for
                self.turns += 1

    def _rehearse(self) -> None:
        assert self.rehearse is not None
        try:
            self.rehearse()
        except Exception as exc:  # a rehearsal must never cost a run more than its warmth
            log.warning("close poll: rehearsal dropped after %s: %s", type(exc).__name__, exc)
            self.rehearse = None
            return
        self.rehearsals += 1

    async def _idle(self, seconds: float | None) -> None:
        """Until the next window or a :meth:`hold`, whichever comes first."""
        self._wake.clear()
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
        if seconds is not None:
            waits.append(asyncio.ensure_future(self.timer.sleep(seconds)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w


def kline_rehearsal(journal: Journal, risk: RiskManager, rest: BinanceRest, portfolio: Portfolio,
                    runners: Sequence[StrategyRunner], clock: Clock) -> Callable[[], None] | None:
    """One rehearsal of a kline's path for the first runner's symbol: what a close touches before its first order
    leaves, with nothing sent, written or kept (the intent: the flip of the position held, or a long entry from
    flat). None without runners."""
    if not runners:
        return None
    symbol, strategy_id = runners[0].symbol, runners[0].strategy_id

    def rehearse() -> None:
        now = clock.now_ms()
        held = portfolio.position(symbol).quantity
        intent = OrderIntent(intent_id="rehearsal", strategy_id=strategy_id, symbol=symbol,
                             action=IntentAction.OPEN_SHORT if held > 0 else IntentAction.OPEN_LONG,
                             reference_price=portfolio.last_price(symbol), ts_event=now, ts_init=now)
        journal.touch()
        payload(intent)
        risk.rehearse(intent)
        rest.rehearse_signing()

    return rehearse
