"""The REST source against the local Binance sandbox over loopback: paging, faults mid-download, resuming.

A small fault-injecting proxy sits between the downloader and the sandbox for the 5xx, timeout and
dropped-connection cases (the sandbox injects faults on order endpoints and 429 bursts only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from kinetic_empire.data import KlineStore, load_klines, sample_data_dir
from kinetic_empire.download import (
    Coverage,
    DownloadError,
    DownloadOptions,
    DownloadRequest,
    HttpClient,
    Kind,
    RetryPolicy,
    SeriesKey,
    download,
    load_funding,
)
from kinetic_empire.sandbox import FaultConfig, SandboxConfig, SandboxServer
from tests.support.download import AppServer, Background, FixedClock, ms

pytestmark = pytest.mark.integration

SAMPLE = sample_data_dir() / "futures/um/monthly/klines/FILUSDT/1m"
START, END = ms("2023-08-25"), ms("2023-09-11")
NOW = FixedClock(END + 60_000)


@pytest.fixture(scope="module")
def bg() -> Iterator[Background]:
    b = Background()
    yield b
    b.close()


def start_sandbox(bg: Background, faults: FaultConfig | None = None) -> SandboxServer:
    cfg = SandboxConfig(data=[SAMPLE / "FILUSDT-1m-2023-08.zip", SAMPLE / "FILUSDT-1m-2023-09.zip"],
                        symbols=["FILUSDT"], start=START, end=END, updates_per_kline=1,
                        faults=faults or FaultConfig())
    sb = SandboxServer(cfg)
    sb.play_klines(10**9)  # every kline closed and visible
    return bg.run(sb.start())


@pytest.fixture(scope="module")
def sandbox(bg: Background) -> Iterator[SandboxServer]:
    sb = start_sandbox(bg)
    yield sb
    bg.run(sb.stop())


@pytest.fixture(scope="module")
def expected() -> object:
    return load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m", start=START, end=END)


class Proxy:
    """Forwards GETs to `target`; `fault(request, n)` may answer request number n itself instead."""

    def __init__(self, bg: Background, target: str, fault: Callable[[web.Request, int], object]) -> None:
        self.target = target
        self.fault = fault
        self.seen: list[dict[str, str]] = []
        self.session: aiohttp.ClientSession | None = None
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.server = AppServer(bg, app)
        self.url = self.server.url

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.query))
        injected = self.fault(request, len(self.seen))
        if asyncio.iscoroutine(injected):
            injected = await injected
        if isinstance(injected, web.StreamResponse):
            return injected
        if self.session is None:
            self.session = aiohttp.ClientSession()
        async with self.session.get(self.target + request.path_qs) as resp:
            body = await resp.read()
            headers = {k: v for k, v in resp.headers.items() if k.lower().startswith("x-mbx") or k == "Retry-After"}
            return web.Response(status=resp.status, body=body, headers=headers, content_type=resp.content_type)

    def close(self, bg: Background) -> None:
        if self.session is not None:
            bg.run(self.session.close())
        self.server.close()


def opts(root: Path, url: str, **kw: object) -> DownloadOptions:
    base: dict[str, object] = dict(root=root, rest_url=url, archive_url="http://127.0.0.1:9", clock=NOW,
                                   retry=RetryPolicy(max_retries=4, base_delay=0.01, timeout=2.0),
                                   progress=False)
    base.update(kw)
    return DownloadOptions(**base)  # type: ignore[arg-type]


def rest_request(**kw: object) -> DownloadRequest:
    base: dict[str, object] = dict(symbols=("FILUSDT",), timeframes=("1m",), start_ms=START, end_ms=END,
                                   source="rest", funding=False)
    base.update(kw)
    return DownloadRequest(**base)  # type: ignore[arg-type]


def assert_same(root: Path, expected: object) -> None:
    got = KlineStore(root).read("FILUSDT", "1m")
    for col in ("open_time", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, col), getattr(expected, col))


# ------------------------------------------------------------------------------------------ tests


def test_rest_download_pages_through_and_matches_the_real_klines(sandbox: SandboxServer, expected: object,
                                                                  tmp_path: Path) -> None:
    summary = download(rest_request(funding=True), opts(tmp_path, sandbox.rest_url))
    assert_same(tmp_path, expected)
    assert summary.rows_added == 24_480 + 51 and summary.gaps_found == 0
    assert summary.results[0].fetched == {"rest": 2}  # one chunk per month
    funding = load_funding(tmp_path, "FILUSDT", START, END)
    assert len(funding) == 51 and min(funding) == START and max(funding) == END - 8 * 3_600_000


def test_429_5xx_timeouts_and_dropped_connections_mid_download_are_retried(bg: Background, sandbox: SandboxServer,
                                                                           expected: object, tmp_path: Path) -> None:
    async def fault(request: web.Request, n: int) -> web.StreamResponse | None:
        if n in (3, 11):
            return web.json_response({"code": -1001, "msg": "Internal error; unable to process your request."},
                                     status=503)
        if n == 5:
            return web.json_response({"code": -1003, "msg": "Too many requests"}, status=429,
                                     headers={"Retry-After": "7"})
        if n == 7:
            return web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")
        if n == 9:
            await asyncio.sleep(1.0)  # longer than the client's 0.5 s timeout
            return web.Response(status=504)
        if n == 13:
            assert request.transport is not None
            request.transport.close()  # connection dropped mid-request
            await asyncio.sleep(0.1)
        return None

    proxy = Proxy(bg, sandbox.rest_url, fault)
    clock = FixedClock(END + 60_000)
    slept = clock.slept

    try:
        retry = RetryPolicy(max_retries=4, base_delay=0.01, timeout=0.5)
        summary = download(rest_request(), opts(tmp_path, proxy.url, clock=clock, retry=retry))
    finally:
        proxy.close(bg)
    assert_same(tmp_path, expected)
    assert summary.retries >= 5  # aiohttp itself may retry the dropped keep-alive connection once
    assert slept.count(7) == 1  # Retry-After honoured, once: the requests in flight wait it out together
    assert all(s < 7 for s in slept if s != 7)  # backoff, not Retry-After, elsewhere


def test_sandbox_429_bursts_are_waited_out(bg: Background, expected: object, tmp_path: Path) -> None:
    sb = start_sandbox(bg, FaultConfig(enabled=True, seed=3, rate_limit_burst_rate=0.3))
    try:
        summary = download(rest_request(), opts(tmp_path, sb.rest_url, retry=RetryPolicy(max_retries=8, base_delay=0)))
    finally:
        bg.run(sb.stop())
    assert_same(tmp_path, expected)
    assert summary.retries > 0


def test_an_interrupted_download_resumes_where_it_stopped(bg: Background, sandbox: SandboxServer, expected: object,
                                                          tmp_path: Path) -> None:
    def outage(request: web.Request, n: int) -> web.StreamResponse | None:
        if int(request.query.get("startTime", 0)) >= ms("2023-09-09"):
            return web.json_response({"code": -1001, "msg": "Internal error"}, status=503)
        return None

    proxy = Proxy(bg, sandbox.rest_url, outage)
    try:
        with pytest.raises(DownloadError, match=r"giving up after 3 attempts \(last: HTTP 503"):
            download(rest_request(), opts(tmp_path, proxy.url, concurrency=1,
                                          retry=RetryPolicy(max_retries=2, base_delay=0)))
    finally:
        proxy.close(bg)
    key = SeriesKey(Kind.KLINES, "FILUSDT", "1m")
    assert Coverage.load(tmp_path, key).covered == [(START, ms("2023-09-01"))]  # August was committed
    assert len(KlineStore(tmp_path).read("FILUSDT", "1m")) == 7 * 1440

    proxy = Proxy(bg, sandbox.rest_url, lambda r, n: None)
    try:
        summary = download(rest_request(), opts(tmp_path, proxy.url))
    finally:
        proxy.close(bg)
    assert summary.rows_added == 10 * 1440
    assert min(int(q["startTime"]) for q in proxy.seen) == ms("2023-09-01")  # August not fetched again
    assert_same(tmp_path, expected)


def test_unknown_symbol_is_named(sandbox: SandboxServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="unknown symbol FOOUSDT"):
        download(rest_request(symbols=("FOOUSDT",)), opts(tmp_path, sandbox.rest_url))
    assert not (tmp_path / "klines").exists()


def test_auto_takes_the_archive_for_past_days_and_rest_for_today(bg: Background, sandbox: SandboxServer,
                                                                   tmp_path: Path) -> None:
    from tests.support.download import ARCHIVE, archive_app

    log: list[str] = []
    archive = AppServer(bg, archive_app(ARCHIVE, log=log))
    now = FixedClock(ms("2023-09-10 06:30"))
    try:
        summary = download(
            rest_request(timeframes=("1h",), start_ms=ms("2023-08-01"), end_ms=ms("2023-09-11"), source="auto"),
            DownloadOptions(root=tmp_path, rest_url=sandbox.rest_url, archive_url=archive.url, clock=now,
                            progress=False),
        )
    finally:
        archive.close()
    assert summary.results[0].fetched == {"monthly": 1, "daily": 9, "rest": 1}
    got = KlineStore(tmp_path).read("FILUSDT", "1h")
    assert got.open_time[-1] == ms("2023-09-10 05:00")  # the 06:00 kline is still open at 06:30
    h1 = load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m", start=ms("2023-09-10"),
                     end=ms("2023-09-10 06:00"))
    tail = got.between(ms("2023-09-10"), None)
    np.testing.assert_array_equal(tail.close, h1.close[59::60])  # REST rows are the real klines aggregated
    assert len(got) == 744 + 9 * 24 + 6 and not got.gaps


def test_pacing_waits_for_the_next_minute_near_the_weight_limit(bg: Background) -> None:
    used = iter([100, 1900, 1990, 10])

    async def handle(request: web.Request) -> web.Response:
        return web.json_response([], headers={"X-MBX-USED-WEIGHT-1M": str(next(used))})

    app = web.Application()
    app.router.add_get("/w", handle)
    server = AppServer(bg, app)
    clock = FixedClock(ms("2023-09-01 12:00:15"))
    slept = clock.slept

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            client = HttpClient(session, clock=clock, weight_limit=2400, pace_ratio=0.8)
            for _ in range(4):
                await client.get(f"{server.url}/w", weight=10)

    try:
        asyncio.run(run())
    finally:
        server.close()
    assert slept == [45.5]  # 1990 + 10 > 0.8 * 2400: wait out the rest of the minute (45 s), once
