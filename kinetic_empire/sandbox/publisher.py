"""Market stream payloads built from replay updates: kline, markPrice, tickers, bookTicker, aggTrade,
trade, and the book depth streams (``@depth<N>`` snapshots and ``@depth`` diffs).

A payload is built only when some connection subscribes to its stream, and once per update however
many connections read it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from ..exchange.config import ExchangeConfig
from .fmt import fixed
from .market import INTERVALS, MarketData, ReplayedKlines, aggregate, bucket_end, bucket_start
from .orderbook import OrderBook, Quote
from .replay import Update
from .streams import StreamHub


def funding_info(cfg: ExchangeConfig, symbol: str, now: int) -> tuple[Decimal, int]:
    """(rate applied at the next settlement, next settlement time) from the exchange's funding setup."""
    interval = cfg.funding_interval_ms
    nxt = (now // interval + 1) * interval
    series = cfg.funding_rates.get(symbol)
    rate = series.get(nxt, cfg.funding_rate) if series else cfg.funding_rate
    return rate, nxt


class MarketPublisher:
    def __init__(self, hub: StreamHub, market: MarketData, cfg: ExchangeConfig, book: OrderBook | None = None) -> None:
        self.hub = hub
        self.market = market
        self.cfg = cfg
        self.book = book or OrderBook()
        self._quotes: dict[str, Quote] = {}  # each symbol's book at the previous price update (for @depth diffs)

    def publish(self, updates: list[Update]) -> None:
        hub = self.hub
        if not hub.subs:
            for u in updates:  # keep the previous book, so the first @depth diff after a subscription is one
                if u.segment is not None:
                    self._quotes[u.series.symbol] = self.book.quote(u.series)
            return
        marks: list[dict[str, Any]] = []
        tickers: list[dict[str, Any]] = []
        minis: list[dict[str, Any]] = []
        want_marks = hub.has("!markPrice@arr") or hub.has("!markPrice@arr@1s")
        want_tickers = hub.has("!ticker@arr")
        want_minis = hub.has("!miniTicker@arr")
        for u in updates:
            s = u.series
            sym = s.symbol.lower()
            for interval in INTERVALS:
                name = f"{sym}@kline_{interval}"
                if name in hub.subs:
                    event = self.kline_event(u, interval)
                    if event is not None:
                        hub.publish(name, event)
            if u.segment is None:
                continue
            ts = u.ts
            m1, m3 = f"{sym}@markPrice@1s", f"{sym}@markPrice"
            if want_marks or m1 in hub.subs or m3 in hub.subs:
                mark = self.mark_event(s, ts)
                hub.publish(m1, mark)
                hub.publish(m3, mark)
                marks.append(mark)
            if want_tickers or f"{sym}@ticker" in hub.subs:
                t = self.ticker_event(s, ts)
                hub.publish(f"{sym}@ticker", t)
                tickers.append(t)
            if want_minis or f"{sym}@miniTicker" in hub.subs:
                mt = self.mini_event(s, ts)
                hub.publish(f"{sym}@miniTicker", mt)
                minis.append(mt)
            if f"{sym}@bookTicker" in hub.subs or "!bookTicker" in hub.subs:
                b = self.book_event(s, ts)
                hub.publish(f"{sym}@bookTicker", b)
                hub.publish("!bookTicker", b)
            if f"{sym}@aggTrade" in hub.subs:
                hub.publish(f"{sym}@aggTrade", self.agg_event(u))
            if f"{sym}@trade" in hub.subs:
                hub.publish(f"{sym}@trade", self.trade_event(u))
            self._publish_depth(s, ts)
        if marks:
            hub.publish("!markPrice@arr", marks)
            hub.publish("!markPrice@arr@1s", marks)
        if tickers:
            hub.publish("!ticker@arr", tickers)
        if minis:
            hub.publish("!miniTicker@arr", minis)

    # ------------------------------------------------------------------------------------ payloads
    def kline_event(self, u: Update, interval: str) -> dict[str, Any] | None:
        s = u.series
        n = s.visible()
        if n == 0:
            return None
        last_open = int(s.partial[0]) if s.partial is not None else int(s.frame.open_time[n - 1])
        start = bucket_start(last_open, interval)
        if interval == s.interval:
            i0 = n - 1
        else:
            i0 = int(np.searchsorted(s.frame.open_time, start))
        t, o, h, lo, c, v, q, cnt = aggregate(s.arrays(i0, n), interval)
        if len(t) == 0:
            return None
        end = bucket_end(start, interval)
        closed = u.closed and last_open + s.interval_ms - 1 >= end
        k = self.market.updates_per_kline
        in_play = s.partial is not None
        trades = (int(cnt[-1]) - (1 if in_play else 0)) * k + (s.played if in_play else 0)
        vol, quote = float(v[-1]), float(q[-1])
        return {
            "e": "kline",
            "E": u.ts,
            "s": s.symbol,
            "k": {
                "t": int(t[-1]),
                "T": end,
                "s": s.symbol,
                "i": interval,
                "f": max(0, s.updates - trades),
                "L": max(0, s.updates - 1),
                "o": s.price(o[-1]),
                "c": s.price(c[-1]),
                "h": s.price(h[-1]),
                "l": s.price(lo[-1]),
                "v": s.qty(vol),
                "n": trades,
                "x": bool(closed),
                "q": fixed(quote, 4),
                "V": s.qty(vol / 2),
                "Q": fixed(quote / 2, 4),
                "B": "0",
            },
        }

    def mark_event(self, s: ReplayedKlines, ts: int) -> dict[str, Any]:
        rate, nxt = funding_info(self.cfg, s.symbol, ts)
        p = fixed(s.last, 8)
        return {"e": "markPriceUpdate", "E": ts, "s": s.symbol, "p": p, "ap": p, "i": p, "P": p,
                "r": fixed(rate, 8), "T": nxt}

    def ticker_event(self, s: ReplayedKlines, ts: int) -> dict[str, Any]:
        t = self.market.ticker_24h(s, ts)
        return {
            "e": "24hrTicker", "E": ts, "s": s.symbol, "p": t["priceChange"], "P": t["priceChangePercent"],
            "w": t["weightedAvgPrice"], "c": t["lastPrice"], "Q": t["lastQty"], "o": t["openPrice"],
            "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"], "O": t["openTime"],
            "C": t["closeTime"], "F": t["firstId"], "L": t["lastId"], "n": t["count"],
        }

    def mini_event(self, s: ReplayedKlines, ts: int) -> dict[str, Any]:
        o, h, lo, v, q, _first, _count = self.market.window_24h(s, ts)
        return {"e": "24hrMiniTicker", "E": ts, "s": s.symbol, "c": s.price(s.last), "o": s.price(o),
                "h": s.price(h), "l": s.price(lo), "v": s.qty(v), "q": fixed(q, 2)}

    def book_event(self, s: ReplayedKlines, ts: int) -> dict[str, Any]:
        b, bq, a, aq = self.book.top(s)
        return {"e": "bookTicker", "u": s.updates, "E": ts, "T": ts, "s": s.symbol, "b": b, "B": bq, "a": a,
                "A": aq}

    def _publish_depth(self, s: ReplayedKlines, ts: int) -> None:
        """``@depth<N>``: the top N levels each update; ``@depth``: the levels that changed since the previous
        price update (quantity "0" for a level that left), chained by ``pu`` = the previous update's ``u``, so
        a client that took a REST snapshot at any update can follow."""
        hub = self.hub
        sym = s.symbol.lower()
        q = self.book.quote(s)
        prev = self._quotes.get(s.symbol)
        self._quotes[s.symbol] = q
        snaps = [(n, name) for n in (5, 10, 20) for name in (f"{sym}@depth{n}", f"{sym}@depth{n}@100ms",
                                                             f"{sym}@depth{n}@250ms", f"{sym}@depth{n}@500ms")
                 if name in hub.subs]
        diffs = [name for name in (f"{sym}@depth", f"{sym}@depth@100ms", f"{sym}@depth@250ms", f"{sym}@depth@500ms")
                 if name in hub.subs]
        if not snaps and not diffs:
            return
        bids, asks = self.book.side(s, False, DIFF_LEVELS, q), self.book.side(s, True, DIFF_LEVELS, q)
        for n, name in snaps:
            hub.publish(name, self.depth_event(s, ts, bids[:n], asks[:n]))
        if diffs:
            if prev is not None:
                bids = _changed(self.book.side(s, False, DIFF_LEVELS, prev), bids)
                asks = _changed(self.book.side(s, True, DIFF_LEVELS, prev), asks)
            event = self.depth_event(s, ts, bids, asks)
            for name in diffs:
                hub.publish(name, event)

    def depth_event(self, s: ReplayedKlines, ts: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
        u = s.updates  # one book update per price update: U = u, pu = u - 1, as REST depth's lastUpdateId
        return {"e": "depthUpdate", "E": ts, "T": ts, "s": s.symbol, "U": u, "u": u, "pu": u - 1, "b": bids,
                "a": asks}

    def trade_event(self, u: Update) -> dict[str, Any]:
        s = u.series
        tid = s.updates - 1
        return {"e": "trade", "E": u.ts, "T": u.ts, "s": s.symbol, "t": tid, "p": s.price(u.price),
                "q": s.qty(self.market.last_qty(s)), "X": "MARKET", "m": u.price < u.prev}

    def agg_event(self, u: Update) -> dict[str, Any]:
        s = u.series
        qty = s.qty(self.market.last_qty(s))
        tid = s.updates - 1
        return {"e": "aggTrade", "E": u.ts, "a": tid, "s": s.symbol, "p": s.price(u.price), "q": qty, "nq": qty,
                "f": tid, "l": tid, "T": u.ts, "m": u.price < u.prev}


DIFF_LEVELS = 1000  # levels per side a @depth diff stream tracks: as many as the largest REST snapshot


def _changed(old: list[list[str]], new: list[list[str]]) -> list[list[str]]:
    """Levels of ``new`` that differ from ``old``, plus ``old`` prices now absent with quantity "0"."""
    before = {p: q for p, q in old}
    now = {p: q for p, q in new}
    out = [[p, q] for p, q in new if before.get(p) != q]
    out += [[p, "0"] for p in before if p not in now]
    return out
