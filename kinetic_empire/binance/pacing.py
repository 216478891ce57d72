"""Request-weight pacing for one IP on Binance's hosts: shared by the trading REST client and the downloader.

Binance counts request weight per IP and minute and reports the running total in the
``X-MBX-USED-WEIGHT-1M`` header of every reply. Past the limit it answers 429 with ``Retry-After``, and an
IP that keeps sending after a 429 is banned (418) for minutes up to days. So, before every request:

* while a 429/418's ``Retry-After`` runs, wait (every request, not only the one refused);
* when the last reported weight plus what is in flight plus this request would pass ``headroom`` of the
  limit in the venue's current minute, wait for the next minute (plus ``margin_s`` for clock error).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from ..core.clock import Clock

log = logging.getLogger(__name__)

_MINUTE_MS = 60_000
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


class WeightPacer:
    """Paces one client's requests. ``now_ms`` is the venue's time (minute windows are the venue's)."""

    def __init__(self, clock: Clock, now_ms: Callable[[], int], *, limit: int = 2400, headroom: float = 0.9,
                 margin_s: float = 0.05) -> None:
        self.clock = clock
        self._now_ms = now_ms
        self.limit = limit
        self.headroom = headroom
        self.margin_s = margin_s
        self.used = 0
        """Weight used in the current minute: the venue's last report plus requests sent since."""
        self.paced_s = 0.0
        """Seconds spent waiting, for statistics."""
        self._window = -1  # the venue's minute that ``used`` belongs to; -1 before the first report
        self._blocked_until = 0.0  # clock.monotonic() seconds
        self._lock = asyncio.Lock()

    def note(self, headers: Mapping[str, str]) -> None:
        """Take the used weight from a reply's headers."""
        raw = header(headers, WEIGHT_HEADER)
        if raw is None:
            return
        try:
            used = int(raw)
        except ValueError:
            return
        window = self._now_ms() // _MINUTE_MS
        if window != self._window or used > self.used:
            self.used, self._window = used, window

    def block(self, seconds: float) -> None:
        """A 429/418 said ``Retry-After: seconds``: no request leaves before it has passed."""
        self._blocked_until = max(self._blocked_until, self.clock.monotonic() + seconds)

    def blocked(self) -> bool:
        """A 429/418's Retry-After is still running: no request may leave now."""
        return self._blocked_until > self.clock.monotonic()

    async def wait(self, cost: int, what: str = "") -> None:
        """Return when request ``what`` of weight ``cost`` may leave (at once, unless a limit is near)."""
        blocked = self._blocked_until - self.clock.monotonic()
        if blocked > 0:
            self.paced_s += blocked
            await self.clock.sleep(blocked)
        if cost == 0:
            return  # weightless requests (order placement counts against order limits) never queue here
        async with self._lock:  # one request at a time decides, so requests in flight are counted
            now = self._now_ms()
            window = now // _MINUTE_MS
            if window != self._window:
                return  # a new minute (or no report yet): the venue's counter restarted
            if self.used + cost <= self.limit * self.headroom:
                self.used += cost  # count requests in flight until the venue reports again
                return
            delay = ((window + 1) * _MINUTE_MS - now) / 1000 + self.margin_s
            log.warning("request weight %d of %d used this minute; pausing %.1f s before %s", self.used, self.limit,
                        delay, what or "the next request")
            self.paced_s += delay
            await self.clock.sleep(delay)
            self.used, self._window = cost, window + 1


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by case-insensitive name (plain dicts of headers are case-sensitive)."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for k, v in headers.items():
        if k.lower() == lower:
            return v
    return None
