"""Public market-data endpoints (reference 3.1), served from the replay up to the current update."""

from __future__ import annotations

from typing import Any

import numpy as np

from .endpoints import Ctx, Endpoint, by_symbol, ep
from .errors import ApiError, bad_symbol
from .fmt import fixed
from .market import INTERVALS, ReplayedKlines
from .publisher import funding_info


def _kline_weight(p: Any) -> int:
    limit = p.int("limit") or 500
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _symbol(ctx: Ctx, name: str = "symbol", required: bool = True) -> str | None:
    symbol = ctx.params.str(name, required)
    if symbol is not None and symbol not in ctx.venue.rules:
        raise bad_symbol()
    return symbol


def _series_list(ctx: Ctx, symbol: str | None) -> list[ReplayedKlines]:
    market = ctx.venue.market
    if symbol is None:
        return list(market.series.values())
    s = market.get(symbol)
    return [s] if s is not None else []


def _one_or_all(symbol: str | None, items: list[dict[str, Any]]) -> Any:
    if symbol is None:
        return items
    if not items:
        raise ApiError(-1121, "Invalid symbol.")
    return items[0]


def ping(ctx: Ctx) -> Any:
    return {}


def server_time(ctx: Ctx) -> Any:
    return {"serverTime": ctx.venue.wall_ms()}


def exchange_info(ctx: Ctx) -> Any:
    return ctx.venue.exchange_info_bytes()


def klines(ctx: Ctx, symbol_param: str = "symbol", premium: bool = False) -> Any:
    p = ctx.params
    symbol = _symbol(ctx, symbol_param)
    interval = p.req("interval")
    if interval not in INTERVALS:
        raise ApiError(-1120, "Invalid interval.")
    start, end = p.int("startTime"), p.int("endTime")
    limit = p.limit(500, 1500)
    if start is not None and end is not None and start > end:
        raise ApiError(-1023, "Start time is greater than end time.")
    s = ctx.venue.market.get(symbol or "")
    if s is None:
        return []
    rows = ctx.venue.market.klines(s, interval, start, end, limit)
    if premium:
        for r in rows:
            r[1:6] = ["0.00000000", "0.00000000", "0.00000000", "0.00000000", "0"]
    return rows


def ticker_24h(ctx: Ctx) -> Any:
    symbol = _symbol(ctx, required=False)
    now = ctx.venue.market_ms()
    items = [ctx.venue.market.ticker_24h(s, now) for s in _series_list(ctx, symbol)]
    return _one_or_all(symbol, items)


def ticker_price(ctx: Ctx) -> Any:
    symbol = _symbol(ctx, required=False)
    now = ctx.venue.market_ms()
    items = [{"symbol": s.symbol, "price": s.price(s.last), "time": now} for s in _series_list(ctx, symbol)]
    return _one_or_all(symbol, items)


def book_ticker(ctx: Ctx) -> Any:
    symbol = _symbol(ctx, required=False)
    now = ctx.venue.market_ms()
    items = []
    for s in _series_list(ctx, symbol):
        b, bq, a, aq = ctx.venue.book.top(s)
        items.append({"symbol": s.symbol, "bidPrice": b, "bidQty": bq, "askPrice": a, "askQty": aq, "time": now,
                      "lastUpdateId": s.updates})
    return _one_or_all(symbol, items)


def premium_index(ctx: Ctx) -> Any:
    symbol = _symbol(ctx, required=False)
    now = ctx.venue.market_ms()
    cfg = ctx.venue.config.exchange
    items = []
    for s in _series_list(ctx, symbol):
        rate, nxt = funding_info(cfg, s.symbol, now)
        p = fixed(s.last, 8)
        items.append({"symbol": s.symbol, "markPrice": p, "indexPrice": p, "estimatedSettlePrice": p,
                      "lastFundingRate": fixed(rate, 8), "interestRate": "0.00010000", "nextFundingTime": nxt,
                      "time": now})
    return _one_or_all(symbol, items)


