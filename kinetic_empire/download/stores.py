"""Where downloads land besides the kline store: mark-price klines and the per-series coverage record.

Mark-price klines live in ``root/mark/<SYMBOL>/<tf>-mark/<YYYY-MM>.parquet``. The ``-mark`` suffix is
deliberate: the backtester finds klines in a store root by searching for partitions whose folder is a
timeframe, and mark prices must never be mistaken for (and merged with) last-price klines.

The coverage record (``root/coverage/<SYMBOL>/<series>.json``) says which ranges were fetched from a
source and which gaps that source had. It is what makes a re-run skip a month with a real Binance
outage in it instead of downloading it again, and what ``kinetic data list`` reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kinetic_empire.core.timeframes import TIMEFRAME_MS
from kinetic_empire.data import CatalogEntry, Gap, KlineStore, find_gaps
from kinetic_empire.data.staged import StagedFiles
from kinetic_empire.data.store import read_open_times
from kinetic_empire.download.periods import Range, union
from kinetic_empire.download.series import SeriesKey

MARK_SUFFIX = "-mark"


class MarkKlineStore(KlineStore):
    """A KlineStore whose series live under ``root/mark`` in ``<tf>-mark`` folders."""

    def series_dir(self, symbol: str, timeframe: str) -> Path:
        super().series_dir(symbol, timeframe)  # validates symbol and timeframe
        return self.root / "mark" / symbol / f"{timeframe}{MARK_SUFFIX}"

    def catalog(self) -> list[CatalogEntry]:
        entries = []
        base = self.root / "mark"
        for sym_dir in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
            for tf_dir in sorted(sym_dir.glob(f"*{MARK_SUFFIX}")):
                tf = tf_dir.name[: -len(MARK_SUFFIX)]
                files = self._partitions(tf_dir)
                if tf not in TIMEFRAME_MS or not files:
                    continue
                t = np.concatenate([read_open_times(f).column(0).to_numpy() for f in files])
                entries.append(CatalogEntry(sym_dir.name, tf, int(t[0]), int(t[-1]), int(t.size),
                                            len(find_gaps(t, TIMEFRAME_MS[tf]))))
        return entries


@dataclass
class Coverage:
    """Ranges fetched from a source for one series, and the gaps the source had in them."""

    path: Path
    covered: list[Range] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path, key: SeriesKey) -> Coverage:
        path = Path(root) / "coverage" / key.symbol / f"{key.slug}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError):
            return cls(path)  # unreadable record: forget it, the data will be checked again
        covered = [(int(s), int(e)) for s, e in data.get("covered", [])]
        gaps = [Gap(int(s), int(e), int(m)) for s, e, m in data.get("source_gaps", [])]
        return cls(path, union(covered), gaps)

    def add(self, rng: Range, gaps: list[Gap]) -> None:
        self.covered = union([*self.covered, rng])
        known = {(g.start_ms, g.end_ms) for g in self.gaps}
        self.gaps = sorted([*self.gaps, *(g for g in gaps if (g.start_ms, g.end_ms) not in known)],
                           key=lambda g: g.start_ms)

    def save(self) -> None:
        """Atomic (temporary file, then rename), like the partitions it describes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"covered": [list(r) for r in self.covered],
                "source_gaps": [[g.start_ms, g.end_ms, g.missing] for g in self.gaps]}
        with StagedFiles() as batch:
            batch.text(json.dumps(data, indent=1), self.path)


def stored_spans(store: KlineStore, symbol: str, timeframe: str) -> list[Range]:
    """Contiguous runs of stored klines as ranges ``[first_open, last_open + interval)``."""
    folder = store.series_dir(symbol, timeframe)
    files = sorted(folder.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9].parquet")) if folder.is_dir() else []
    if not files:
        return []
    t = np.concatenate([read_open_times(f).column(0).to_numpy() for f in files])
    interval = TIMEFRAME_MS[timeframe]
    breaks = np.flatnonzero(np.diff(t) != interval)
    starts = np.r_[t[0], t[breaks + 1]]
    ends = np.r_[t[breaks], t[-1]] + interval
    return [(int(s), int(e)) for s, e in zip(starts, ends)]
