"""Bytes of a data.binance.vision kline CSV → numpy columns, fast, with precise errors for garbage.

The happy path is one pyarrow CSV read (multi-threaded C++, correctly rounded floats) of the seven
columns we use. Only when that fails do we run a slower diagnostic pass to find the offending row,
because a message without a row number sends the user hunting through a 40,000-line file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from kinetic_empire.core.errors import DataError
from kinetic_empire.data._util import first_true
from kinetic_empire.data.frame import COLUMNS

KLINE_CSV_COLUMNS: tuple[str, ...] = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)
"""The twelve columns of every Binance kline CSV, in order (futures files name them in a header row)."""

_USED = (*COLUMNS, "close_time")  # the columns we read: a KlineFrame's, and close_time to check the interval
_TIME_COLUMNS = ("open_time", "close_time")
_TYPES = {c: (pa.int64() if c in _TIME_COLUMNS else pa.float64()) for c in _USED}
_NULL_TOKENS = ["", "nan", "NaN", "NAN", "-nan", "null", "NULL", "None", "N/A", "n/a", "NA"]
_HEADER_FIRST = {b"open_time", b"opentime", b"open time", b"open_time_ms", b"timestamp"}
_MICROS_THRESHOLD = 10**14
"""ms timestamps stay below this until the year 5138; µs timestamps since 1973 are above it."""


@dataclass(frozen=True, slots=True)
class ParsedCsv:
    """A kline CSV's OHLCV columns, keyed as :data:`~kinetic_empire.data.frame.COLUMNS` (ready for
    ``KlineFrame.from_columns``), plus its close_time; timestamps already in ms."""

    columns: dict[str, np.ndarray]
    close_time: np.ndarray


def parse_kline_csv(data: bytes, file: str) -> ParsedCsv:
    """Parse a whole kline CSV; header row and µs timestamps are detected, not configured."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    head = data[:4096].lstrip()
    if not head:
        raise DataError(file, "format", "file is empty")
    if head[:1] == b"<" or b"<html" in head.lower() or b"<!doctype" in head.lower():
        msg = "this is an HTML/XML page, not a kline CSV (an error page from a failed download?)"
        raise DataError(file, "format", msg)
    first_line = data.split(b"\n", 1)[0].strip()
    first_field = first_line.split(b",", 1)[0].strip().strip(b'"').lower()
    header = not first_field.isdigit()
    if header and first_field not in _HEADER_FIRST:
        shown = first_line[:80].decode("utf-8", "replace")
        raise DataError(file, "parse", f"first line is neither a kline nor the Binance header: {shown!r}", row=1)
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(KLINE_CSV_COLUMNS), skip_rows=int(header)),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=_TYPES, include_columns=list(_USED), null_values=_NULL_TOKENS,
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        # pyarrow rejects wrong field counts and bad cells but without a usable row number: find it.
        _check_column_counts(data, file, header)
        _diagnose(data, file, header)
        raise DataError(file, "parse", f"not a valid kline CSV: {exc}") from exc
    if table.num_rows == 0:
        raise DataError(file, "format", "no klines in file (header only)")

    for name in _USED:
        col = table.column(name)
        if col.null_count:
            i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(file, "nan", f"{name} is empty or NaN", row=i + 1)
    cols = {name: table.column(name).to_numpy() for name in _USED}
    open_time = cols["open_time"]
    if _is_micros(open_time, file):
        if (j := first_true(open_time % 1000 != 0)) is not None:
            msg = f"µs open_time {open_time[j]} is not a whole millisecond"
            raise DataError(file, "interval", msg, row=j + 1)
        cols["open_time"] = open_time // 1000
        cols["close_time"] = cols["close_time"] // 1000
    close_time = cols.pop("close_time")
    return ParsedCsv(cols, close_time)


def _is_micros(open_time: np.ndarray, file: str) -> bool:
    """True when timestamps are µs (spot files since 2025); mixed units within a file are an error."""
    big = open_time >= _MICROS_THRESHOLD
    if not big.any():
        return False
    if (i := first_true(big != big[0])) is not None:
        unit = "µs" if big[i] else "ms"
        msg = f"open_time {open_time[i]} is in {unit} but the first row is not: mixed timestamp units"
        raise DataError(file, "timestamp", msg, row=i + 1)
    return True


def _check_column_counts(data: bytes, file: str, header: bool) -> None:
    """Every non-empty line must have exactly 12 fields; counted on the raw bytes with numpy."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    n_lines = newlines.size + (0 if data.endswith(b"\n") else 1)
    commas = np.flatnonzero(buf == 44)
    per_line = np.bincount(np.searchsorted(newlines, commas), minlength=n_lines)[:n_lines]
    starts = np.concatenate(([0], newlines + 1))[:n_lines]
    ends = np.concatenate((newlines, [len(data)]))[:n_lines]
    lengths = ends - starts
    last = buf[np.maximum(ends - 1, 0)]
    blank = (lengths == 0) | ((lengths == 1) & (last == 13))  # pyarrow skips blank lines too
    bad = ~blank & (per_line != len(KLINE_CSV_COLUMNS) - 1)
    if (i := first_true(bad)) is not None:
        line = data[starts[i]:ends[i]].strip()[:80].decode("utf-8", "replace")
        row = i + 1 - int(header)
        msg = f"expected {len(KLINE_CSV_COLUMNS)} columns, found {per_line[i] + 1}: {line!r}"
        raise DataError(file, "columns", msg, row=row if row >= 1 else None)


def _diagnose(data: bytes, file: str, header: bool) -> None:
    """Find the first cell pyarrow could not convert and raise a DataError naming it; slow path only."""
    text = data.decode("utf-8", "replace").encode()
    table = pacsv.read_csv(
        io.BytesIO(text),
        read_options=pacsv.ReadOptions(column_names=list(KLINE_CSV_COLUMNS), skip_rows=int(header)),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in _USED}, include_columns=list(_USED)
        ),
    )
    import pandas as pd  # local: only the error path needs it

    worst: tuple[int, str, str] | None = None
    for name in _USED:
        raw = pd.Series(table.column(name).to_numpy(zero_copy_only=False), dtype="string").str.strip()
        value = pd.to_numeric(raw, errors="coerce")
        bad = value.isna() & ~raw.isin(_NULL_TOKENS)
        if name in _TIME_COLUMNS:
            bad |= value.notna() & (value % 1 != 0)
        hits = np.flatnonzero(bad.to_numpy(dtype=bool, na_value=True))
        if hits.size and (worst is None or hits[0] < worst[0]):
            worst = (int(hits[0]), name, str(raw.iloc[hits[0]]))
    if worst is not None:
        i, name, value = worst
        kind = "an integer" if name in _TIME_COLUMNS else "a number"
        raise DataError(file, "parse", f"{name} {value[:40]!r} is not {kind}", row=i + 1)
