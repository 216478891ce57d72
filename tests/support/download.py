"""Shared pieces for the download tests: servers on a background loop, a fixed clock, an archive app.

Servers run in their own thread and event loop so that code under test can use ``asyncio.run`` (as the
CLI does) while talking to them over real loopback sockets.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

ARCHIVE = Path(__file__).resolve().parents[1] / "archive"
T = TypeVar("T")


class Background:
    """An event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class AppServer:
    """An aiohttp app served on 127.0.0.1 from a background loop; ``url`` is its base URL."""

    def __init__(self, bg: Background, app: web.Application) -> None:
        self.bg = bg
        self.runner = web.AppRunner(app, access_log=None)

        async def start() -> int:
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

        self.port = bg.run(start())
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.bg.run(self.runner.cleanup())


class FixedClock:
    """A Clock whose date is what the test says. Sleeping returns at once and is recorded in ``slept``; it
    moves only ``monotonic`` (so a Retry-After is waited out once), never the date the plans use."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms
        self.elapsed = 0.0
        self.slept: list[float] = []

    def now_ms(self) -> int:
        return self.now

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.elapsed += max(0.0, seconds)
        await asyncio.sleep(0)


def archive_app(root: Path, *, log: list[str] | None = None, delay: float = 0.0,
                hook: Callable[[web.Request], Awaitable[web.StreamResponse | None]] | None = None) -> web.Application:
    """A static file server over `root`, like data.binance.vision: 404 for what is not there."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if log is not None:
            log.append(request.path)
        if hook is not None and (resp := await hook(request)) is not None:
            return resp
        if delay:
            await asyncio.sleep(delay)
        path = (root / request.path.lstrip("/")).resolve()
        if not path.is_file():
            return web.Response(status=404, text="<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>",
                                content_type="application/xml")
        return web.Response(body=path.read_bytes(), content_type="application/zip")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


def ms(text: str) -> int:
    """Epoch ms of a UTC date-time string."""
    import pandas as pd

    return int(pd.Timestamp(text, tz="UTC").value // 1_000_000)
