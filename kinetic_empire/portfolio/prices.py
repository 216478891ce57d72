"""The latest close of one symbol's klines, kept for the portfolio's marks, as a store the replay runs inline.

A multi-symbol replay that builds no kline per event (``backtest.lockstep_lazy``) would otherwise have to bring
every symbol's one-slot latest-kline store up to date, with a kline built for each, before every call out
(an order, a fill): ten symbols, ten klines each time, more than the rest of the replay. The portfolio reads
only the close, so it keeps the close: the handler stores one float, and as an inline step (``InlineStep``)
the replay's loop stores it with no call and no kline.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from ..core.bus import InlineStep
from ..core.events import KlineClosed

# ``LatestClose.on_kline`` as source (the two must do the same: tests/unit/test_latest_close.py runs both)
_STEP = "$store.close = close\n"


class LatestClose:
    """The close of the latest kline delivered to :meth:`on_kline` (0.0 before the first)."""

    __slots__ = ("close",)

    def __init__(self) -> None:
        self.close = 0.0

    def on_kline(self, k: KlineClosed) -> None:
        self.close = k.close

    def inline_step(self, handler: Callable[[Any], None], topic: Hashable | None) -> InlineStep | None:
        """:meth:`on_kline` as source for the replay's fused loop: it reads no kline, only its close."""
        if handler != self.on_kline or type(self).on_kline is not LatestClose.on_kline:
            return None
        return InlineStep(_STEP, {"store": self}, reads_kline=False)
