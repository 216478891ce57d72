"""What ``kinetic download`` and ``kinetic data list|import`` do, once their options are parsed.

The options live in the light modules ``kinetic_empire.cli.download`` and ``kinetic_empire.cli.data``,
so ``--help`` never imports this module (nor aiohttp and pyarrow).

Bad input (an unknown symbol, inverted dates, a timeframe Binance does not offer) is rejected before
the first byte is downloaded. Errors are :class:`KineticError` so the ``kinetic`` entry point prints
them as ``error: ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp

from kinetic_empire.core.clock import LiveClock
from kinetic_empire.core.errors import KineticError
from kinetic_empire.core.timeframes import TIMEFRAME_MS
from kinetic_empire.data import KlineStore
from kinetic_empire.data._util import format_ms
from kinetic_empire.download.funding import FundingStore
from kinetic_empire.download.http import DownloadError, HttpClient, RetryPolicy
from kinetic_empire.download.importer import import_paths
from kinetic_empire.download.periods import parse_time
from kinetic_empire.download.rest import RestSource
from kinetic_empire.download.runner import DownloadOptions, DownloadRequest, download, listing_times
from kinetic_empire.download.stores import MarkKlineStore
from kinetic_empire.resources import exchange_info_payload

DEFAULT_STORE = "data_store"  # kinetic_empire.cli.options.DATA_DIR: an absent default store is just empty
_SYMBOL = re.compile(r"[A-Z0-9]{2,40}")
INTERRUPTED = ("interrupted: every month written so far is complete and the store is consistent; "
               "run the same command again to resume")


# ------------------------------------------------------------------------------------------ download


def download_main(args: argparse.Namespace) -> int:
    """Run ``kinetic download``; returns the exit code (0 ok, 130 interrupted). Bad input raises KineticError."""
    clock = LiveClock()
    request, options = build_download(args, clock.now_ms())
    try:
        summary = download(request, options)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    for line in summary.lines():
        print(line)
    return 0


def build_download(args: argparse.Namespace, now_ms: int) -> tuple[DownloadRequest, DownloadOptions]:
    """Validate the command line into a request; asks the venue's exchangeInfo unless the source is archive."""
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in str(args.symbols).split(",") if s.strip()))
    if not symbols:
        raise KineticError("--symbols: give at least one symbol, e.g. --symbols FILUSDT,NEARUSDT")
    for sym in symbols:  # before any request or file: a symbol becomes a folder name in the store
        if not _SYMBOL.fullmatch(sym):
            raise KineticError(f"--symbols: {sym!r} is not a symbol (Binance symbols are 2-40 letters and digits, "
                               "e.g. FILUSDT)")
    timeframes = tuple(dict.fromkeys(t.strip() for t in str(args.timeframes).split(",") if t.strip()))
    if not timeframes:
        raise KineticError("--timeframes: give at least one, e.g. --timeframes 1m,1h")
    for tf in timeframes:
        check_timeframe(tf)
    root = Path(args.data_dir)
    if root.exists() and not root.is_dir():
        raise KineticError(f"--data-dir {root}: is a file, not a folder (the store is a folder)")
    start = parse_time(args.start, what="--start")
    end = parse_time(args.end, what="--end", end=True) if args.end else now_ms
    if end <= start:
        raise KineticError(f"--end {args.end or 'now'} is not after --start {args.start}: nothing to download")
    if start >= now_ms:
        raise KineticError(f"--start {args.start} is in the future")
    if args.concurrency < 1:
        raise KineticError("--concurrency must be at least 1")
    info = exchange_info_payload(True)
    venue: dict[str, Any] | None = None
    if args.source != "archive":
        venue = fetch_exchange_info(args.rest_url)
    known = {str(s["symbol"]) for s in info["symbols"]}
    if venue:
        known |= {str(s["symbol"]) for s in venue["symbols"]}
    for sym in symbols:
        if sym not in known:
            close = difflib.get_close_matches(sym, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KineticError(f"unknown symbol {sym}: not a Binance USD-M futures symbol{hint}")
    onboard = listing_times(info) | (listing_times(venue) if venue else {})
    request = DownloadRequest(symbols, timeframes, start, end, source=args.source, funding=bool(args.funding),
                              mark=bool(args.mark))
    options = DownloadOptions(root=Path(args.data_dir), rest_url=args.rest_url, archive_url=args.archive_url,
                              concurrency=args.concurrency, progress=args.progress, onboard=onboard,
                              weight_limit=weight_limit(venue) if venue else 2400)
    return request, options


def check_timeframe(tf: str) -> None:
    if tf in TIMEFRAME_MS:
        return
    if tf == "1M":
        raise KineticError("timeframe 1M (monthly klines) is not supported: months have no fixed length")
    raise KineticError(f"timeframe {tf!r} is not offered by Binance USD-M; choose from {', '.join(TIMEFRAME_MS)}")


def fetch_exchange_info(rest_url: str) -> dict[str, Any]:
    """The venue's exchangeInfo (for its symbols, listing dates and weight limit)."""

    async def get() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            client = HttpClient(session, RetryPolicy(max_retries=2, timeout=20))
            return await RestSource(client, rest_url, LiveClock()).exchange_info()

    try:
        return asyncio.run(get())
    except DownloadError as exc:
        raise DownloadError(f"cannot read exchangeInfo from {rest_url} ({exc}); "
                            "use --source archive to download from the archive only") from exc


def weight_limit(info: dict[str, Any]) -> int:
    """REQUEST_WEIGHT per minute from exchangeInfo's rateLimits (Binance's 2400 if absent)."""
    for r in info.get("rateLimits", []):
        if r.get("rateLimitType") == "REQUEST_WEIGHT" and r.get("interval") == "MINUTE":
            return int(r.get("limit", 2400)) // max(1, int(r.get("intervalNum", 1)))
    return 2400


# ------------------------------------------------------------------------------------------ data


def data_main(args: argparse.Namespace) -> int:
    """Run ``kinetic data list`` or ``kinetic data import``."""
    root = Path(args.data_dir)
    if root.exists() and not root.is_dir():
        raise KineticError(f"--data-dir {root}: is a file, not a folder (the store is a folder)")
    if args.data_command == "list":
        if not root.exists() and str(args.data_dir) != DEFAULT_STORE:
            raise KineticError(f"--data-dir {root}: no such folder (kinetic download or kinetic data import "
                               "creates it)")
        for line in catalog_lines(Path(args.data_dir)):
            print(line)
        return 0
    if args.data_command == "import":
        try:
            summary = import_paths(args.paths, Path(args.data_dir), progress=args.progress)
        except KeyboardInterrupt:
            print("interrupted: each file imported so far is in the store and recorded as covered, the file being "
                  "written when it stopped is either whole or absent; run the same command again to finish "
                  "(re-importing a file changes nothing)", file=sys.stderr)
            return 130
        for line in summary.lines():
            print(line)
        return 0
    raise KineticError(f"unknown data command {args.data_command!r}")


def catalog_lines(root: Path) -> list[str]:
    """The ``kinetic data list`` table."""
    rows: list[tuple[str, ...]] = []
    for series, store in (("klines", KlineStore(root)), ("mark", MarkKlineStore(root))):
        for e in store.catalog():
            rows.append((e.symbol, series, e.timeframe, format_ms(e.first_open_ms), format_ms(e.last_open_ms),
                         f"{e.rows:,}", str(e.gaps)))
    funding = FundingStore(root)
    for sym in funding.symbols():
        f = funding.read(sym)
        if len(f):
            rows.append((sym, "funding", "-", format_ms(int(f.time[0])), format_ms(int(f.time[-1])),
                         f"{len(f):,}", "-"))
    if not rows:
        return [f"no data in {root} (kinetic download or kinetic data import puts it there)"]
    rows.sort(key=lambda r: (r[0], r[1] != "klines", r[1], TIMEFRAME_MS.get(r[2], 0)))
    head = ("symbol", "series", "timeframe", "first", "last", "rows", "gaps")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    right = {5, 6}

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return [fmt(head), *(fmt(r) for r in rows)]
