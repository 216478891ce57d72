"""The data.binance.vision source: monthly and daily ZIPs, each verified against its ``.CHECKSUM``.

A missing file (HTTP 404) is ``None``, not an error: the caller falls back to daily files or REST.
Everything else that is wrong with a file (an HTML page where a ZIP was expected, a checksum mismatch,
a corrupt ZIP, a truncated or invalid CSV) is an error naming the file, raised before anything is
written to the store.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
import tempfile
import zipfile
import zlib
from pathlib import Path

from kinetic_empire.core.errors import DataError
from kinetic_empire.data import KlineFrame, read_kline_file
from kinetic_empire.download.funding import FundingRows
from kinetic_empire.download.http import ChecksumError, DownloadError, HttpClient
from kinetic_empire.download.series import Kind, SeriesKey

DEFAULT_ARCHIVE_URL = "https://data.binance.vision"
MONTHLY, DAILY = "monthly", "daily"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def archive_path(key: SeriesKey, granularity: str, label: str) -> str:
    """Path of one archive file, e.g. ``data/futures/um/monthly/klines/FILUSDT/1m/FILUSDT-1m-2023-08.zip``."""
    base = f"data/futures/um/{granularity}/{key.kind.value}/{key.symbol}"
    if key.kind is Kind.FUNDING:
        return f"{base}/{key.symbol}-fundingRate-{label}.zip"
    return f"{base}/{key.timeframe}/{key.symbol}-{key.timeframe}-{label}.zip"


class ArchiveSource:
    """Fetches, verifies and parses archive files; `staging` holds each ZIP while it is parsed."""

    def __init__(self, client: HttpClient, base_url: str, staging: Path) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.staging = Path(staging)

    async def klines(self, key: SeriesKey, granularity: str, label: str) -> KlineFrame | None:
        """The klines (or mark-price klines) of one month or day, validated; None if not published."""
        assert key.timeframe is not None
        path = archive_path(key, granularity, label)
        data = await self.fetch(path)
        if data is None:
            return None
        url = f"{self.base_url}/{path}"
        return await asyncio.to_thread(self._parse_klines, data, url, key)

    async def funding(self, symbol: str, label: str) -> FundingRows | None:
        """One month of funding settlements; None if not published."""
        path = archive_path(SeriesKey(Kind.FUNDING, symbol), "monthly", label)
        data = await self.fetch(path)
        if data is None:
            return None
        return parse_funding_zip(data, f"{self.base_url}/{path}", symbol)

    async def fetch(self, path: str) -> bytes | None:
        """Verified bytes of one archive file, or None when it does not exist (404)."""
        url = f"{self.base_url}/{path}"
        name = path.rsplit("/", 1)[-1]
        reply = await self.client.get(url, what=name)
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise DownloadError(f"{url}: HTTP {reply.status} {reply.binance_error()[1][:100]}".rstrip())
        data = reply.body
        content_type = {k.lower(): v for k, v in reply.headers.items()}.get("content-type", "")
        head = data[:512].lstrip().lower()
        if "html" in content_type or head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
            raise DataError(url, "format", "expected a ZIP archive, got an HTML/XML page (an error page?)")
        expected = await self._checksum(url, name)
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ChecksumError(f"checksum mismatch for {name}: expected {expected}, got {actual} ({url})")
        return data

    async def _checksum(self, url: str, name: str) -> str:
        reply = await self.client.get(f"{url}.CHECKSUM", what=f"{name}.CHECKSUM")
        if reply.status == 404:
            raise DownloadError(f"{url}.CHECKSUM: not found, so {name} cannot be verified")
        if reply.status != 200:
            raise DownloadError(f"{url}.CHECKSUM: HTTP {reply.status}")
        fields = reply.body.decode("utf-8", "replace").split()
        if not fields or not _SHA256.match(fields[0]):
            raise DownloadError(f"{url}.CHECKSUM: not a '<sha256>  <file>' line: {reply.body[:80]!r}")
        if len(fields) > 1 and fields[1].lstrip("*") != name:
            raise DownloadError(f"{url}.CHECKSUM: names {fields[1]!r}, not {name!r}")
        return fields[0].lower()

    def _parse_klines(self, data: bytes, url: str, key: SeriesKey) -> KlineFrame:
        """Parse through the data package's reader (so the rules are the loader's), naming the URL."""
        self.staging.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self.staging))  # klines and mark-price files share names
        tmp = folder / url.rsplit("/", 1)[-1]
        try:
            tmp.write_bytes(data)
            frame = read_kline_file(tmp, key.symbol, key.timeframe, gap_policy="keep")
        except DataError as exc:
            raise renamed(exc, url) from exc
        finally:
            tmp.unlink(missing_ok=True)
            folder.rmdir()
        return KlineFrame(frame.symbol, frame.timeframe, frame.open_time, frame.open, frame.high, frame.low,
                          frame.close, frame.volume, gaps=frame.gaps, source=url)


def renamed(exc: DataError, file: str) -> DataError:
    """The same DataError, naming `file` (a URL) instead of the staging path it was read from."""
    prefix = f"{exc.file}" + (f", row {exc.row}" if exc.row is not None else "") + f": [{exc.rule}] "
    text = str(exc)
    message = text[len(prefix):] if text.startswith(prefix) else text
    return DataError(file, exc.rule, message, row=exc.row)


def parse_funding_zip(data: bytes, file: str, symbol: str) -> FundingRows:
    """An archive fundingRate ZIP (one CSV inside); see :func:`parse_funding_csv`."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise DataError(file, "format", f"zip must hold exactly one CSV, holds {len(members)} files")
            text = zf.read(members[0]).decode("utf-8-sig")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DataError(file, "format", f"not a readable zip archive (truncated download?): {exc}") from exc
    return parse_funding_csv(text, file, symbol)


def parse_funding_csv(text: str, file: str, symbol: str) -> FundingRows:
    """``calc_time,funding_interval_hours,last_funding_rate`` rows (header optional); no mark price."""
    lines = [r for r in csv.reader(io.StringIO(text)) if r]
    if lines and not lines[0][0].strip().isdigit():
        lines = lines[1:]
    if not lines:
        raise DataError(file, "format", "no funding rows in file")
    times: list[int] = []
    rates: list[str] = []
    for i, r in enumerate(lines):
        if len(r) != 3 or not r[0].strip().isdigit():
            raise DataError(file, "parse", f"expected calc_time,funding_interval_hours,last_funding_rate, got {r!r}",
                            row=i + 1)
        times.append(int(r[0]))
        rates.append(r[2].strip())
    return FundingRows.build(symbol, times, rates, [None] * len(times), file)
