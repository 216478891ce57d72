"""A kline with its mark-price kline: the simulated exchange's margin maths on the mark, as Binance does.

Binance computes unrealised PnL, margin, funding and liquidation from the mark price, and fills orders at
traded prices. When a backtest replays mark-price klines, :func:`on_marked_kline` replaces the exchange's
plain kline handler for that symbol:

- funding settled at the kline's open uses the mark's open;
- orders (market, stops, take-profits, limits) trigger and fill on the traded kline, unchanged;
- liquidation is judged on the mark kline's range instead of the traded range: the traded range cannot
  liquidate (a last-price wick that the mark did not follow leaves the position open), and a mark range
  that reaches the liquidation price closes the position there (at the mark's open when it opened
  beyond). It is checked after the kline's orders, so a take-profit filled in the same kline comes first;
- unrealised PnL, margin figures and the liquidation prices solved afterwards use the mark's close;
- with several cross positions, the mark's range is what is held against the book's cross-margin band
  (:mod:`.cross_margin`): the band is drawn around the mark.

A kline without its mark (a gap in the mark series: pass NaN) is handled as without mark data.
"""

from __future__ import annotations

from ..core.events import KlineClosed
from .book import INF
from .simulated import SimulatedExchange


def on_marked_kline(ex: SimulatedExchange, k: KlineClosed, mo: float, mh: float, ml: float, mc: float) -> None:
    book = ex._books[k.symbol]
    if mo != mo:  # NaN: no mark for this kline
        book.mark = 0.0
        ex.on_kline(k)
        return
    book.mark = mo
    low, high = book.watch_low, book.watch_high
    book.watch_low, book.watch_high = -INF, INF  # the traded range does not liquidate: the mark's does
    ex.on_kline(k)
    if book.watch_low == -INF and book.watch_high == INF:  # nothing re-solved the levels meanwhile
        book.watch_low, book.watch_high = low, high
    book.mark = mc
    if book.pos.qty_f != 0.0 and (ml <= book.watch_low or mh >= book.watch_high):
        if ex._cross_positions > 1:
            ex._band_reached()
        ex._liquidate_if_reached(book, k.open_time, mo, mh, ml)
    ex._follow_price(book, mc)


__all__ = ["on_marked_kline"]
