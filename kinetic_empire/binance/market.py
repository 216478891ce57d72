"""The market kline feed: warm-up over REST, the combined kline stream, gap backfill, reconnects.

Guarantees to the bus, per (symbol, timeframe): closed klines only (``x=true``), in open-time order,
each once. Any message (closed or still updating) whose kline starts after the one expected next
proves the klines in between are closed, so they are fetched over REST and published, in order,
before that message is handled. This one rule covers a reconnect, a silent drop of messages, and the
time between the warm-up and the first live message.

Backfills run outside the WebSocket read loop, in a task per topic: a REST wait (a 429's Retry-After can
be minutes) must not stop the reader, or the library's receive queue fills, pongs go unread, the ping
times out and the feed reconnects, over and over. While a topic's backfill runs, that topic's messages
are kept in arrival order and handled right after it, so the order-and-once guarantee holds.

Mark-price (``@markPrice@1s``) and ticker (``@ticker``) streams ride the same connection for the symbols
whose strategies asked for them (``marks``, ``tickers``); each message becomes one event published with
the symbol as topic. They are snapshots: nothing is backfilled, the next message supersedes a lost one.

Warm-up keeps only REST rows that are closed by the venue's market time (``premiumIndex.time``): the
last row of ``/fapi/v1/klines`` is usually the kline still in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from ..core.clock import Clock
from ..core.events import KlineClosed
from ..core.timeframes import TIMEFRAME_MS
from .errors import BinanceError
from .market_events import PARSERS, market_streams
from .rest import BinanceRest
from .venues import Venue
from .wire import WireError, kline_from_rest, kline_from_stream, loads, stream_name, unwrap
from .wsconn import ReconnectingWebSocket, SocketHealth

log = logging.getLogger(__name__)

Topic = tuple[str, str]
Publish = Callable[[Any, Hashable], None]

_MAX_ROWS = 1500
KEPT = 1500  # closed klines kept per topic for readers (the operator API's charts); at least the warm-up


class KlineFeed(SocketHealth):
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
        clock: Clock | None = None,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        seed: int | None = None,
        marks: Iterable[str] = (),
        tickers: Iterable[str] = (),
    ) -> None:
        """``now_ms`` stamps klines with the venue's time; ``clock`` (by default the REST
        client's) times reconnects and message ages."""
        self.rest = rest
        self.venue = venue
        self.topics = list(dict.fromkeys(topics))
        self._known = frozenset(self.topics)
        self._extra = market_streams(marks, tickers)  # mark price / ticker streams some strategy asked for
        self.market_events = 0
        self._publish = publish
        self._now = now_ms
        self._observe = observe or (lambda _ts: None)
        self.clock = clock or rest.clock
        self.last_open: dict[Topic, int] = {}
        self.last_message: dict[Topic, float] = {}  # clock.monotonic() of any message
        self.last_closed: dict[Topic, float] = {}  # clock.monotonic() of the last published kline
        self._kept: dict[Topic, deque[KlineClosed]] = {}  # warm-up and published klines, for recent()
        self._forming: dict[Topic, Mapping[str, Any]] = {}  # the last stream message of a kline not closed yet
        self.published = 0
        self.backfilled = 0
        self.duplicates = 0
        self.gaps = 0
        self.last_recv = 0.0  # clock.monotonic() when the message being handled arrived (latency probes)
        self._filling: dict[Topic, asyncio.Task[None]] = {}  # topic -> backfill task (outside the read loop)
        self._waiting: dict[Topic, list[tuple[int, bool, Mapping[str, Any]]]] = {}  # messages behind a backfill
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = self.clock.monotonic()
        self.socket = ReconnectingWebSocket(
            "market stream", self._url, self.clock, on_open=self._on_open, on_message=self._on_message,
            backoff_s=backoff_s, backoff_max_s=backoff_max_s, open_timeout_s=open_timeout_s, seed=seed)

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
            while rows and len(rows) < limit + 1:  # more than one page: older pages, newest first
                want = min(_MAX_ROWS, limit + 1 - len(rows))
                older = await self.rest.get("/fapi/v1/klines", {"symbol": symbol, "interval": tf,
                                                                 "endTime": int(rows[0][0]) - 1, "limit": want})
                older = [r for r in older if int(r[0]) < int(rows[0][0])]
                rows = older + rows
                if len(older) < want:
                    break  # the venue's history begins here
            ts = self._now()
            klines = [kline_from_rest(r, symbol, tf, ts) for r in closed_rows(rows, now)][-limit:]
            out[topic] = klines
            self._kept[topic] = deque(klines, maxlen=max(KEPT, limit))
            if klines:
                self.last_open[topic] = klines[-1].open_time
        return out

    # ------------------------------------------------------------------------------ stream
    async def run(self) -> None:
        """Read the combined stream until :meth:`stop`, reconnecting with backoff and jitter."""
        await self.socket.run()

    async def _url(self) -> str:
        return self.venue.market_stream_url([*(stream_name(s, tf) for s, tf in self.topics), *self._extra])

    async def _on_open(self) -> None:
        """After a reconnect: catch up the klines that closed while we were away, in a task (never here)."""
        if self.socket.connections > 1:
            topics = [t for t in self.topics if t in self.last_open and t not in self._filling]
            if topics:
                task = self._spawn(self._catch_up(topics))
                for topic in topics:
                    self._waiting.setdefault(topic, [])
                    self._filling[topic] = task

    async def _on_message(self, raw: str | bytes) -> None:
        self.last_recv = self.clock.monotonic()
        await self.handle(raw)
        await asyncio.sleep(0)  # orders this message caused leave before the next is handled

    async def handle(self, raw: str | bytes) -> None:
        """One stream message: published if it is a closed kline; one that proves klines missing starts a
        backfill task and waits behind it (with every later message of its topic), so the reader never waits."""
        try:
            _stream, data = unwrap(loads(raw))
            kind = data.get("e")
            if kind != "kline":
                parse = PARSERS.get(kind)  # type: ignore[arg-type]
                market = parse(data, self._now()) if parse is not None else None
            else:
                market = None
                k = data["k"]
                topic = (str(k["s"]), str(k["i"]))
                t = int(k["t"])
                closed = bool(k["x"])
                event_ms = int(data.get("E") or 0)
        except (ValueError, KeyError, TypeError, WireError) as exc:
            log.warning("market stream: malformed message skipped (%s): %r", exc, str(raw)[:160])
            return
        if kind != "kline":
            if market is not None:  # a mark price or ticker some strategy asked for: one event, nothing to order
                self.market_events += 1
                self._observe(market.ts_event)
                self._publish(market, market.symbol)
            return
        if topic not in self._known:
            return
        self.last_message[topic] = self.clock.monotonic()
        if event_ms:
            self._observe(event_ms)
        waiting = self._waiting.get(topic)
        if waiting is not None:  # a backfill of this topic runs: keep the order
            waiting.append((t, closed, k))
            return
        last = self.last_open.get(topic)
        interval = TIMEFRAME_MS[topic[1]]
        if last is not None and t > last + interval:
            self._waiting[topic] = [(t, closed, k)]
            self._filling[topic] = self._spawn(self._fill(topic, last + interval, t - 1))
            return
        self._apply(topic, t, closed, k)

    def _apply(self, topic: Topic, t: int, closed: bool, k: Mapping[str, Any]) -> None:
        if not closed:
            self._forming[topic] = k
            return
        last = self.last_open.get(topic)
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
        self.last_closed[topic] = self.clock.monotonic()
        self.published += 1
        kept = self._kept.get(topic)
        if kept is None:
            kept = self._kept[topic] = deque(maxlen=KEPT)
        kept.append(kline)
        self._publish(kline, topic)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _catch_up(self, topics: list[Topic]) -> None:
        """After a reconnect: the klines that closed while we were away, then the messages held meanwhile."""
        try:
            now = await market_now(self.rest)
        except Exception as exc:  # market_now maps venue errors itself; anything else must not strand the topics
            log.warning("market stream: market time unavailable for the catch-up (%s); using server time", exc)
            now = self.rest.server_ms()
        for topic in topics:
            interval = TIMEFRAME_MS[topic[1]]
            # the latest open time whose kline has closed by ``now``
            await self._fill(topic, self.last_open[topic] + interval, now - interval + 1)

    async def _fill(self, topic: Topic, start: int, end: int) -> None:
        """Backfill [start, end] of ``topic``, then handle its held messages in order (more may arrive
        meanwhile); runs as a task. Messages left after a failure are dropped: the next one backfills them."""
        interval = TIMEFRAME_MS[topic[1]]
        try:
            if start <= end:
                await self._backfill(topic, start, end)
            waiting = self._waiting.get(topic, [])
            while waiting:
                t, closed, k = waiting.pop(0)
                last = self.last_open.get(topic)
                if last is not None and t > last + interval:  # messages lost while we were backfilling
                    await self._backfill(topic, last + interval, t - 1)
                self._apply(topic, t, closed, k)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("market stream: backfill of %s %s failed (%s)", topic[0], topic[1], exc)
        finally:
            self._filling.pop(topic, None)
            self._waiting.pop(topic, None)

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
        return None if seen is None else self.clock.monotonic() - seen

    def recent(self, topic: Topic, limit: int) -> tuple[list[KlineClosed], KlineClosed | None]:
        """Read-only: the last ``limit`` closed klines of ``topic`` (warm-up included, oldest first) and the
        kline still in progress from the stream (None when the last message was of a closed one)."""
        kept = self._kept.get(topic, ())
        closed = list(kept)[-limit:] if limit > 0 else []
        raw = self._forming.get(topic)
        forming = None
        if raw is not None:
            try:
                forming = kline_from_stream(raw, self._now())
            except WireError:
                forming = None
            last = self.last_open.get(topic)
            if forming is not None and last is not None and forming.open_time <= last:
                forming = None  # that kline has closed since
        return closed, forming

    @property
    def backfilling(self) -> int:
        """Topics whose backfill task runs (their messages wait behind it)."""
        return len(self._filling)

    async def stop(self) -> None:
        await self.socket.stop()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def drop(self) -> None:
        """Cut the connection as a network failure would (tests)."""
        self.socket.drop()


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
