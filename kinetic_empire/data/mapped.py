"""A store series as memory-mapped columns, for backtests whose klines do not fit in memory.

Parquet partitions are compressed and must be decoded whole, so a long series read from them sits in
memory (48 bytes per kline). Beside the partitions, :func:`mapped_columns` keeps each column of a series
decoded once into a ``.npy`` file under ``root/columns/<SYMBOL>/<timeframe>/`` and opens it read-only with
``mmap``: the arrays behave as ordinary ones, but their pages are file-backed, read from disk as the replay
reaches them (the feed converts a chunk of rows at a time) and dropped by the kernel under memory
pressure, so the data's size no longer bounds the backtest. The cache is built one partition at a time
(memory bounded by one month) and rebuilt when a partition changes (name, size and mtime are recorded).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kinetic_empire.data.frame import COLUMNS, Gap
from kinetic_empire.data.validate import RowLocator, check_rows

ReadTable = Callable[[Path], pa.Table]
FilledFrom = Callable[[pa.Schema], Iterable[Gap]]
MANIFEST = "manifest.json"
BYTES_PER_ROW = 8 * len(COLUMNS)  # int64 open_time + five float64 columns


def stored_rows(files: list[Path]) -> int:
    """Rows in these partitions, from the parquet footers (no column is read)."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (Linux); None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _fingerprint(files: list[Path]) -> list[list[object]]:
    return [[f.name, st.st_size, st.st_mtime_ns] for f in files for st in (f.stat(),)]


def mapped_columns(
    cache: Path, files: list[Path], timeframe: str, read_table: ReadTable, filled_from: FilledFrom
) -> tuple[dict[str, np.ndarray], tuple[Gap, ...]]:
    """Read-only memory-mapped columns of ``files`` (a series' partitions, in order), and the flat-filled
    spans recorded in them; the cache in ``cache`` is (re)built first when the partitions changed.

    ``read_table(path)`` reads one partition as a pyarrow table and ``filled_from(schema)`` lists its
    filled spans (the store's own readers, passed in so this module does not import the store).
    """
    manifest = cache / MANIFEST
    want = _fingerprint(files)
    meta = _load_manifest(manifest)
    if meta is None or meta.get("partitions") != want:
        meta = _build(cache, files, want, timeframe, read_table, filled_from)
    cols = {c: np.load(cache / f"{c}.npy", mmap_mode="r") for c in COLUMNS}
    return cols, tuple(Gap(int(s), int(e), int(m)) for s, e, m in meta["filled"])  # type: ignore[call-overload]


def _load_manifest(path: Path) -> dict[str, list[list[object]]] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _build(
    cache: Path, files: list[Path], want: list[list[object]], timeframe: str, read_table: ReadTable,
    filled_from: FilledFrom,
) -> dict[str, list[list[object]]]:
    """Decode the partitions one at a time into fresh ``.npy`` files, checking each partition's rows and
    the order across partitions, then swap the new cache in whole (a reader never sees a partial one)."""
    total = stored_rows(files)
    staging = cache.with_name(f"{cache.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        dtypes = {c: np.int64 if c == "open_time" else np.float64 for c in COLUMNS}
        out = {c: np.lib.format.open_memmap(staging / f"{c}.npy", mode="w+", dtype=dtypes[c], shape=(total,))
               for c in COLUMNS}  # fmt: skip
        filled: list[list[int]] = []
        at = 0
        last_open: int | None = None
        for f in files:
            table = read_table(f)
            part = {c: table.column(c).to_numpy() for c in COLUMNS}
            check_rows(part["open_time"], part["open"], part["high"], part["low"], part["close"], part["volume"],
                       timeframe=timeframe, rows=RowLocator.single(str(f)))  # fmt: skip
            n = len(part["open_time"])
            if n and last_open is not None and int(part["open_time"][0]) <= last_open:
                raise RowLocator.single(str(f)).error(0, "order", "starts at or before the end of the previous "
                                                      "partition; delete it and download or import that month again")
            for c in COLUMNS:
                out[c][at : at + n] = part[c]
            at += n
            last_open = int(part["open_time"][-1]) if n else last_open
            filled.extend([g.start_ms, g.end_ms, g.missing] for g in filled_from(table.schema))
        for arr in out.values():
            arr.flush()
        del out
        meta: dict[str, list[list[object]]] = {"partitions": want, "filled": filled}  # type: ignore[dict-item]
        (staging / MANIFEST).write_text(json.dumps(meta))
        shutil.rmtree(cache, ignore_errors=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging.rename(cache)
        except OSError:  # another process put its build in place first: the same partitions, the same columns
            shutil.rmtree(staging, ignore_errors=True)
            theirs = _load_manifest(cache / MANIFEST)
            if theirs is None or theirs.get("partitions") != want:
                raise
            return theirs
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return meta
