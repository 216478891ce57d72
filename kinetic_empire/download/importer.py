"""``kinetic data import``: data.binance.vision files a user downloaded by hand, into the store.

Kline files (ZIP, CSV, CSV.GZ; with or without header; ms or µs) are read by the data package's own
reader, so the rules are exactly the backtester's. Files under a ``markPriceKlines`` folder go to the
mark-price store and ``<SYMBOL>-fundingRate-<YYYY-MM>`` files to the funding store. Every file of a
series is read and validated before the first partition of that series is written, so a bad file
leaves that series as it was.

Coverage comes from the rows, not the file name: a file whose rows lie outside the month or day its
name says is refused; a file cut short records only the part its rows cover (from the period's start
to its last kline), so ``kinetic download`` fetches the rest. After each file, the store and the
coverage record agree, so an interrupted import leaves nothing marked as there that is not.
Spot files (a ``spot`` folder of data.binance.vision, or a symbol USD-M futures never listed) are
refused: the store holds USD-M futures only.
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
from kinetic_empire.data import Gap, KlineFrame, KlineStore, kline_file_name, read_kline_file
from kinetic_empire.data._util import format_ms, interval_ms
from kinetic_empire.download.archive import parse_funding_csv, parse_funding_zip
from kinetic_empire.download.funding import FundingRows, FundingStore
from kinetic_empire.download.periods import DAY_MS, next_month, parse_time
from kinetic_empire.download.plan import source_gaps
from kinetic_empire.download.progress import progress_enabled
from kinetic_empire.download.series import Kind, SeriesKey
from kinetic_empire.download.stores import Coverage, MarkKlineStore
from kinetic_empire.resources import exchange_info_payload

_FUNDING_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-fundingRate-(?P<month>\d{4}-\d{2})\.(zip|csv)$")
_PERIOD = re.compile(r"-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv|csv\.gz)$")
_SUFFIXES = (".zip", ".csv", ".csv.gz")
_USDM_QUOTES = ("USDT", "USDC", "BUSD")


@dataclass
class ImportSummary:
    files: int = 0
    rows: int = 0
    seconds: float = 0.0
    series: dict[str, int] = field(default_factory=dict)
    """Rows per series label (``FILUSDT 1m``)."""
    gaps: dict[str, list[Gap]] = field(default_factory=dict)
    partial: list[str] = field(default_factory=list)
    """Files whose rows end before the period their name says (recorded as covered only that far)."""
    done: list[str] = field(default_factory=list)
    """Series labels completely imported (for truthful messages when a later series fails)."""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        out = [f"  {label:<24} {rows:>10,} rows" + (f"  {len(self.gaps[label])} gap(s)" if self.gaps.get(label) else "")
               for label, rows in sorted(self.series.items())]
        out.extend(f"  partial: {note}" for note in self.partial)
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
                try:
                    rows = _import_series(key, files, Path(root), pool, bar.update, summary)
                except DataError as exc:
                    if summary.done:
                        raise DataError(exc.file, exc.rule, f"{_bare(exc)} (already imported and complete: "
                                        f"{', '.join(summary.done)}; {key} is as it was)", exc.row) from exc
                    raise
                summary.series[str(key)] = summary.series.get(str(key), 0) + rows
                summary.rows += rows
                summary.files += len(files)
                summary.done.append(str(key))
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
    timeframe = key.timeframe
    frames = list(pool.map(lambda f: read_kline_file(f, key.symbol, timeframe, gap_policy="keep"), files))
    periods = [_period(f) for f in files]
    for f, frame, period in zip(files, frames, periods):  # every file checked before the first write
        if period is not None:
            _check_within(f, frame, period)
    store: KlineStore = MarkKlineStore(root) if key.kind is Kind.MARK else KlineStore(root)
    coverage = Coverage.load(root, key)
    gaps: list[Gap] = []
    for f, frame, period in zip(files, frames, periods):
        store.write(frame)
        covered = _covered(frame, period, timeframe) if period is not None else None
        if covered is not None:
            found = source_gaps(frame.between(*covered).open_time, *covered, timeframe)
            coverage.add(covered, found)
            coverage.save()  # after each file: the record never claims what the store does not hold
            gaps.extend(found)
            if period is not None and covered[1] < period[1]:
                summary.partial.append(f"{f.name} ends at {format_ms(covered[1] - interval_ms(timeframe))}, before "
                                       f"the end of its period: only that far is recorded; "
                                       f"`kinetic download` fetches the rest")
        tick(1)
    if gaps:
        summary.gaps.setdefault(str(key), []).extend(gaps)
    return sum(len(fr) for fr in frames)


def _check_within(path: Path, frame: KlineFrame, period: tuple[int, int]) -> None:
    """Refuse a file whose rows lie outside the month or day its name says (a renamed or mixed-up file)."""
    if len(frame) == 0:
        return
    t = frame.open_time
    outside = (t < period[0]) | (t >= period[1])
    if outside.any():
        i = int(outside.argmax())
        raise DataError(str(path), "period", f"holds a kline at {format_ms(int(t[i]))}, outside "
                        f"{format_ms(period[0])}..{format_ms(period[1] - 1)} that its name says "
                        f"({int(outside.sum())} of {len(t)} rows outside); rename the file to what it holds")


def _covered(frame: KlineFrame, period: tuple[int, int], timeframe: str) -> tuple[int, int] | None:
    """What a file's rows cover of its period: from the period's start to its last kline (None if empty).

    Klines missing at the start or inside count as the source's gaps (a listing, an outage); klines
    missing at the end are not claimed, since a file cut short looks exactly like that."""
    if len(frame) == 0:
        return None
    end = min(period[1], int(frame.open_time[-1]) + interval_ms(timeframe))
    return (period[0], end)


def _bare(exc: DataError) -> str:
    """The message of a DataError without its ``file, row N: [rule]`` prefix."""
    text = str(exc)
    marker = f"[{exc.rule}] "
    return text.split(marker, 1)[1] if marker in text else text


def _check_futures(path: Path, symbol: str) -> None:
    """The store holds USD-M futures: refuse spot files and symbols USD-M never listed."""
    if "spot" in path.parts:
        raise DataError(str(path), "market", "a spot file (its folder is data.binance.vision's spot/): "
                        "this store holds USD-M futures klines only; use data/futures/um/...")
    if symbol in _known_symbols() or symbol.endswith(_USDM_QUOTES):
        return
    raise DataError(str(path), "market", f"{symbol} is not a Binance USD-M futures symbol (not in the bundled "
                    f"exchangeInfo and not quoted in {', '.join(_USDM_QUOTES)}): spot data is not imported")


_KNOWN: set[str] = set()


def _known_symbols() -> set[str]:
    if not _KNOWN:
        _KNOWN.update(str(s["symbol"]) for s in exchange_info_payload(True)["symbols"])
    return _KNOWN


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
            _check_futures(f, symbol)
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
