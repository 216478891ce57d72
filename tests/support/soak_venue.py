"""The soak's own view of the venue: a small blocking REST client, and one consistent snapshot of an account.

Why not the engine's client: the soak watches the engine from outside, in a thread, while it is being
killed; it must not share code paths whose bugs it is there to find. Requests leave from a second loopback
address (127.0.0.2 by default), so the soak's polling is charged to its own request-weight budget and never
pushes the engine into 429s it did not earn; injected faults (latency, spurious 429s) still reach it, and a
refused poll is simply skipped.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kinetic_empire.binance.signing import signed_query

ALGO_ORDER_IDS = 8_000_000_001  # orders placed by a triggered conditional order are numbered from here
LIVE = ("NEW", "PARTIALLY_FILLED")


class VenueBusy(Exception):
    """The venue refused or failed a soak request (429/418/5xx, timeout): skip this poll."""


class VenueClient:
    """Signed GET/DELETE and ``/sandbox-admin`` calls to one sandbox, from ``source`` (a loopback address)."""

    def __init__(self, rest_url: str, api_key: str, api_secret: str, *, source: str = "127.0.0.2",
                 timeout_s: float = 10.0) -> None:
        u = urllib.parse.urlsplit(rest_url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.key, self.secret = api_key, api_secret
        self.source = source
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, query: str = "", body: bytes | None = None,
              headers: dict[str, str] | None = None, source: str | None = None) -> tuple[int, Any]:
        src = self.source if source is None else source
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s,
                                          source_address=(src, 0) if src else None)
        try:
            conn.request(method, path + ("?" + query if query else ""), body=body, headers=headers or {})
            r = conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException) as exc:
            raise VenueBusy(f"{method} {path}: {exc}") from None
        finally:
            conn.close()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            raise VenueBusy(f"{method} {path}: HTTP {r.status}, not JSON") from None

    def signed(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        query = signed_query(params or {}, self.secret, int(time.time() * 1000), 10_000)
        status, data = self._call(method, path, query, headers={"X-MBX-APIKEY": self.key})
        if status in (408, 418, 429) or status >= 500:
            raise VenueBusy(f"{method} {path}: HTTP {status} {data}")
        if status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {status} {data}")
        return data

    def public(self, path: str, params: dict[str, Any]) -> Any:
        status, data = self._call("GET", path, urllib.parse.urlencode(params))
        if status != 200:
            raise VenueBusy(f"GET {path}: HTTP {status} {data}")
        return data

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """``/sandbox-admin/<path>``: GET ``status``, POST anything else (from the main loopback address)."""
        method = "GET" if path == "status" else "POST"
        data = None if body is None and method == "GET" else json.dumps(body or {}).encode()
        status, out = self._call(method, "/sandbox-admin/" + path, body=data,
                                 headers={"Content-Type": "application/json"}, source="")
        if status != 200:
            raise RuntimeError(f"sandbox-admin {path}: HTTP {status} {out}")
        return out

    def paged(self, path: str, symbol: str, cursor: str, key: str) -> list[dict[str, Any]]:
        """Every row of a history endpoint (allOrders, allAlgoOrders, userTrades), oldest first."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"symbol": symbol, "limit": 1000, cursor: 0}
        while True:
            page = self.signed("GET", path, params)
            page = page.get("orders", page) if isinstance(page, dict) else page
            new = [x for x in page if not out or x[key] > out[-1][key]]
            out += new
            if len(page) < 1000 or not new:
                return out
            params[cursor] = out[-1][key] + 1


@dataclass
class VenueView:
    """What the venue says about one account at one moment (``taken``: monotonic seconds)."""

    taken: float
    orders: list[dict[str, Any]] = field(default_factory=list)  # our plain orders (not triggered ones)
    algos: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, Decimal] = field(default_factory=dict)
    wallet: Decimal = Decimal(0)

    @classmethod
    def take(cls, client: VenueClient, symbols: tuple[str, ...]) -> VenueView:
        view = cls(time.monotonic())
        for sym in symbols:
            view.orders += [o for o in client.paged("/fapi/v1/allOrders", sym, "orderId", "orderId")
                            if o["orderId"] < ALGO_ORDER_IDS]
            view.algos += client.paged("/fapi/v1/allAlgoOrders", sym, "algoId", "algoId")
            view.trades += client.paged("/fapi/v1/userTrades", sym, "fromId", "id")
            risk = client.signed("GET", "/fapi/v2/positionRisk", {"symbol": sym})
            view.positions[sym] = sum((Decimal(r["positionAmt"]) for r in risk), Decimal(0))
        acct = client.signed("GET", "/fapi/v2/account")
        view.wallet = Decimal(next(a["walletBalance"] for a in acct["assets"] if a["asset"] == "USDT"))
        return view

    def live_client_ids(self) -> set[str]:
        return ({o["clientOrderId"] for o in self.orders if o["status"] in LIVE}
                | {a["clientAlgoId"] for a in self.algos if a["algoStatus"] == "NEW"})

    def stops(self, symbol: str, side: str) -> list[dict[str, Any]]:
        """Live STOP_MARKET conditional orders on ``symbol`` that close a position by selling/buying ``side``."""
        return [a for a in self.algos if a["symbol"] == symbol and a["algoStatus"] == "NEW"
                and a["orderType"] == "STOP_MARKET" and a["side"] == side]


__all__ = ["ALGO_ORDER_IDS", "VenueBusy", "VenueClient", "VenueView"]
