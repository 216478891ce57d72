"""``kinetic download``: options at module level (argparse only), the downloader imported in ``run``."""

from __future__ import annotations

import argparse

from .options import ARCHIVE_URL, DATA_DIR, DOWNLOAD_SOURCES, REST_URL

DESCRIPTION = """\
Download Binance USD-M klines, funding rates (unless --no-funding) and mark-price klines (with --mark)
into the local parquet store (--data-dir). Past months and days come from data.binance.vision's
checksummed archive files, the recent tail from the REST API, paced under its weight limit. Bad input
(an unknown symbol, inverted dates, a timeframe Binance does not offer) is refused before the first
byte is downloaded. Interrupted? Run the same command again: what is stored is complete and kept."""

EXAMPLES = """\
  kinetic download --symbols FILUSDT --timeframes 1m --start 2024-01-01 --end 2024-03-31
  kinetic download --symbols FILUSDT,NEARUSDT --timeframes 1m,1h --start 2024-01-01 --mark
  kinetic download --symbols BTCUSDT --start 2023-01-01 --source archive --no-funding
  kinetic data list                                   # what the store holds afterwards"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", required=True, help="comma-separated USD-M symbols, e.g. FILUSDT,NEARUSDT")
    parser.add_argument("--timeframes", default="1m", help="comma-separated kline intervals (default 1m), e.g. 1m,1h")
    parser.add_argument("--start", required=True, help="UTC start date (YYYY-MM-DD or ISO date-time), inclusive")
    parser.add_argument("--end", help="UTC end date, inclusive of that day (YYYY-MM-DD); default: now")
    parser.add_argument("--source", choices=DOWNLOAD_SOURCES, default="auto",
                        help="archive: data.binance.vision files only; rest: the REST API only; "
                             "auto (default): the archive for past months and days, REST for the recent tail")
    parser.add_argument("--data-dir", default=DATA_DIR, help=f"store folder (default {DATA_DIR})")
    parser.add_argument("--rest-url", default=REST_URL, help=f"REST base URL (default {REST_URL})")
    parser.add_argument("--archive-url", default=ARCHIVE_URL, help=f"archive base URL (default {ARCHIVE_URL})")
    parser.add_argument("--funding", action=argparse.BooleanOptionalAction, default=True,
                        help="also download funding-rate history (default: yes)")
    parser.add_argument("--mark", action="store_true", help="also download mark-price klines")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel requests (default 4)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars (default: when stderr is a terminal)")


def run(args: argparse.Namespace) -> int:
    from ..download.cli import download_main

    return download_main(args)
