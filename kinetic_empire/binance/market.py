"""The market kline feed: warm-up over REST, the combined kline stream, gap backfill, reconnects.

Guarantees to the bus, per (symbol, timeframe): closed klines only (``x=true``), in open-time order,
each once. Any message (closed or still updating) whose kline starts after the one expected next
proves the klines in between are closed, so they are fetched over REST and published, in order,
before that message is handled. This one rule covers a reconnect, a silent drop of messages, and the
time between the warm-up and the first live message.

Warm-up keeps only REST rows that are closed by the venue's market time (``premiumIndex.time``): the
last row of ``/fapi/v1/klines`` is usually the kline still in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from ..core.events import KlineClosed
from ..core.timeframes import TIMEFRAME_MS
from .backoff import backoff_delay
from .errors import BinanceError
from .rest import BinanceRest
from .venues import Venue
from .wire import WireError, kline_from_rest, kline_from_stream, stream_name, unwrap

log = logging.getLogger(__name__)

Topic = tuple[str, str]
Publish = Callable[[KlineClosed, Hashable], None]

_MAX_ROWS = 1500


class KlineFeed:
    """Closed klines of ``topics`` onto the bus through ``publish(kline, topic)``."""

    def __init__(
        self,
        rest: BinanceRest,
        venue: Venue,
        topics: Iterable[Topic],
        publish: Publish,
        now_ms: Callable[[], int],
        *,
        observe: Callable[[int], None] | None = None,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        seed: int | None = None,
    ) -> None:
        self.rest = rest
        self.venue = venue
        self.topics = list(dict.fromkeys(topics))
        self._known = frozenset(self.topics)
        self._publish = publish
        self._now = now_ms
        self._observe = observe or (lambda _ts: None)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self._rng = random.Random(seed)
        self.last_open: dict[Topic, int] = {}
        self.last_message: dict[Topic, float] = {}  # monotonic time of any message
        self.last_closed: dict[Topic, float] = {}  # monotonic time of the last published kline
        self.published = 0
        self.backfilled = 0
        self.duplicates = 0
        self.gaps = 0
        self.connections = 0
        self.reconnects = 0
        self.connected = False
        self.last_error = ""
        self.last_recv = 0.0  # perf_counter() when the message being handled arrived (latency probes)
        self.started = time.monotonic()
        self._stop = False
        self._ws: ClientConnection | None = None

    # ------------------------------------------------------------------------------ warm-up
    async def market_now(self) -> int:
        return await market_now(self.rest)

    async def warm_up(self, limit: int) -> dict[Topic, list[KlineClosed]]:
        """The last ``limit`` closed klines of every topic; the feed continues from the newest."""
        now = await market_now(self.rest)
        self._observe(now)
        out: dict[Topic, list[KlineClosed]] = {}
        for topic in self.topics:
            symbol, tf = topic
            rows = await self.rest.get("/fapi/v1/klines", {"symbol": symbol, "interval": tf,
                                                            "limit": min(_MAX_ROWS, limit + 1)})
            ts = self._now()
            klines = [kline_from_rest(r, symbol, tf, ts) for r in closed_rows(rows, now)][-limit:]
            out[topic] = klines
            if klines:
                self.last_open[topic] = klines[-1].open_time
        return out

    # ------------------------------------------------------------------------------ stream
    async def run(self) -> None:
        """Read the combined stream until :meth:`stop`, reconnecting with backoff and jitter."""
        url = self.venue.market_stream_url([stream_name(s, tf) for s, tf in self.topics])
        failures = 0
        while not self._stop:
            try:
                async with websockets.connect(url, open_timeout=self.open_timeout_s, ping_interval=20,
                                              ping_timeout=20, max_size=2**22) as ws:
                    self._ws = ws
                    self.connections += 1
                    if self.connections > 1:
                        self.reconnects += 1
                        log.info("market stream reconnected (%d)", self.reconnects)
                    self.connected = True
                    failures = 0
                    if self.connections > 1:
                        await self._catch_up()
                    async for raw in ws:
                        self.last_recv = time.perf_counter()
                        await self.handle(raw)
                        await asyncio.sleep(0)  # orders this message caused leave before the next is handled
            except asyncio.CancelledError:
                raise
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("market stream: %s", self.last_error)
            finally:
                self.connected = False
                self._ws = None
            if self._stop:
                break
            failures += 1
            delay = backoff_delay(failures, self.backoff_s, self.backoff_max_s, self._rng)
            await asyncio.sleep(delay if failures > 1 else delay / 4)

    async def handle(self, raw: str | bytes) -> None:
        """One stream message: backfill what it proves missing, then publish it if it is a closed kline."""
        try:
            _stream, data = unwrap(json.loads(raw))
            if data.get("e") != "kline":
                return
            k = data["k"]
            topic = (str(k["s"]), str(k["i"]))
            t = int(k["t"])
            closed = bool(k["x"])
            event_ms = int(data.get("E") or 0)
        except (ValueError, KeyError, TypeError, WireError) as exc:
            log.warning("market stream: malformed message skipped (%s): %r", exc, str(raw)[:160])
            return
        if topic not in self._known:
            return
        self.last_message[topic] = time.monotonic()
        if event_ms:
            self._observe(event_ms)
        last = self.last_open.get(topic)
        interval = TIMEFRAME_MS[topic[1]]
        if last is not None and t > last + interval:
            await self._backfill(topic, last + interval, t - 1)
            last = self.last_open.get(topic)
        if not closed:
            return
        if last is not None and t <= last:
            self.duplicates += 1
            return
        try:
            kline = kline_from_stream(k, self._now())
        except WireError as exc:
            log.warning("market stream: %s", exc)
            return
        self._emit(topic, kline)

    def _emit(self, topic: Topic, kline: KlineClosed) -> None:
        self.last_open[topic] = kline.open_time
        self.last_closed[topic] = time.monotonic()
        self.published += 1
        self._publish(kline, topic)

    async def _catch_up(self) -> None:
        """After a reconnect: the klines that closed while we were away, before any new message."""
        now = await market_now(self.rest)
        for topic in self.topics:
            last = self.last_open.get(topic)
            interval = TIMEFRAME_MS[topic[1]]
            if last is None:
                continue
            end = now - interval + 1  # the latest open time whose kline has closed by ``now``
            if end >= last + interval:
                await self._backfill(topic, last + interval, end)

    async def _backfill(self, topic: Topic, start: int, end: int) -> None:
        """Publish the closed klines with open time in [start, end] from REST, in order, once each."""
        symbol, tf = topic
        self.gaps += 1
        log.info("market stream: %s %s gap from %d to %d; backfilling over REST", symbol, tf, start, end)
        cursor = start
        while cursor <= end:
            try:
                rows = await self.rest.get("/fapi/v1/klines", {"symbol": symbol, "interval": tf, "startTime": cursor,
                                                                "endTime": end, "limit": _MAX_ROWS})
            except BinanceError as exc:
                log.warning("market stream: backfill of %s %s failed (%s); klines from %d to %d are missing",
                            symbol, tf, exc, cursor, end)
                return
            if not rows:
                return
            ts = self._now()
            for row in rows:
                t = int(row[0])
                if t < cursor or t > end or t <= self.last_open.get(topic, -1):
                    continue
                self.backfilled += 1
                self._emit(topic, kline_from_rest(row, symbol, tf, ts))
            cursor = int(rows[-1][0]) + TIMEFRAME_MS[tf]

    # ------------------------------------------------------------------------------ control
    def age_s(self, topic: Topic) -> float | None:
        """Seconds since the last message of ``topic`` (None before the first)."""
        seen = self.last_message.get(topic)
        return None if seen is None else time.monotonic() - seen

    async def stop(self) -> None:
        self._stop = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    def drop(self) -> None:
        """Cut the connection as a network failure would (tests)."""
        if self._ws is not None:
            self._ws.transport.abort()


def streams_for(topics: Iterable[Topic]) -> list[str]:
    return [stream_name(s, tf) for s, tf in topics]


def closed_rows(rows: list[list[Any]], market_now: int) -> list[list[Any]]:
    """Rows of ``/fapi/v1/klines`` whose close time has passed at ``market_now``."""
    return [r for r in rows if int(r[6]) <= market_now]


async def market_now(rest: BinanceRest) -> int:
    """The venue's market time: the latest ``premiumIndex.time`` (its server time if that is unusable).

    On Binance both agree; on the sandbox's replay only the first is the replay's time.
    """
    try:
        data = await rest.get("/fapi/v1/premiumIndex")
        times = [int(r.get("time") or 0) for r in data] if isinstance(data, list) else [int(data["time"])]
        if max(times, default=0) > 0:
            return max(times)
    except (BinanceError, KeyError, TypeError, ValueError) as exc:
        log.info("premiumIndex unusable for market time (%s); using server time", exc)
    return rest.server_ms()
