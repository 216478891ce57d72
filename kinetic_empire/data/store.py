"""A parquet store of validated klines, one file per symbol, timeframe and UTC month.

Layout: ``root/klines/<SYMBOL>/<timeframe>/<YYYY-MM>.parquet`` with columns open_time (int64 ms) and
open/high/low/close/volume (float64). Monthly partitions keep rewrites small when a month is
extended, and a symbol-year loads as twelve sequential column reads (well under a second for 1m).
Periods that a ``ffill`` gap policy filled with flat klines are kept in each partition's metadata,
so frames read back still report them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kinetic_empire.core.errors import DataError
from kinetic_empire.data._util import format_ms, interval_ms, month_keys
from kinetic_empire.data.frame import COLUMNS, Gap, KlineFrame
from kinetic_empire.data.mapped import BYTES_PER_ROW, available_memory, mapped_columns, stored_rows
from kinetic_empire.data.staged import StagedFiles
from kinetic_empire.data.validate import RowLocator, apply_gap_policy, check_rows, find_gaps, merge_gaps

_FILLED_KEY = b"kinetic_empire.filled_gaps"
_SCHEMA = pa.schema([("open_time", pa.int64())] + [(c, pa.float64()) for c in COLUMNS[1:]])


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """What the store holds for one symbol and timeframe."""

    symbol: str
    timeframe: str
    first_open_ms: int
    last_open_ms: int
    rows: int
    gaps: int
    """Holes plus flat-filled spans between the first and last kline."""


class KlineStore:
    """Monthly parquet partitions under `root`; writes merge and are atomic per partition."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"KlineStore({str(self.root)!r})"

    def series_dir(self, symbol: str, timeframe: str) -> Path:
        """Folder holding the partitions of one series."""
        interval_ms(timeframe)
        if not symbol or "/" in symbol or "\\" in symbol or symbol.startswith("."):
            raise ValueError(f"invalid symbol {symbol!r}")
        return self.root / "klines" / symbol / timeframe

    def write(self, frame: KlineFrame) -> list[Path]:
        """Merge `frame` into the store; returns the partitions that changed.

        Rows of `frame` replace stored rows with the same open_time (newer data wins), so writing the
        same frame twice changes nothing. The changed partitions are written as one
        :class:`~kinetic_empire.data.staged.StagedFiles` batch, so readers never see a half-written file.
        """
        rows = RowLocator.single(frame.source or f"{frame.symbol} {frame.timeframe}")
        check_rows(frame.open_time, frame.open, frame.high, frame.low, frame.close, frame.volume,
                   timeframe=frame.timeframe, rows=rows)
        if len(frame) == 0:
            return []
        folder = self.series_dir(frame.symbol, frame.timeframe)
        folder.mkdir(parents=True, exist_ok=True)
        interval = interval_ms(frame.timeframe)
        filled = _filled_gaps(frame)
        months = month_keys(frame.open_time)
        cuts = np.flatnonzero(months[1:] != months[:-1]) + 1
        with StagedFiles() as batch:
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(frame)]):
                final = folder / f"{months[lo]}.parquet"
                part = frame.between(int(frame.open_time[lo]), int(frame.open_time[hi - 1]) + 1)
                table = self._merged(final, part, filled, interval)
                if table is not None:
                    batch.parquet(table, final, compression="snappy")
        return batch.destinations

    def read(
        self,
        symbol: str,
        timeframe: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        *,
        gap_policy: str = "keep",
        mapped: bool | None = None,
    ) -> KlineFrame:
        """Klines with open_time in ``[start_ms, end_ms)``; DataError if none are stored.

        Stored rows are re-checked (cheap, and catches hand-edited files). Gaps are recorded by
        default: the data was validated when written, and a gap in it was accepted then.

        ``mapped``: the columns come memory-mapped from a decoded copy beside the store
        (:mod:`kinetic_empire.data.mapped`) instead of decoded into memory; the frame is the same. None
        decides by size: mapped when the series would take more than :data:`MAP_ABOVE_FRACTION` of the
        memory available now (or more than ``MAP_ABOVE_BYTES`` when that is set).
        """
        folder = self.series_dir(symbol, timeframe)
        files = [f for f in self._partitions(folder) if _month_overlaps(f, start_ms, end_ms)]
        if not files:
            raise DataError(str(folder), "store", f"no {symbol} {timeframe} klines stored{_window(start_ms, end_ms)}")
        if mapped is None:
            mapped = _too_big_for_memory(files)
        if mapped:
            return self._read_mapped(symbol, timeframe, files, start_ms, end_ms, gap_policy)
        tables: list[pa.Table] = []
        filled: list[Gap] = []
        for f in files:
            table = _read_table(f)
            tables.append(table)
            filled.extend(_filled_from(table.schema))
        lengths = [t.num_rows for t in tables]
        table = pa.concat_tables(tables)
        cols = {c: table.column(c).to_numpy() for c in COLUMNS}
        source = f"{folder} ({len(files)} partitions)" if len(files) > 1 else str(files[0])
        recorded = merge_gaps((), tuple(filled), interval_ms(timeframe))
        frame = KlineFrame.from_columns(symbol, timeframe, cols, gaps=recorded, source=source)
        locator = RowLocator(tuple(str(f) for f in files), tuple(int(x) for x in np.cumsum([0, *lengths[:-1]])))
        check_rows(frame.open_time, frame.open, frame.high, frame.low, frame.close, frame.volume,
                   timeframe=timeframe, rows=locator)
        i0 = 0 if start_ms is None else int(np.searchsorted(frame.open_time, start_ms))
        window = frame.between(start_ms, end_ms)
        if len(window) == 0:
            raise DataError(str(folder), "store", f"no {symbol} {timeframe} klines stored{_window(start_ms, end_ms)}")
        return apply_gap_policy(window, gap_policy, locator.shifted(i0))

    def columns_dir(self, symbol: str, timeframe: str) -> Path:
        """Folder of the memory-mapped columns of one series (a cache; safe to delete)."""
        self.series_dir(symbol, timeframe)
        return self.root / "columns" / symbol / timeframe

    def _read_mapped(self, symbol: str, timeframe: str, files: list[Path], start_ms: int | None,
                     end_ms: int | None, gap_policy: str) -> KlineFrame:
        """:meth:`read` with memory-mapped columns (whole months are mapped; the window is a view)."""
        cols, filled = mapped_columns(self.columns_dir(symbol, timeframe), files, timeframe, _read_table,
                                      _filled_from)  # fmt: skip
        folder = self.series_dir(symbol, timeframe)
        source = f"{folder} ({len(files)} partitions, mapped)"
        frame = KlineFrame.from_columns(symbol, timeframe, cols, source=source,
                                        gaps=merge_gaps((), filled, interval_ms(timeframe)))  # fmt: skip
        window = frame.between(start_ms, end_ms)
        if len(window) == 0:
            raise DataError(str(folder), "store", f"no {symbol} {timeframe} klines stored{_window(start_ms, end_ms)}")
        lengths = [pq.ParquetFile(f).metadata.num_rows for f in files]
        locator = RowLocator(tuple(str(f) for f in files), tuple(int(x) for x in np.cumsum([0, *lengths[:-1]])))
        i0 = 0 if start_ms is None else int(np.searchsorted(frame.open_time, start_ms))
        return apply_gap_policy(window, gap_policy, locator.shifted(i0))

    def catalog(self) -> list[CatalogEntry]:
        """One entry per stored series, sorted by symbol and timeframe."""
        entries = []
        base = self.root / "klines"
        for sym_dir in sorted(p for p in base.glob("*") if p.is_dir()) if base.is_dir() else []:
            for tf_dir in sorted(p for p in sym_dir.glob("*") if p.is_dir()):
                files = self._partitions(tf_dir)
                if not files:
                    continue
                interval = interval_ms(tf_dir.name)
                times: list[np.ndarray] = []
                filled: list[Gap] = []
                for f in files:
                    table = read_open_times(f)
                    times.append(table.column("open_time").to_numpy())
                    filled.extend(_filled_from(table.schema))
                open_time = np.concatenate(times)
                gaps = merge_gaps(tuple(filled), find_gaps(open_time, interval), interval)
                entries.append(CatalogEntry(sym_dir.name, tf_dir.name, int(open_time[0]), int(open_time[-1]),
                                            int(open_time.size), len(gaps)))
        return entries

    @staticmethod
    def _partitions(folder: Path) -> list[Path]:
        return sorted(folder.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9].parquet")) if folder.is_dir() else []

    @staticmethod
    def _merged(final: Path, part: KlineFrame, filled: tuple[Gap, ...], interval: int) -> pa.Table | None:
        """The partition's new table (stored rows overlaid with `part`), or None if nothing changes."""
        new_cols = {c: getattr(part, c) for c in COLUMNS}
        lo, hi = int(part.open_time[0]), int(part.open_time[-1])
        new_filled = [g for g in filled if g.start_ms >= lo and g.end_ms <= hi]
        if final.exists():
            old = _read_table(final)
            old_cols = {c: old.column(c).to_numpy() for c in COLUMNS}
            # Stored filled spans survive only outside the span the new data covers.
            kept = [g for g in _filled_from(old.schema) if g.end_ms < lo or g.start_ms > hi]
            both = np.concatenate((new_cols["open_time"], old_cols["open_time"]))
            _, first = np.unique(both, return_index=True)  # first occurrence: the new row wins
            cols = {c: np.concatenate((new_cols[c], old_cols[c]))[first] for c in COLUMNS}
            gaps = merge_gaps(tuple(kept), tuple(new_filled), interval)
            same = all(np.array_equal(cols[c], old_cols[c]) for c in COLUMNS)
            if same and gaps == merge_gaps((), tuple(_filled_from(old.schema)), interval):
                return None
        else:
            cols, gaps = new_cols, tuple(new_filled)
        table = pa.Table.from_arrays([pa.array(cols[c]) for c in COLUMNS], schema=_SCHEMA)
        meta = {_FILLED_KEY: json.dumps([[g.start_ms, g.end_ms, g.missing] for g in gaps]).encode()}
        return table.replace_schema_metadata(meta)


