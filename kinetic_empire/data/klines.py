"""Reading kline files (data.binance.vision CSV, gzip, zip; our parquet) and loading whole series.

``read_kline_file`` reads one file; ``load_klines`` takes files and folders, concatenates in time order
and validates the result as one series, so a duplicate or gap *between* two monthly files is caught
just like one inside a file, and every error still names the file and row it came from.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kinetic_empire.core.errors import DataError
from kinetic_empire.core.timeframes import TIMEFRAME_MS
from kinetic_empire.data._csv import parse_kline_csv
from kinetic_empire.data._util import TimeLike, to_ms
from kinetic_empire.data.frame import COLUMNS, KlineFrame
from kinetic_empire.data.validate import RowLocator, apply_gap_policy, check_rows

KLINE_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".zip", ".parquet")
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<timeframe>\d+[smhdwM])-")
_PERIOD = re.compile(r"-(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?(?:\.|$)")
_STORE_PERIOD = re.compile(r"^(?P<year>\d{4})-(?P<month>\d{2})\.parquet$")

PathLike = str | Path


@dataclass(frozen=True, slots=True)
class _Raw:
    """One file's klines before validation; close_time only where the file has it."""

    frame: KlineFrame
    close_time: np.ndarray | None


def kline_file_name(path: PathLike) -> tuple[str | None, str | None]:
    """(symbol, timeframe) from a file name such as ``FILUSDT-1m-2023-08.csv`` or a store partition path
    ``.../klines/FILUSDT/1m/2023-08.parquet``; None for what the name does not say."""
    p = Path(path)
    if m := _NAME.match(p.name):
        return m["symbol"], m["timeframe"]
    if p.name.endswith(".parquet") and p.parent.name in TIMEFRAME_MS:
        return p.parent.parent.name or None, p.parent.name
    return None, None


def is_kline_file(path: PathLike) -> bool:
    """True for the file types :func:`read_kline_file` understands (by name)."""
    return Path(path).name.lower().endswith(KLINE_SUFFIXES)


def read_kline_file(
    path: PathLike,
    symbol: str | None = None,
    timeframe: str | None = None,
    *,
    gap_policy: str = "error",
) -> KlineFrame:
    """Read and validate one kline file (``.csv``, ``.csv.gz``, ``.zip`` with one CSV, ``.parquet``).

    The header row and ms/µs timestamps are detected; symbol and timeframe come from the file name
    (or, for the timeframe, from close_time) unless given. Raises DataError naming file, row and rule.
    """
    raw = _read_raw(Path(path), symbol, timeframe)
    rows = RowLocator.single(str(path))
    f = raw.frame
    check_rows(f.open_time, f.open, f.high, f.low, f.close, f.volume, timeframe=f.timeframe, rows=rows,
               close_time=raw.close_time)
    return apply_gap_policy(f, gap_policy, rows)


def load_klines(
    paths: PathLike | Sequence[PathLike],
    symbol: str | None = None,
    timeframe: str | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    gap_policy: str = "error",
) -> KlineFrame:
    """Load one series from files and/or folders (searched recursively), in time order, validated.

    Rows with open_time in ``[start, end)`` are kept (ints are epoch ms; strings and datetimes are
    UTC). Every row of every file read is checked; the gap policy applies to the selected window only,
    so a hole outside the window does not stop you. Files whose name says they lie wholly outside
    the window are not read at all.
    """
    start_ms, end_ms = to_ms(start), to_ms(end)
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise ValueError("load_klines needs at least one file or folder")
    files = _resolve(items, symbol, timeframe)
    files = [f for f in files if _may_overlap(f, start_ms, end_ms)] or files[:1]
    raws = [_read_raw(f, symbol, timeframe) for f in files]
    series = {(r.frame.symbol, r.frame.timeframe) for r in raws}
    if len(series) > 1:
        listed = ", ".join(f"{s} {t}" for s, t in sorted(series))
        msg = f"files hold different series ({listed}); pass symbol= and timeframe="
        raise DataError(_describe(files), "files", msg)
    raws.sort(key=lambda r: (int(r.frame.open_time[0]), r.frame.source))
    frame, close_time, rows = _concat(raws)
    check_rows(frame.open_time, frame.open, frame.high, frame.low, frame.close, frame.volume,
               timeframe=frame.timeframe, rows=rows, close_time=close_time)
    i0 = 0 if start_ms is None else int(np.searchsorted(frame.open_time, start_ms))
    window = frame.between(start_ms, end_ms)
    if len(window) == 0:
        raise DataError(frame.source, "files", f"no {frame.symbol} {frame.timeframe} klines in [{start}, {end})")
    return apply_gap_policy(window, gap_policy, rows.shifted(i0))


def find_kline_files(folder: PathLike, symbol: str | None = None, timeframe: str | None = None) -> list[Path]:
    """Kline files under `folder` (recursively) for `symbol`/`timeframe` (None: any), sorted by path."""
    found = []
    for p in sorted(Path(folder).rglob("*")):
        if not p.is_file() or not is_kline_file(p):
            continue
        s, t = kline_file_name(p)
        if s is None or t is None:
            continue
        if (symbol is None or s == symbol) and (timeframe is None or t == timeframe):
            found.append(p)
    return found


def _resolve(items: list[PathLike], symbol: str | None, timeframe: str | None) -> list[Path]:
    """Expand folders to their matching files; a folder must hold exactly one series unless told which."""
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = find_kline_files(p, symbol, timeframe)
            series = sorted({" ".join(map(str, kline_file_name(f))) for f in found})
            if not found:
                what = " ".join(x for x in (symbol, timeframe) if x) or "kline"
                raise DataError(str(p), "files", f"no {what} files found (searched recursively)")
            if len(series) > 1:
                listed = ", ".join(series)
                raise DataError(str(p), "files", f"folder holds several series ({listed}); pass symbol= and timeframe=")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(str(p), "files", "no such file or folder")
    return files


