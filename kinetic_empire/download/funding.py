"""Funding-rate history: validated rows, a small parquet per symbol and month, and a reader for backtests.

Layout: ``root/funding/<SYMBOL>/<YYYY-MM>.parquet`` with columns fundingTime (int64 ms, as Binance sent
it), fundingRate and markPrice (decimal strings; markPrice is null for archive rows, which lack it).
Rates stay strings on disk because the exchange model settles funding in Decimal.

Binance's fundingTime carries a few ms of jitter (``...200005``) and the archive's calc_time may differ
from REST's fundingTime by those ms, so rows are keyed by the settlement minute: the same settlement
from two sources is one row, and :func:`load_funding` returns keys the simulated exchange can match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kinetic_empire.core.errors import DataError
from kinetic_empire.data._util import TimeLike, to_ms
from kinetic_empire.data.staged import StagedFiles
from kinetic_empire.download.periods import month_label, month_start, next_month

_SCHEMA = pa.schema([("fundingTime", pa.int64()), ("fundingRate", pa.string()), ("markPrice", pa.string())])
_MINUTE_MS = 60_000


def settlement_minute(times: np.ndarray) -> np.ndarray:
    """fundingTime rounded to the nearest minute: the settlement it belongs to."""
    return (np.asarray(times, dtype=np.int64) + _MINUTE_MS // 2) // _MINUTE_MS * _MINUTE_MS


@dataclass(frozen=True, slots=True)
class FundingRows:
    """Funding settlements of one symbol, ascending; strings exactly as the source sent them."""

    symbol: str
    time: np.ndarray
    rate: tuple[str, ...]
    mark: tuple[str | None, ...]
    source: str = ""

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @classmethod
    def build(cls, symbol: str, time: Sequence[int], rate: Sequence[str], mark: Sequence[str | None],
              source: str) -> FundingRows:
        """Validated rows: every rate a finite decimal, times strictly increasing by settlement."""
        t = np.asarray(time, dtype=np.int64)
        for i, r in enumerate(rate):
            try:
                ok = Decimal(r).is_finite()
            except (InvalidOperation, TypeError):
                ok = False
            if not ok:
                raise DataError(source, "nan", f"fundingRate {r!r} is not a number", row=i + 1)
        keys = settlement_minute(t)
        if t.size > 1 and (bad := np.flatnonzero(np.diff(keys) <= 0)).size:
            i = int(bad[0]) + 1
            rule = "duplicate" if keys[i] == keys[i - 1] else "order"
            raise DataError(source, rule, f"fundingTime {t[i]} after {t[i - 1]}", row=i + 1)
        return cls(symbol, t, tuple(rate), tuple(mark), source)

    def between(self, start_ms: int | None, end_ms: int | None) -> FundingRows:
        """Rows with fundingTime in ``[start_ms, end_ms)``."""
        i0 = 0 if start_ms is None else int(np.searchsorted(self.time, start_ms))
        i1 = len(self) if end_ms is None else int(np.searchsorted(self.time, end_ms))
        return FundingRows(self.symbol, self.time[i0:i1], self.rate[i0:i1], self.mark[i0:i1], self.source)


class FundingStore:
    """Monthly funding partitions under `root`; writes merge by settlement and are atomic per file."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def folder(self, symbol: str) -> Path:
        if not symbol or "/" in symbol or "\\" in symbol or symbol.startswith("."):
            raise ValueError(f"invalid symbol {symbol!r}")
        return self.root / "funding" / symbol

    def write(self, rows: FundingRows) -> list[Path]:
        """Merge `rows` into the store (new rows win per settlement); returns the files that changed."""
        if len(rows) == 0:
            return []
        folder = self.folder(rows.symbol)
        folder.mkdir(parents=True, exist_ok=True)
        with StagedFiles() as batch:
            t = int(rows.time[0])
            while t <= int(rows.time[-1]):
                part = rows.between(month_start(t), next_month(t))
                t = next_month(t)
                if len(part) == 0:
                    continue
                final = folder / f"{month_label(int(part.time[0]))}.parquet"
                table = _merged(final, part)
                if table is not None:
                    batch.parquet(table, final)
        return batch.destinations

    def read(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> FundingRows:
        """Stored settlements with fundingTime in ``[start_ms, end_ms)`` (possibly none)."""
        folder = self.folder(symbol)
        files = sorted(folder.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9].parquet")) if folder.is_dir() else []
        tables = [_read(f) for f in files]
        if not tables:
            return FundingRows(symbol, np.empty(0, dtype=np.int64), (), (), str(folder))
        table = pa.concat_tables(tables)
        rows = FundingRows(symbol, table.column("fundingTime").to_numpy(),
                           tuple(table.column("fundingRate").to_pylist()),
                           tuple(table.column("markPrice").to_pylist()), str(folder))
        return rows.between(start_ms, end_ms)

    def symbols(self) -> list[str]:
        base = self.root / "funding"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def load_funding(root: Path | str, symbol: str, start: TimeLike | None = None,
                 end: TimeLike | None = None) -> dict[int, Decimal]:
    """``{settlement_time_ms: rate}`` for ``ExchangeConfig.funding_rates[symbol]``; times in [start, end).

    Keys are rounded to the settlement minute (see the module docstring), which is what the simulated
    exchange looks up.
    """
    rows = FundingStore(root).read(symbol, to_ms(start), to_ms(end))
    keys = settlement_minute(rows.time)
    return {int(k): Decimal(r) for k, r in zip(keys, rows.rate)}


def _read(path: Path) -> pa.Table:
    try:
        return pq.read_table(path, schema=_SCHEMA)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(str(path), "store", f"unreadable funding partition: {exc}") from exc


def _merged(final: Path, part: FundingRows) -> pa.Table | None:
    new = pa.table({"fundingTime": pa.array(part.time, pa.int64()), "fundingRate": pa.array(part.rate, pa.string()),
                    "markPrice": pa.array(part.mark, pa.string())}, schema=_SCHEMA)
    if not final.exists():
        return new
    old = _read(final)
    both = pa.concat_tables([new, old])
    keys = settlement_minute(both.column("fundingTime").to_numpy())
    _, first = np.unique(keys, return_index=True)  # sorted by settlement; first occurrence = the new row
    merged = both.take(pa.array(first))
    # A row with a mark price keeps it when the newer source (the archive) has none.
    marks = merged.column("markPrice").to_pylist()
    if any(m is None for m in marks):
        old_marks = dict(zip(settlement_minute(old.column("fundingTime").to_numpy()).tolist(),
                             old.column("markPrice").to_pylist()))
        keys_m = settlement_minute(merged.column("fundingTime").to_numpy()).tolist()
        marks = [m if m is not None else old_marks.get(k) for m, k in zip(marks, keys_m)]
        merged = merged.set_column(2, "markPrice", pa.array(marks, pa.string()))
    return None if merged.equals(old) else merged