MAP_ABOVE_FRACTION = 0.25
"""A series read with ``mapped=None`` is memory-mapped when it needs more than this share of MemAvailable."""
MAP_ABOVE_BYTES: int | None = None
"""When set, replaces the fraction: mapped above this many bytes of columns (0: always; tests set it)."""


def _too_big_for_memory(files: list[Path]) -> bool:
    need = stored_rows(files) * BYTES_PER_ROW
    if MAP_ABOVE_BYTES is not None:
        return need > MAP_ABOVE_BYTES
    available = available_memory()
    return available is not None and need > MAP_ABOVE_FRACTION * available


def _read_table(path: Path) -> pa.Table:
    return _read(path, list(COLUMNS))


def read_open_times(path: Path) -> pa.Table:
    """A partition's ``open_time`` column (with the file's metadata); DataError naming it if unreadable."""
    return _read(path, ["open_time"])


def _read(path: Path, columns: list[str]) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).split(". ")[0] if str(exc) else type(exc).__name__
        raise DataError(str(path), "store", f"unreadable partition ({reason}); delete it and download or import "
                        "that month again") from exc


def _filled_gaps(frame: KlineFrame) -> tuple[Gap, ...]:
    """The recorded gaps of `frame` that have rows (flat-filled), as opposed to holes."""
    if not frame.gaps:
        return ()
    starts = np.array([g.start_ms for g in frame.gaps], dtype=np.int64)
    idx = np.minimum(np.searchsorted(frame.open_time, starts), len(frame) - 1)
    return tuple(g for g, hit in zip(frame.gaps, frame.open_time[idx] == starts) if hit)


def _filled_from(schema: pa.Schema) -> Iterable[Gap]:
    raw = (schema.metadata or {}).get(_FILLED_KEY)
    return [Gap(int(s), int(e), int(m)) for s, e, m in json.loads(raw)] if raw else []


def _month_overlaps(path: Path, start_ms: int | None, end_ms: int | None) -> bool:
    month = np.datetime64(path.stem, "M")
    lo = int(month.astype("datetime64[ms]").astype(np.int64))
    hi = int((month + 1).astype("datetime64[ms]").astype(np.int64))
    return (end_ms is None or lo < end_ms) and (start_ms is None or hi > start_ms)


def _window(start_ms: int | None, end_ms: int | None) -> str:
    if start_ms is None and end_ms is None:
        return ""
    if end_ms is None:
        return f" from {format_ms(start_ms)}" if start_ms is not None else ""
    if start_ms is None:
        return f" before {format_ms(end_ms)}"
    return f" between {format_ms(start_ms)} and {format_ms(end_ms)}"