def funding_rate(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = _symbol(ctx, required=False)
    start, end = p.int("startTime"), p.int("endTime")
    limit = p.limit(100, 1000)
    cfg = ctx.venue.config.exchange
    interval = cfg.funding_interval_ms
    now = ctx.venue.market_ms()
    out: list[dict[str, Any]] = []
    for s in _series_list(ctx, symbol):
        if s.visible() == 0:
            continue
        f = s.frame
        first = int(f.open_time[0])
        lo = max(first, start if start is not None else first)
        hi = min(now, end if end is not None else now)
        t0 = -(-lo // interval) * interval
        times = np.arange(t0, hi + 1, interval, dtype=np.int64)
        series_rates = cfg.funding_rates.get(s.symbol)
        for t in times.tolist():
            i = int(np.searchsorted(f.open_time, t))
            price = float(f.open[i]) if i < len(f) and int(f.open_time[i]) == t else float(f.close[max(0, i - 1)])
            rate = series_rates.get(t, cfg.funding_rate) if series_rates else cfg.funding_rate
            out.append({"symbol": s.symbol, "fundingRate": fixed(rate, 8), "fundingTime": t,
                        "markPrice": fixed(price, 8), "rateType": "Regular"})
    out.sort(key=lambda r: (r["fundingTime"], r["symbol"]))
    return out[:limit] if start is not None else out[-limit:]


def depth(ctx: Ctx) -> Any:
    p = ctx.params
    symbol = _symbol(ctx)
    limit = p.int("limit") or 500
    if limit not in (5, 10, 20, 50, 100, 500, 1000):
        raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
    s = ctx.venue.market.get(symbol or "")
    now = ctx.venue.market_ms()
    if s is None or not s.last:
        return {"lastUpdateId": 0, "E": now, "T": now, "bids": [], "asks": []}
    bids, asks = ctx.venue.book.side(s, False, limit), ctx.venue.book.side(s, True, limit)
    return {"lastUpdateId": s.updates, "E": now, "T": now, "bids": bids, "asks": asks}


def funding_info_list(ctx: Ctx) -> Any:
    return []


def _depth_weight(p: Any) -> int:
    limit = p.int("limit") or 500
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def endpoints() -> list[Endpoint]:
    kl = "symbol interval startTime endTime limit"
    return [
        ep("GET", "/fapi/v1/ping", ping),
        ep("GET", "/fapi/v1/time", server_time),
        ep("GET", "/fapi/v1/exchangeInfo", exchange_info),
        ep("GET", "/fapi/v1/klines", klines, weight=_kline_weight, params=kl),
        ep("GET", "/fapi/v1/markPriceKlines", klines, weight=_kline_weight, params=kl),
        ep("GET", "/fapi/v1/indexPriceKlines", lambda c: klines(c, "pair"), weight=_kline_weight,
           params="pair interval startTime endTime limit"),
        ep("GET", "/fapi/v1/continuousKlines", lambda c: klines(c, "pair"), weight=_kline_weight,
           params="pair contractType interval startTime endTime limit"),
        ep("GET", "/fapi/v1/premiumIndexKlines", lambda c: klines(c, premium=True), weight=_kline_weight, params=kl),
        ep("GET", "/fapi/v1/ticker/24hr", ticker_24h, weight=by_symbol(1, 40), params="symbol"),
        ep("GET", "/fapi/v1/ticker/price", ticker_price, weight=by_symbol(1, 2), params="symbol"),
        ep("GET", "/fapi/v2/ticker/price", ticker_price, weight=by_symbol(1, 2), params="symbol"),
        ep("GET", "/fapi/v1/ticker/bookTicker", book_ticker, weight=by_symbol(2, 5), params="symbol"),
        ep("GET", "/fapi/v1/premiumIndex", premium_index, weight=by_symbol(1, 10), params="symbol"),
        ep("GET", "/fapi/v1/fundingRate", funding_rate, weight=1, params="symbol startTime endTime limit"),
        ep("GET", "/fapi/v1/fundingInfo", funding_info_list, weight=0),
        ep("GET", "/fapi/v1/depth", depth, weight=_depth_weight, params="symbol limit"),
    ]
