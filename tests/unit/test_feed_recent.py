"""``KlineFeed.recent``: what the operator API's charts read of the feed (bounded history, the kline in
progress), driven through the feed's own message handler with Binance-shaped stream messages."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kinetic_empire.binance.market import KEPT, KlineFeed
from kinetic_empire.binance.venues import Venue
from kinetic_empire.core.clock import ManualClock

T0 = 1_690_866_000_000
MINUTE = 60_000


def message(i: int, *, closed: bool, close: float = 4.2) -> str:
    t = T0 + i * MINUTE
    k = {"t": t, "T": t + MINUTE - 1, "s": "FILUSDT", "i": "1m", "o": "4.1", "h": "4.3", "l": "4.0",
         "c": str(close), "v": "10", "x": closed}
    return json.dumps({"stream": "filusdt@kline_1m", "data": {"e": "kline", "E": t + 1, "s": "FILUSDT", "k": k}})


def test_recent_is_bounded_ordered_and_carries_the_kline_in_progress() -> None:
    published: list[Any] = []
    feed = KlineFeed(None, Venue("sandbox", "http://127.0.0.1:1", "ws://127.0.0.1:1"),  # type: ignore[arg-type]
                     [("FILUSDT", "1m")], lambda k, _topic: published.append(k), lambda: T0, clock=ManualClock(T0))
    topic = ("FILUSDT", "1m")

    async def play() -> None:
        assert feed.recent(topic, 10) == ([], None)
        for i in range(KEPT + 5):
            await feed.handle(message(i, closed=True))
        await feed.handle(message(KEPT + 5, closed=False, close=4.25))

    asyncio.run(play())
    assert len(published) == KEPT + 5
    closed, forming = feed.recent(topic, 3)
    assert [k.open_time for k in closed] == [T0 + i * MINUTE for i in (KEPT + 2, KEPT + 3, KEPT + 4)]
    assert forming is not None and forming.open_time == T0 + (KEPT + 5) * MINUTE and forming.close == 4.25
    every, _ = feed.recent(topic, 10 * KEPT)
    assert len(every) == KEPT and every[0].open_time == T0 + 5 * MINUTE  # the oldest leave first
    assert feed.recent(topic, 0)[0] == [] and feed.recent(("NEARUSDT", "1m"), 5) == ([], None)

    asyncio.run(feed.handle(message(KEPT + 5, closed=True, close=4.26)))
    closed, forming = feed.recent(topic, 1)
    assert forming is None and closed[0].close == 4.26  # closed now: no longer in progress
