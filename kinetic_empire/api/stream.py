"""Server-sent events: bus events become numbered messages in a bounded ring, served to any number of clients.

Each message is ``id: <seq>``, ``event: <type>``, ``data: {"type", "ts_event", "data"}``; ``seq`` grows by one per
message for the life of the process. A client that reconnects with ``Last-Event-ID`` gets every message after
that id still in the ring, in order; one that has none, or whose id has left the ring, first gets a
``snapshot`` message (account, positions, open orders, risk, health), so a page needs no polling.

The bus handlers run on the engine's hot path, so they only number and append; a message's JSON text is
built once, when the first client needs it. Clients are woken through one ``asyncio.Event`` each: a slow
client never blocks the bus; one that falls out of the ring gets a new snapshot and goes on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from .encode import dumps

SNAPSHOT = "snapshot"
EVENT_TYPES = ("market", "kline", "order_update", "fill", "account", "position", "risk", "health", "alert")


class Message:
    """One numbered SSE message; ``data`` is a dict or a zero-argument function building it (lazily)."""

    __slots__ = ("_text", "data", "kind", "seq", "ts_event")

    def __init__(self, seq: int, kind: str, ts_event: int, data: Any) -> None:
        self.seq = seq
        self.kind = kind
        self.ts_event = ts_event
        self.data = data
        self._text: str | None = None

    def text(self) -> str:
        if self._text is None:
            data = self.data() if callable(self.data) else self.data
            body = dumps({"type": self.kind, "ts_event": self.ts_event, "data": data})
            self._text = f"id: {self.seq}\nevent: {self.kind}\ndata: {body}\n\n"
            self.data = None
        return self._text


class EventStream:
    """The ring of recent messages and the clients waiting for more."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], now_ms: Callable[[], int], *,
                 capacity: int = 4096) -> None:
        self._snapshot = snapshot
        self._now_ms = now_ms
        self.ring: deque[Message] = deque(maxlen=capacity)
        self.seq = 0
        self._waiters: set[asyncio.Event] = set()
        self.published = 0
        self.closed = False

    def close(self) -> None:
        """End every client's stream (the server is stopping)."""
        self.closed = True
        for waiter in self._waiters:
            waiter.set()

    @property
    def clients(self) -> int:
        return len(self._waiters)

    def push(self, kind: str, ts_event: int, data: Any) -> None:
        """Number and keep one message, wake the clients: the whole cost on the publisher's side."""
        self.seq += 1
        self.ring.append(Message(self.seq, kind, ts_event, data))
        self.published += 1
        for waiter in self._waiters:
            waiter.set()

    def _after(self, last: int) -> list[Message] | None:
        """Messages newer than ``last``, or None when some of them have already left the ring."""
        ring = self.ring
        if not ring or last >= ring[-1].seq:
            return []
        first = ring[0].seq
        if last < first - 1:
            return None
        return list(ring)[last - first + 1:]

    def snapshot_text(self) -> str:
        body = dumps({"type": SNAPSHOT, "ts_event": self._now_ms(), "data": self._snapshot()})
        return f"id: {self.seq}\nevent: {SNAPSHOT}\ndata: {body}\n\n"

    async def messages(self, last_event_id: str | None) -> AsyncIterator[str]:
        """The text a client receives: snapshot or replay first, then each new message as it comes.

        No timer of its own: the gateway's ``health`` message every few seconds keeps idle connections
        alive, and the server ends the generator when the client goes away.
        """
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            asked = _parse_id(last_event_id)
            backlog = None if asked is None or asked > self.seq else self._after(asked)
            last = self.seq if asked is None or backlog is None else asked
            if backlog is None:
                yield "retry: 1000\n\n" + self.snapshot_text()
            else:
                for m in backlog:
                    yield m.text()
                    last = m.seq
            while not self.closed:
                if last >= self.seq:
                    waiter.clear()
                    await waiter.wait()
                    continue
                pending = self._after(last)
                if pending is None:  # this client fell out of the ring: start it over from a snapshot
                    last = self.seq
                    yield self.snapshot_text()
                    continue
                for m in pending:
                    yield m.text()
                    last = m.seq
        finally:
            self._waiters.discard(waiter)


def _parse_id(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())
