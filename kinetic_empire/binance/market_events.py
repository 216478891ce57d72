"""Mark-price and 24 h ticker stream payloads (reference section 8.2) into bus events.

``<symbol>@markPrice@1s`` (``markPriceUpdate``) and ``<symbol>@ticker`` (``24hrTicker``) travel on the
``/market`` route, so they share the kline feed's connection. Decimal strings become floats: these are
market data for strategies, never amounts sent to the exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.events import MarkPriceUpdated, TickerUpdated
from .wire import WireError


def mark_price_stream(symbol: str) -> str:
    return f"{symbol.lower()}@markPrice@1s"


def ticker_stream(symbol: str) -> str:
    return f"{symbol.lower()}@ticker"


def market_streams(marks: Iterable[str], tickers: Iterable[str]) -> list[str]:
    """Stream names for the symbols whose mark price / ticker a strategy asked for."""
    return [*(mark_price_stream(s) for s in sorted(set(marks))), *(ticker_stream(s) for s in sorted(set(tickers)))]


def mark_price_from_stream(data: Mapping[str, Any], ts_init: int) -> MarkPriceUpdated:
    try:
        return MarkPriceUpdated(
            symbol=str(data["s"]),
            mark_price=float(data["p"]),
            index_price=float(data.get("i") or 0.0),
            funding_rate=float(data["r"]) if data.get("r") not in (None, "") else float("nan"),
            next_funding_time=int(data.get("T") or 0),
            ts_event=int(data["E"]),
            ts_init=ts_init,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"malformed markPriceUpdate ({type(exc).__name__}: {exc}): {dict(data)!r:.160}") from None


def ticker_from_stream(data: Mapping[str, Any], ts_init: int) -> TickerUpdated:
    try:
        return TickerUpdated(
            symbol=str(data["s"]),
            last_price=float(data["c"]),
            open_price=float(data["o"]),
            high_price=float(data["h"]),
            low_price=float(data["l"]),
            volume=float(data["v"]),
            quote_volume=float(data["q"]),
            price_change_percent=float(data["P"]),
            ts_event=int(data["E"]),
            ts_init=ts_init,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"malformed 24hrTicker ({type(exc).__name__}: {exc}): {dict(data)!r:.160}") from None


PARSERS: dict[str, Callable[[Mapping[str, Any], int], MarkPriceUpdated | TickerUpdated]] = {
    "markPriceUpdate": mark_price_from_stream, "24hrTicker": ticker_from_stream}
