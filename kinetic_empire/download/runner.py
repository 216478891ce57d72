"""Download runs: plan what is missing, fetch it from the archive or REST, validate, write month by month.

Each chunk (at most a month) is committed as soon as it is fetched: the partition write (atomic) and
then the coverage record (atomic), together in one worker thread so a Ctrl-C or a cancelled task
never separates them. A crash at any point leaves a readable store; a re-run fetches what is missing.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from kinetic_empire.core.clock import Clock, LiveClock
from kinetic_empire.data import Gap, KlineFrame, KlineStore
from kinetic_empire.data._util import format_ms, interval_ms
from kinetic_empire.download.archive import DEFAULT_ARCHIVE_URL, ArchiveSource
from kinetic_empire.download.funding import FundingRows, FundingStore
from kinetic_empire.download.http import DownloadError, HttpClient, RetryPolicy
from kinetic_empire.download.periods import Range, align_up, day_start, subtract, union
from kinetic_empire.download.plan import DAILY, MONTHLY, NONE, REST, Chunk, fallback, plan_chunks, source_gaps
from kinetic_empire.download.progress import DownloadProgress, progress_enabled
from kinetic_empire.download.rest import DEFAULT_REST_URL, SETTLE_MS, RestSource
from kinetic_empire.download.series import Kind, SeriesKey
from kinetic_empire.download.stores import Coverage, MarkKlineStore, stored_spans


@dataclass(frozen=True, slots=True)
class DownloadRequest:
    """What to download; times are epoch ms, ``[start_ms, end_ms)``."""

    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    start_ms: int
    end_ms: int
    source: str = "auto"
    funding: bool = True
    mark: bool = False

    def series(self) -> list[SeriesKey]:
        out: list[SeriesKey] = []
        for sym in self.symbols:
            out.extend(SeriesKey(Kind.KLINES, sym, tf) for tf in self.timeframes)
            if self.mark:
                out.extend(SeriesKey(Kind.MARK, sym, tf) for tf in self.timeframes)
            if self.funding:
                out.append(SeriesKey(Kind.FUNDING, sym))
        return out


@dataclass
class DownloadOptions:
    """Where from, where to, and how hard to try. Tests point both URLs at 127.0.0.1."""

    root: Path
    rest_url: str = DEFAULT_REST_URL
    archive_url: str = DEFAULT_ARCHIVE_URL
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=LiveClock)
    """Time for plans (what has closed), pacing, backoff and the summary's duration."""
    progress: bool | None = None
    """Draw progress bars: None = when stderr is a terminal."""
    onboard: dict[str, int] = field(default_factory=dict)
    """Listing time per symbol (exchangeInfo's onboardDate); nothing before it is requested."""
    weight_limit: int = 2400
    """The venue's REQUEST_WEIGHT per minute (exchangeInfo rateLimits); requests slow down near it."""


@dataclass
class SeriesResult:
    """What one series' download did."""

    key: SeriesKey
    rows_added: int = 0
    gaps: list[Gap] = field(default_factory=list)
    unavailable: list[Range] = field(default_factory=list)
    fetched: Counter[str] = field(default_factory=Counter)
    """Chunks fetched per method (monthly, daily, rest)."""