def _read_raw(path: Path, symbol: str | None, timeframe: str | None) -> _Raw:
    """Parse one file into an unvalidated frame (plus close_time when the file has it)."""
    file = str(path)
    name_symbol, name_tf = kline_file_name(path)
    for given, named, what in ((symbol, name_symbol, "symbol"), (timeframe, name_tf, "timeframe")):
        if given and named and given != named:
            raise DataError(file, "files", f"{what} {given!r} requested but the file name says {named!r}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(file, "files", f"cannot read: {exc.strerror or exc}") from exc
    if data.startswith(b"PAR1"):
        cols, close_time = _parquet_columns(data, file), None
    else:
        p = parse_kline_csv(_decompress(data, path), file)
        cols, close_time = p.columns, p.close_time
    if len(cols["open_time"]) == 0:
        raise DataError(file, "format", "no klines in file")
    timeframe = timeframe or name_tf or _timeframe_from(cols["open_time"], close_time, file)
    symbol = symbol or name_symbol
    if not symbol:
        raise DataError(file, "files", "cannot tell the symbol from the file name; pass symbol=")
    if timeframe not in TIMEFRAME_MS:
        raise DataError(file, "interval", f"unsupported timeframe {timeframe!r}")
    frame = KlineFrame.from_columns(symbol, timeframe, cols, source=file)
    return _Raw(frame, close_time)


def _decompress(data: bytes, path: Path) -> bytes:
    """CSV bytes from raw file bytes: zip and gzip are recognised by content, not just by suffix."""
    file = str(path)
    name = path.name.lower()
    if data.startswith(b"PK") or name.endswith(".zip"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                if len(members) != 1:
                    listed = ", ".join(m.filename for m in members) or "nothing"
                    raise DataError(file, "format", f"zip must hold exactly one CSV, holds {listed}")
                return zf.read(members[0])
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise DataError(file, "format", f"not a readable zip archive (truncated download?): {exc}") from exc
    if data.startswith(b"\x1f\x8b") or name.endswith(".gz"):
        try:
            return gzip.decompress(data)
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
            raise DataError(file, "format", f"not a readable gzip file (truncated download?): {exc}") from exc
    return data


def _parquet_columns(data: bytes, file: str) -> dict[str, np.ndarray]:
    """Columns of one of our store partitions (or any parquet with the same column names)."""
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(file, "format", f"not a readable parquet file: {exc}") from exc
    absent = [c for c in COLUMNS if c not in table.column_names]
    if absent:
        raise DataError(file, "columns", f"parquet file lacks columns {absent}; has {table.column_names}")
    out = {}
    for c in COLUMNS:
        col = table.column(c)
        if col.null_count:
            i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(file, "nan", f"{c} is null", row=i + 1)
        out[c] = col.to_numpy()
    return out


def _timeframe_from(open_time: np.ndarray, close_time: np.ndarray | None, file: str) -> str:
    """Timeframe from the first kline's close_time, for files whose name does not say it."""
    if close_time is not None:
        span = int(close_time[0] - open_time[0] + 1)
        for tf, ms in TIMEFRAME_MS.items():
            if ms == span:
                return tf
    raise DataError(file, "interval", "cannot tell the timeframe from the file name or close_time; pass timeframe=")


def _concat(raws: list[_Raw]) -> tuple[KlineFrame, np.ndarray, RowLocator]:
    """One frame from files already sorted by first open_time, with a locator back to file rows."""
    frames = [r.frame for r in raws]
    first = frames[0]
    lengths = [len(f) for f in frames]
    offsets = tuple(int(x) for x in np.concatenate(([0], np.cumsum(lengths)[:-1])))
    rows = RowLocator(tuple(f.source for f in frames), offsets)
    if len(frames) == 1:
        ct = raws[0].close_time
        return first, (ct if ct is not None else first.close_time), rows
    cols = {c: np.concatenate([getattr(f, c) for f in frames]) for c in COLUMNS}
    close_time = np.concatenate([r.close_time if r.close_time is not None else r.frame.close_time for r in raws])
    frame = KlineFrame.from_columns(first.symbol, first.timeframe, cols,
                                    source=_describe([Path(f.source) for f in frames]))
    return frame, close_time, rows


def _describe(files: Sequence[Path]) -> str:
    """Short description of where a series came from, for messages."""
    if len(files) <= 3:
        return ", ".join(str(f) for f in files)
    return f"{files[0].parent} ({len(files)} files: {files[0].name} .. {files[-1].name})"


def _may_overlap(path: Path, start_ms: int | None, end_ms: int | None) -> bool:
    """False only when the file name's month/day shows it lies wholly outside [start_ms, end_ms)."""
    if start_ms is None and end_ms is None:
        return True
    m = _PERIOD.search(path.name) or _STORE_PERIOD.match(path.name)
    if not m:
        return True
    year, month = int(m["year"]), int(m["month"])
    day = m.groupdict().get("day")
    if not 1 <= month <= 12:
        return True
    if day:
        lo = np.datetime64(f"{year:04d}-{month:02d}-{int(day):02d}", "ms")
        hi = lo + np.timedelta64(1, "D")
    else:
        lo = np.datetime64(f"{year:04d}-{month:02d}", "M").astype("datetime64[ms]")
        hi = (np.datetime64(f"{year:04d}-{month:02d}", "M") + 1).astype("datetime64[ms]")
    lo_ms, hi_ms = int(lo.astype(np.int64)), int(hi.astype(np.int64))
    return (end_ms is None or lo_ms < end_ms) and (start_ms is None or hi_ms > start_ms)
