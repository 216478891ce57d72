"""Price charts for the operator: the klines the run holds and its fills as markers (``GET /api/klines``).

The klines are the feed's own (:meth:`~kinetic_empire.binance.market.KlineFeed.recent`: the warm-up history
and every kline published since, plus the one still in progress), read on the engine's loop between two bus
deliveries; nothing is fetched from the venue. Fills are kept here, per symbol and bounded, as the gateway
sees them on the bus, each tagged entry or exit so a chart can draw them differently.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..core.events import OrderFilled
from ..core.timeframes import TIMEFRAME_MS
from .encode import event_dict
from .schemas import ApiError

if TYPE_CHECKING:
    from ..live.app import LiveEngine

MAX_LIMIT = 1500  # as Binance's /fapi/v1/klines
DEFAULT_LIMIT = 500


class FillMarks:
    """The run's fills per symbol (the last ``keep`` of each), JSON-ready, with ``exit`` true for a fill that
    reduced a position (reduce-only, a protective close, or any realised PnL)."""

    def __init__(self, keep: int = 2000) -> None:
        self.keep = keep
        self._by_symbol: dict[str, deque[dict[str, Any]]] = {}

    def on_fill(self, fill: OrderFilled, *, close_position: bool = False) -> dict[str, Any]:
        """Keep ``fill`` and return its JSON (the stream's ``fill`` message carries the same)."""
        out = event_dict(fill)
        out["exit"] = bool(fill.reduce_only or close_position or fill.realized_pnl != 0)
        marks = self._by_symbol.get(fill.symbol)
        if marks is None:
            marks = self._by_symbol[fill.symbol] = deque(maxlen=self.keep)
        marks.append(out)
        return out

    def of(self, symbol: str, since_ms: int) -> list[dict[str, Any]]:
        """The fills of ``symbol`` at or after ``since_ms``, oldest first."""
        return [f for f in self._by_symbol.get(symbol, ()) if f["ts_event"] >= since_ms]


def chart_timeframe(engine: LiveEngine, symbol: str) -> str:
    """The timeframe to chart by default: the shortest one a strategy trades ``symbol`` on (else the feed's)."""
    traded = [r.timeframe for r in engine.runners if r.symbol == symbol and r.timeframe in TIMEFRAME_MS]
    followed = [tf for s, tf in engine.feed.topics if s == symbol]
    choices = traded or followed
    if not choices:
        raise ApiError(404, f"no klines of {symbol} in this run", "symbol")
    return min(choices, key=lambda tf: TIMEFRAME_MS[tf])


def klines_answer(engine: LiveEngine, marks: FillMarks, symbol: str, timeframe: str | None,
                  limit: int) -> dict[str, Any]:
    """The ``/api/klines`` object (shape in the README): closed klines oldest first, the one in progress, and
    the symbol's fills from the first kline's open on."""
    if not engine.started or getattr(engine, "feed", None) is None:
        raise ApiError(503, "the engine is not trading yet: no klines", None)
    tf = timeframe or chart_timeframe(engine, symbol)
    followed = sorted({t for s, t in engine.feed.topics if s == symbol}, key=lambda t: TIMEFRAME_MS.get(t, 0))
    if tf not in followed:
        raise ApiError(404, f"timeframe {tf!r}: this run follows {symbol} on {', '.join(followed) or 'nothing'}",
                       "timeframe")
    closed, forming = engine.feed.recent((symbol, tf), limit)
    since = closed[0].open_time if closed else forming.open_time if forming is not None else 0
    return {
        "symbol": symbol,
        "timeframe": tf,
        "timeframes": followed,
        "klines": [event_dict(k) for k in closed],
        "in_progress": event_dict(forming) if forming is not None else None,
        "fills": marks.of(symbol, since),
    }