@dataclass
class DownloadSummary:
    results: list[SeriesResult]
    seconds: float
    bytes: int
    retries: int

    @property
    def rows_added(self) -> int:
        return sum(r.rows_added for r in self.results)

    @property
    def gaps_found(self) -> int:
        return sum(len(r.gaps) for r in self.results)

    def lines(self) -> list[str]:
        """A human summary: one line per series that changed or has a problem, then the totals."""
        out = []
        for r in self.results:
            sources = ", ".join(f"{n} {m}" for m, n in sorted(r.fetched.items()))
            if not (r.rows_added or r.gaps or r.unavailable or sources):
                continue
            line = f"  {r.key!s:<24} +{r.rows_added:>9,} rows"
            if sources:
                line += f"  ({sources})"
            if r.gaps:
                missing = sum(g.missing for g in r.gaps)
                shown = "; ".join(str(g) for g in r.gaps[:3]) + ("; ..." if len(r.gaps) > 3 else "")
                line += f"  {len(r.gaps)} gap(s) at the source, {missing} missing: {shown}"
            if r.unavailable:
                spans = union(r.unavailable)
                shown = "; ".join(f"{format_ms(s)}..{format_ms(e)}" for s, e in spans[:3])
                shown += "; ..." if len(spans) > 3 else ""
                line += f"  not in the archive: {shown}"
            out.append(line)
        rate = self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
        out.append(
            f"{self.rows_added:,} rows added, {self.gaps_found} gap(s) found, "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s ({rate:.1f} MB/s)"
            + (f", {self.retries} retried request(s)" if self.retries else "")
        )
        return out


def download(request: DownloadRequest, options: DownloadOptions) -> DownloadSummary:
    """Run a download to completion (blocking). Ctrl-C stops it with the store consistent."""
    return asyncio.run(download_async(request, options))


async def download_async(request: DownloadRequest, options: DownloadOptions) -> DownloadSummary:
    start = options.clock.monotonic()
    progress = DownloadProgress(list(request.symbols), progress_enabled(options.progress))
    total_bytes = 0

    def on_bytes(n: int) -> None:
        nonlocal total_bytes
        total_bytes += n
        progress.transferred(n)

    connector = aiohttp.TCPConnector(limit=max(4, options.concurrency * 2))
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            client = HttpClient(session, options.retry, options.clock,
                                weight_limit=options.weight_limit, concurrency=options.concurrency,
                                on_bytes=on_bytes)
            with tempfile.TemporaryDirectory(prefix="kinetic-download-") as staging:
                run = _Run(request, options, client, Path(staging), progress)
                results = await run.all()
    finally:
        progress.close()
    return DownloadSummary(results, options.clock.monotonic() - start, total_bytes, client.retries)


