"""The REST source: ``/fapi/v1/klines``, ``/fapi/v1/markPriceKlines`` and ``/fapi/v1/fundingRate``.

Pages forward by ``startTime`` (Binance returns the first `limit` rows of a range) and drops the
still-open last kline, because a backtest must only ever see closed klines.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kinetic_empire.core.clock import Clock
from kinetic_empire.core.errors import DataError
from kinetic_empire.data import KlineFrame, validate
from kinetic_empire.data._util import format_ms, interval_ms
from kinetic_empire.download.funding import FundingRows
from kinetic_empire.download.http import DownloadError, HttpClient, Reply
from kinetic_empire.download.series import REST_PATHS, Kind, SeriesKey

DEFAULT_REST_URL = "https://fapi.binance.com"
KLINE_LIMIT = 1500
FUNDING_LIMIT = 1000
SETTLE_MS = 5_000
"""A kline counts as closed this long after its close time: allowance for clock skew to the venue, so
a kline still open on Binance is never stored (and marked covered) with partial data."""


def kline_weight(limit: int) -> int:
    """Request weight of a klines call (reference 3.1)."""
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class RestSource:
    """Paginated, validated REST downloads through the shared :class:`HttpClient`."""

    def __init__(self, client: HttpClient, base_url: str, clock: Clock) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.clock = clock

    async def exchange_info(self) -> dict[str, Any]:
        reply = await self.client.get(f"{self.base_url}/fapi/v1/exchangeInfo", weight=1, what="exchangeInfo")
        self._check(reply, "", "exchangeInfo")
        data = reply.json()
        if not isinstance(data, dict) or "symbols" not in data:
            raise DownloadError(f"{reply.url}: not an exchangeInfo response")
        return data

    async def klines(self, key: SeriesKey, start_ms: int, end_ms: int) -> KlineFrame:
        """Closed klines with open_time in ``[start_ms, end_ms)``, validated (gaps recorded, not filled)."""
        assert key.timeframe is not None
        interval = interval_ms(key.timeframe)
        path = REST_PATHS[key.kind]
        url = f"{self.base_url}{path}"
        rows: list[list[Any]] = []
        cursor = start_ms
        while cursor < end_ms:
            params = {"symbol": key.symbol, "interval": key.timeframe, "startTime": cursor,
                      "endTime": end_ms - 1, "limit": KLINE_LIMIT}
            reply = await self.client.get(url, params, weight=kline_weight(KLINE_LIMIT),
                                          what=f"{path} {key.symbol} {key.timeframe} from {format_ms(cursor)}")
            self._check(reply, key.symbol, path, key.timeframe)
            raw = reply.json()
            if not isinstance(raw, list):
                raise DownloadError(f"{reply.url}: expected a JSON array of klines, got {type(raw).__name__}")
            page = [r for r in raw if cursor <= int(r[0]) < end_ms]
            if not page:
                break
            rows.extend(page)
            cursor = int(page[-1][0]) + interval
            if len(raw) < KLINE_LIMIT:  # a short page: the source has nothing more in range
                break
        closed_before = self.clock.now_ms() - SETTLE_MS
        rows = [r for r in rows if int(r[6]) < closed_before]  # drop the still-open kline
        where = f"{url} {key.symbol} {key.timeframe} {format_ms(start_ms)}..{format_ms(end_ms)}"
        return _frame(key, rows, where)

    async def funding(self, symbol: str, start_ms: int, end_ms: int) -> FundingRows:
        """Funding settlements with fundingTime in ``[start_ms, end_ms)``."""
        path = REST_PATHS[Kind.FUNDING]
        url = f"{self.base_url}{path}"
        items: list[dict[str, Any]] = []
        cursor = start_ms
        while cursor < end_ms:
            params = {"symbol": symbol, "startTime": cursor, "endTime": end_ms - 1, "limit": FUNDING_LIMIT}
            reply = await self.client.get(url, params, weight=1, what=f"{path} {symbol} from {format_ms(cursor)}")
            self._check(reply, symbol, path)
            raw = reply.json()
            if not isinstance(raw, list):
                raise DownloadError(f"{reply.url}: expected a JSON array, got {type(raw).__name__}")
            page = [x for x in raw if cursor <= int(x["fundingTime"]) < end_ms]
            if not page:
                break
            items.extend(page)
            cursor = int(page[-1]["fundingTime"]) + 1
            if len(raw) < FUNDING_LIMIT:
                break
        where = f"{url} {symbol} {format_ms(start_ms)}..{format_ms(end_ms)}"
        try:
            return FundingRows.build(symbol, [int(x["fundingTime"]) for x in items],
                                     [str(x["fundingRate"]) for x in items],
                                     [str(x["markPrice"]) if x.get("markPrice") not in (None, "") else None
                                      for x in items], where)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(where, "parse", f"malformed fundingRate item: {exc}") from exc

    @staticmethod
    def _check(reply: Reply, symbol: str, path: str, timeframe: str | None = None) -> None:
        if reply.status == 200:
            return
        code, msg = reply.binance_error()
        if code == -1121:
            raise DownloadError(f"unknown symbol {symbol} (Binance: {msg or 'Invalid symbol.'})")
        if code == -1120 or (code == -1100 and timeframe):
            raise DownloadError(f"Binance does not offer timeframe {timeframe!r} on {path} ({code}: {msg})")
        detail = f"{code}: {msg}" if code is not None else msg
        raise DownloadError(f"GET {path} {symbol}: HTTP {reply.status} {detail}".rstrip())


def _frame(key: SeriesKey, rows: list[list[Any]], where: str) -> KlineFrame:
    assert key.timeframe is not None
    if not rows:
        return KlineFrame.empty(key.symbol, key.timeframe, source=where)
    try:
        if any(len(r) < 7 for r in rows):
            raise ValueError("a kline has fewer than 7 fields")
        cols = {
            "open_time": np.fromiter((r[0] for r in rows), np.int64, len(rows)),
            "open": np.array([r[1] for r in rows], dtype=np.float64),
            "high": np.array([r[2] for r in rows], dtype=np.float64),
            "low": np.array([r[3] for r in rows], dtype=np.float64),
            "close": np.array([r[4] for r in rows], dtype=np.float64),
            "volume": np.array([r[5] for r in rows], dtype=np.float64),
        }
        close_time = np.fromiter((r[6] for r in rows), np.int64, len(rows))
    except (TypeError, ValueError) as exc:
        raise DataError(where, "parse", f"malformed kline in the response: {exc}") from exc
    frame = KlineFrame.from_columns(key.symbol, key.timeframe, cols, source=where)
    return validate(frame, gap_policy="keep", close_time=close_time)
