"""``kinetic data list|import``: options at module level (argparse only), the store imported in ``run``."""

from __future__ import annotations

import argparse

from .options import DATA_DIR

DESCRIPTION = """\
The local kline store (--data-dir, where `kinetic download` puts data and backtests read it).
`list` shows what it holds: symbol, series, timeframe, first and last kline, rows and gaps, and then the
bundled sample klines (backtests/data, or $KINETIC_DATA_DIR), which backtests read directly. `import`
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

    code = data_main(args)
    if args.data_command == "list" and code == 0:
        for line in sample_lines():
            print(line)
    return code


def sample_lines() -> list[str]:
    """The bundled sample's series from its file names (data.binance.vision: SYMBOL-TF-YYYY-MM[-DD].zip):
    instant, no file is read. Empty when the sample folder is absent."""
    import calendar
    import re
    from datetime import UTC, datetime

    from ..core.timeframes import TIMEFRAME_MS
    from ..data import find_kline_files, sample_data_dir

    root = sample_data_dir()
    if not root.is_dir():
        return []
    period = re.compile(r"^(?P<sym>[A-Z0-9]+)-(?P<tf>\w+)-(?P<y>\d{4})-(?P<m>\d{2})(?:-(?P<d>\d{2}))?\.")
    series: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
    for path in find_kline_files(root):
        m = period.match(path.name)
        if m is None or m["tf"] not in TIMEFRAME_MS:
            continue
        y, mo = int(m["y"]), int(m["m"])
        first_day = int(m["d"]) if m["d"] else 1
        last_day = int(m["d"]) if m["d"] else calendar.monthrange(y, mo)[1]
        begin = datetime(y, mo, first_day, tzinfo=UTC)
        end = datetime(y, mo, last_day, 23, 59, tzinfo=UTC).timestamp() * 1000 + 60_000 - TIMEFRAME_MS[m["tf"]]
        series.setdefault((m["sym"], m["tf"]), []).append((begin, datetime.fromtimestamp(end / 1000, tz=UTC)))
    if not series:
        return []
    rows = [(sym, tf, min(b for b, _ in spans).strftime("%Y-%m-%d %H:%M:%SZ"),
             max(e for _, e in spans).strftime("%Y-%m-%d %H:%M:%SZ"), str(len(spans)))
            for (sym, tf), spans in sorted(series.items())]  # fmt: skip
    head = ("symbol", "timeframe", "first", "last", "files")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    lines = ["", f"bundled sample in {root} (backtests read it directly; `kinetic data import {root}` "
                 "copies it into the store):"]  # fmt: skip
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in (head, *rows)]
    return lines
