"""``kinetic data list|import``: options at module level (argparse only), the store imported in ``run``."""

from __future__ import annotations

import argparse

from .options import DATA_DIR

DESCRIPTION = """\
The local kline store (--data-dir, where `kinetic download` puts data and backtests read it).
`list` shows what it holds: symbol, series, timeframe, first and last kline, rows and gaps. `import`
adds data.binance.vision files you downloaded by hand (ZIP or CSV, with or without header, ms or µs
timestamps; klines, mark-price klines and funding rates); a bad file is named and nothing is changed."""

EXAMPLES = """\
  kinetic data list
  kinetic data import ~/Downloads/*.zip               # files fetched by hand, into the store
  kinetic data import archive/futures/um/monthly/klines --data-dir /data/store"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="{list,import}", required=True)
    p = sub.add_parser("list", help="what the store holds: symbol, timeframe, first and last kline, rows, gaps")
    p.add_argument("--data-dir", default=DATA_DIR, help=f"store folder (default {DATA_DIR})")
    p = sub.add_parser("import", help="import data.binance.vision files (ZIP/CSV, with or without header, ms or µs)")
    p.add_argument("paths", nargs="+", help="files or folders (searched recursively)")
    p.add_argument("--data-dir", default=DATA_DIR, help=f"store folder (default {DATA_DIR})")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")


def run(args: argparse.Namespace) -> int:
    from ..download.cli import data_main

    return data_main(args)
