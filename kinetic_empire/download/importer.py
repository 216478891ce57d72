"""``kinetic data import``: data.binance.vision files a user downloaded by hand, into the store.

Kline files (ZIP, CSV, CSV.GZ; with or without header; ms or µs) are read by the data package's own
reader, so the rules are exactly the backtester's. Files under a ``markPriceKlines`` folder go to the
mark-price store and ``<SYMBOL>-fundingRate-<YYYY-MM>`` files to the funding store. Every file of a
series is read and validated before the first partition of that series is written, so a bad file
leaves that series as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from kinetic_empire.core.clock import Clock, LiveClock
from kinetic_empire.core.errors import DataError
from kinetic_empire.data import Gap, KlineStore, kline_file_name, read_kline_file
from kinetic_empire.download.archive import parse_funding_csv, parse_funding_zip
from kinetic_empire.download.funding import FundingRows, FundingStore
from kinetic_empire.download.periods import DAY_MS, next_month, parse_time
from kinetic_empire.download.plan import source_gaps
from kinetic_empire.download.progress import progress_enabled
from kinetic_empire.download.series import Kind, SeriesKey
from kinetic_empire.download.stores import Coverage, MarkKlineStore

_FUNDING_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-fundingRate-(?P<month>\d{4}-\d{2})\.(zip|csv)$")
_PERIOD = re.compile(r"-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv|csv\.gz)$")
_SUFFIXES = (".zip", ".csv", ".csv.gz")


@dataclass
class ImportSummary:
    files: int = 0
    rows: int = 0
    seconds: float = 0.0
    series: dict[str, int] = field(default_factory=dict)
    """Rows per series label (``FILUSDT 1m``)."""
    gaps: dict[str, list[Gap]] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [f"  {label:<24} {rows:>10,} rows" + (f"  {len(self.gaps[label])} gap(s)" if self.gaps.get(label) else "")
               for label, rows in sorted(self.series.items())]
        out.append(f"imported {self.rows:,} rows from {self.files} file(s) in {self.seconds:.2f} s "
                   f"({self.rows_per_second:,.0f} rows/s)")
        return out


def import_paths(paths: Sequence[Path | str], root: Path | str, *, progress: bool | None = None,
                 workers: int | None = None, clock: Clock | None = None) -> ImportSummary:
    """Import kline, mark-price and funding files (or folders of them, searched recursively) into `root`.

    ``clock`` only times the import (for the summary's rows per second)."""
    clock = clock or LiveClock()
    t0 = clock.monotonic()
    groups = _group(_expand(paths))
    summary = ImportSummary()
    total = sum(len(files) for files in groups.values())
    bar = tqdm(total=total, desc="import", unit="file", disable=not progress_enabled(progress))
    workers = workers or min(8, (os.cpu_count() or 2))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for key, files in groups.items():
                rows = _import_series(key, files, Path(root), pool, bar.update, summary)
                summary.series[str(key)] = summary.series.get(str(key), 0) + rows
                summary.rows += rows
                summary.files += len(files)
                elapsed = clock.monotonic() - t0
                bar.set_postfix_str(f"{summary.rows / elapsed if elapsed else 0:,.0f} rows/s")
    finally:
        bar.close()
    summary.seconds = clock.monotonic() - t0
    return summary


def _import_series(key: SeriesKey, files: list[Path], root: Path, pool: ThreadPoolExecutor,
                   tick: Callable[[int], object], summary: ImportSummary) -> int:
    if key.kind is Kind.FUNDING:
        funding = [_read_funding(f, key.symbol) for f in files]
        for rows in funding:
            FundingStore(root).write(rows)
            tick(1)
        return sum(len(r) for r in funding)
    assert key.timeframe is not None
    frames = list(pool.map(lambda f: read_kline_file(f, key.symbol, key.timeframe, gap_policy="keep"), files))
    store: KlineStore = MarkKlineStore(root) if key.kind is Kind.MARK else KlineStore(root)
    coverage = Coverage.load(root, key)
    gaps: list[Gap] = []
    for f, frame in zip(files, frames):
        store.write(frame)
        period = _period(f)
        if period is not None:
            found = source_gaps(frame.between(*period).open_time, *period, key.timeframe)
            coverage.add(period, found)
            gaps.extend(found)
        tick(1)
    coverage.save()
    if gaps:
        summary.gaps.setdefault(str(key), []).extend(gaps)
    return sum(len(fr) for fr in frames)


def _expand(paths: Sequence[Path | str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = [f for f in sorted(p.rglob("*")) if f.is_file() and f.name.endswith(_SUFFIXES)
                     and (_FUNDING_NAME.match(f.name) or kline_file_name(f)[0] is not None)]
            if not found:
                msg = "no data.binance.vision kline or funding files found (searched recursively)"
                raise DataError(str(p), "files", msg)
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(str(p), "files", "no such file or folder")
    return out


def _group(files: list[Path]) -> dict[SeriesKey, list[Path]]:
    groups: dict[SeriesKey, list[Path]] = {}
    for f in files:
        if m := _FUNDING_NAME.match(f.name):
            key = SeriesKey(Kind.FUNDING, m["symbol"])
        else:
            symbol, timeframe = kline_file_name(f)
            if symbol is None or timeframe is None:
                raise DataError(str(f), "files", "cannot tell symbol and timeframe from the file name "
                                "(expected e.g. FILUSDT-1m-2023-08.zip)")
            kind = Kind.MARK if Kind.MARK.value in f.parts else Kind.KLINES
            key = SeriesKey(kind, symbol, timeframe)
        groups.setdefault(key, []).append(f)
    return groups


def _period(path: Path) -> tuple[int, int] | None:
    """The month or day a file name says it holds, as ``[start, end)`` ms."""
    m = _PERIOD.search(path.name)
    if not m:
        return None
    label = m["period"]
    start = parse_time(label if len(label) == 10 else f"{label}-01", what="file period")
    return (start, start + DAY_MS) if len(label) == 10 else (start, next_month(start))


def _read_funding(path: Path, symbol: str) -> FundingRows:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(str(path), "files", f"cannot read: {exc.strerror or exc}") from exc
    if data.startswith(b"PK") or path.suffix == ".zip":
        return parse_funding_zip(data, str(path), symbol)
    return parse_funding_csv(data.decode("utf-8-sig", "replace"), str(path), symbol)
