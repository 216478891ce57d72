"""Historical data from Binance USD-M futures into the local store: klines, mark-price klines, funding.

Two sources: the REST API (``/fapi/v1/klines``, ``markPriceKlines``, ``fundingRate``) and the public
archive laid out like data.binance.vision (monthly and daily ZIPs, SHA-256 verified). ``auto`` takes
whole past months and days from the archive and the recent tail from REST. Runs are incremental and
resumable; every chunk is validated with the backtester's own rules before it is written.

Typical use::

    from kinetic_empire.download import DownloadOptions, DownloadRequest, download, load_funding
    req = DownloadRequest(("FILUSDT",), ("1m",), start_ms, end_ms, source="auto")
    summary = download(req, DownloadOptions(root=Path("data_store")))
    rates = load_funding("data_store", "FILUSDT", "2023-08-01", "2023-12-01")
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kinetic_empire.download.archive import DEFAULT_ARCHIVE_URL, ArchiveSource, archive_path
    from kinetic_empire.download.funding import FundingRows, FundingStore, load_funding
    from kinetic_empire.download.http import ChecksumError, DownloadError, HttpClient, RetryPolicy
    from kinetic_empire.download.importer import ImportSummary, import_paths
    from kinetic_empire.download.rest import DEFAULT_REST_URL, RestSource
    from kinetic_empire.download.runner import (
        DownloadOptions,
        DownloadRequest,
        DownloadSummary,
        SeriesResult,
        download,
        download_async,
    )
    from kinetic_empire.download.series import Kind, SeriesKey
    from kinetic_empire.download.stores import Coverage, MarkKlineStore

_MODULE_OF = {
    "DEFAULT_ARCHIVE_URL": "archive", "ArchiveSource": "archive", "archive_path": "archive",
    "FundingRows": "funding", "FundingStore": "funding", "load_funding": "funding",
    "ChecksumError": "http", "DownloadError": "http", "HttpClient": "http", "RetryPolicy": "http",
    "ImportSummary": "importer", "import_paths": "importer",
    "DEFAULT_REST_URL": "rest", "RestSource": "rest",
    "DownloadOptions": "runner", "DownloadRequest": "runner", "DownloadSummary": "runner", "SeriesResult": "runner",
    "download": "runner", "download_async": "runner",
    "Kind": "series", "SeriesKey": "series",
    "Coverage": "stores", "MarkKlineStore": "stores",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """Names are imported on first use: a backtest reading funding rates from a store must not pull in the
    HTTP client (aiohttp, ~11 MiB) that only downloading needs."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_ARCHIVE_URL",
    "DEFAULT_REST_URL",
    "ArchiveSource",
    "ChecksumError",
    "Coverage",
    "DownloadError",
    "DownloadOptions",
    "DownloadRequest",
    "DownloadSummary",
    "FundingRows",
    "FundingStore",
    "HttpClient",
    "ImportSummary",
    "Kind",
    "MarkKlineStore",
    "RestSource",
    "RetryPolicy",
    "SeriesKey",
    "SeriesResult",
    "archive_path",
    "download",
    "download_async",
    "import_paths",
    "load_funding",
]