class _Run:
    """One download run: the sources, the stores and a result per series."""

    def __init__(self, request: DownloadRequest, options: DownloadOptions, client: HttpClient, staging: Path,
                 progress: DownloadProgress) -> None:
        self.request = request
        self.options = options
        self.root = Path(options.root)
        self.archive = ArchiveSource(client, options.archive_url, staging)
        self.rest = RestSource(client, options.rest_url, options.clock)
        self.klines = KlineStore(self.root)
        self.mark = MarkKlineStore(self.root)
        self.funding = FundingStore(self.root)
        self.progress = progress
        self.now = options.clock.now_ms()
        self.today = day_start(self.now)
        self._locks: dict[SeriesKey, threading.Lock] = {}
        self._coverage: dict[SeriesKey, Coverage] = {}

    async def all(self) -> list[SeriesResult]:
        keys = self.request.series()
        results = {k: SeriesResult(k) for k in keys}
        jobs: list[tuple[SeriesKey, Chunk]] = []
        for key in keys:
            chunks = self.plan(key)
            jobs.extend((key, c) for c in chunks)
            self.progress.add_work(key.symbol, len(chunks))
        try:
            async with asyncio.TaskGroup() as tg:
                for key, chunk in jobs:
                    tg.create_task(self.chunk(key, chunk, results[key]))
        except BaseExceptionGroup as group:
            raise _first(group) from None
        return list(results.values())

    def plan(self, key: SeriesKey) -> list[Chunk]:
        """Chunks for what `key` lacks in the requested window (nothing before listing, nothing unclosed)."""
        start, end = self.request.start_ms, min(self.request.end_ms, self.now)
        listed = self.options.onboard.get(key.symbol)
        if listed is not None:
            start = max(start, day_start(listed))
        if key.kind is not Kind.FUNDING:
            assert key.timeframe is not None
            interval = interval_ms(key.timeframe)
            start = align_up(start, interval, key.timeframe)
            closed_end = align_up(self.now - SETTLE_MS - interval + 1, interval, key.timeframe)  # only closed klines
            end = min(align_up(end, interval, key.timeframe), closed_end)
        if end <= start:
            return []
        coverage = Coverage.load(self.root, key)
        self._coverage[key] = coverage
        have = list(coverage.covered)
        if key.kind is not Kind.FUNDING:
            assert key.timeframe is not None
            have += stored_spans(self._store(key), key.symbol, key.timeframe)
        missing = subtract([(start, end)], have)
        return plan_chunks(missing, self.request.source, self.today, daily=key.kind is not Kind.FUNDING)

    async def chunk(self, key: SeriesKey, chunk: Chunk, result: SeriesResult) -> None:
        """Fetch one chunk (falling back when the archive lacks it) and commit it."""
        daily = key.kind is not Kind.FUNDING
        data = await self._fetch(key, chunk)
        if data is None:
            if chunk.method == NONE:
                result.unavailable.append((chunk.start, chunk.end))
                self.progress.done(key.symbol, 0)
                return
            more = fallback(chunk, self.request.source, self.today, daily=daily)
            self.progress.add_work(key.symbol, len(more))
            self.progress.done(key.symbol, 0)
            for c in more:  # in order, so a month's days are written oldest first
                await self.chunk(key, c, result)
            return
        result.fetched[chunk.method] += 1
        rows = await asyncio.to_thread(self._commit, key, chunk, data, result)
        self.progress.done(key.symbol, rows)

    async def _fetch(self, key: SeriesKey, chunk: Chunk) -> KlineFrame | FundingRows | None:
        if chunk.method == NONE:
            return None
        if key.kind is Kind.FUNDING:
            if chunk.method == MONTHLY:
                return await self.archive.funding(key.symbol, chunk.label)
            return await self.rest.funding(key.symbol, chunk.start, chunk.end)
        if chunk.method in (MONTHLY, DAILY):
            return await self.archive.klines(key, chunk.method, chunk.label)
        assert chunk.method == REST
        return await self.rest.klines(key, chunk.start, chunk.end)

    def _commit(self, key: SeriesKey, chunk: Chunk, data: KlineFrame | FundingRows, result: SeriesResult) -> int:
        """Write the chunk's rows, then record it as covered; runs in a worker thread, one per series at a time."""
        lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            gaps: list[Gap] = []
            if isinstance(data, FundingRows):
                part: Any = data.between(chunk.start, chunk.end)
                self.funding.write(part)
            else:
                assert key.timeframe is not None
                part = data.between(chunk.start, chunk.end)
                gaps = source_gaps(part.open_time, chunk.start, chunk.end, key.timeframe)
                if len(part):
                    self._store(key).write(part)
            coverage = self._coverage.get(key) or Coverage.load(self.root, key)
            coverage.add((chunk.start, chunk.end), gaps)
            coverage.save()
            result.rows_added += len(part)
            result.gaps.extend(gaps)
            return len(part)

    def _store(self, key: SeriesKey) -> KlineStore:
        return self.mark if key.kind is Kind.MARK else self.klines


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first real error of a task group (a DownloadError or DataError rather than a cancellation)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


def listing_times(exchange_info: dict[str, Any]) -> dict[str, int]:
    """``{symbol: onboardDate}`` from an exchangeInfo payload."""
    out = {}
    for s in exchange_info.get("symbols", []):
        if isinstance(s, dict) and isinstance(s.get("onboardDate"), int):
            out[str(s["symbol"])] = int(s["onboardDate"])
    return out


__all__ = [
    "DownloadError",
    "DownloadOptions",
    "DownloadRequest",
    "DownloadSummary",
    "SeriesResult",
    "download",
    "download_async",
    "listing_times",
]
