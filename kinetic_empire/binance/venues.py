"""Where the adapter connects: the venues it knows, the URLs it builds, and the weights it expects.

Only non-production hosts are accepted in this version: a production URL (``fapi.binance.com``,
``fstream.binance.com``, ...) is refused with a message saying why, before any request leaves.
The code paths for the local sandbox, Binance Demo Trading and the legacy testnet are the same;
only these URLs (and the keys) differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ..core.errors import ConfigError

SANDBOX = "sandbox"
DEMO = "binance-demo"
TESTNET = "binance-testnet"
CUSTOM = "custom"
VENUES = (SANDBOX, DEMO, TESTNET, CUSTOM)


@dataclass(frozen=True, slots=True)
class Venue:
    """A venue's name and base URLs. ``ws_url`` is the stream host; routes (/market, /private) are added."""

    name: str
    rest_url: str
    ws_url: str

    def __post_init__(self) -> None:
        refuse_production(self.rest_url, "rest_url")
        refuse_production(self.ws_url, "ws_url")

    def market_stream_url(self, streams: list[str]) -> str:
        """Combined market stream on the routed ``/market`` path (mandatory on Binance since 2026-04-23)."""
        return f"{self.ws_url.rstrip('/')}/market/stream?streams={'/'.join(streams)}"

    def user_stream_url(self, listen_key: str) -> str:
        return f"{self.ws_url.rstrip('/')}/private/ws?listenKey={quote(listen_key, safe='')}"


_NON_PRODUCTION = ("demo-fapi.binance.com", "demo-fstream.binance.com", "testnet.binancefuture.com",
                   "fstream.binancefuture.com", "stream.binancefuture.com")
_PRODUCTION_SUFFIXES = ("binance.com", "binance.us", "binance.me", "binance.info")


def is_production(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host in _NON_PRODUCTION:
        return False
    return any(host == s or host.endswith("." + s) for s in _PRODUCTION_SUFFIXES)


def refuse_production(url: str, what: str = "url") -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise ConfigError(f"live.{what}", f"{url!r} is not an http(s) or ws(s) URL")
    if is_production(url):
        raise ConfigError(
            f"live.{what}",
            f"{parts.hostname} is Binance production; this version trades only on the local sandbox, "
            "Binance Demo Trading (--venue binance-demo) or the futures testnet. Real-money trading is refused.",
        )


# Reference section 1.1: demo REST is demo-fapi; its streams are served by the testnet stream host.
PRESETS: dict[str, Venue] = {
    DEMO: Venue(DEMO, "https://demo-fapi.binance.com", "wss://fstream.binancefuture.com"),
    TESTNET: Venue(TESTNET, "https://testnet.binancefuture.com", "wss://fstream.binancefuture.com"),
}


def preset(name: str) -> Venue:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError("live.venue", f"no preset for {name!r}; one of {', '.join(PRESETS)}") from None


# Request IP weights (reference section 3) of the endpoints the engine calls, for pacing ahead of a call.
# Placements cost 0 IP weight (they count against the ORDERS limits instead).
WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/fapi/v1/ping"): 1,
    ("GET", "/fapi/v1/time"): 1,
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("POST", "/fapi/v1/order"): 0,
    ("POST", "/fapi/v1/algoOrder"): 0,
    ("PUT", "/fapi/v1/order"): 0,
    ("GET", "/fapi/v1/order"): 1,
    ("DELETE", "/fapi/v1/order"): 1,
    ("GET", "/fapi/v1/algoOrder"): 1,
    ("DELETE", "/fapi/v1/algoOrder"): 1,
    ("DELETE", "/fapi/v1/allOpenOrders"): 1,
    ("DELETE", "/fapi/v1/algoOpenOrders"): 1,
    ("POST", "/fapi/v1/batchOrders"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v1/income"): 30,
    ("GET", "/fapi/v2/account"): 5,
    ("GET", "/fapi/v2/balance"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v1/accountConfig"): 5,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("GET", "/fapi/v1/leverageBracket"): 1,
    ("GET", "/fapi/v1/commissionRate"): 20,
    ("POST", "/fapi/v1/leverage"): 1,
    ("POST", "/fapi/v1/marginType"): 1,
    ("POST", "/fapi/v1/listenKey"): 1,
    ("PUT", "/fapi/v1/listenKey"): 1,
    ("DELETE", "/fapi/v1/listenKey"): 1,
}
# One symbol or all of them: (with a symbol, without).
BY_SYMBOL: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", "/fapi/v1/openOrders"): (1, 40),
    ("GET", "/fapi/v1/openAlgoOrders"): (1, 40),
    ("GET", "/fapi/v1/premiumIndex"): (1, 10),
}
KLINE_PATHS = ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/indexPriceKlines",
               "/fapi/v1/continuousKlines", "/fapi/v1/premiumIndexKlines")


def kline_weight(limit: int) -> int:
    """Klines cost by ``limit`` (default 500): [1, 100) 1, [100, 500) 2, [500, 1000] 5, above 1000 10."""
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def weight_of(method: str, path: str, params: Mapping[str, Any] | None = None) -> int:
    """Expected IP weight of a request, for pacing before it leaves (the reply's header corrects it)."""
    params = params or {}
    if method == "GET" and path in KLINE_PATHS:
        try:
            return kline_weight(int(params.get("limit", 500)))
        except (TypeError, ValueError):
            return 10
    by_symbol = BY_SYMBOL.get((method, path))
    if by_symbol is not None:
        return by_symbol[0] if params.get("symbol") else by_symbol[1]
    return WEIGHTS.get((method, path), 1)
