"""Kline store on a symbol-year of 1m klines (525,600 rows in 12 monthly parquet files): write, then read.

    python benchmarks/bench_store.py [--runs 3]

Prints write and read times (best and median). Target: a year reads in under 1 s on a quiet machine
(the test suite checks only that what is read equals what was written).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import synthetic_klines

from kinetic_empire.data import KlineStore

TARGET_READ_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    year = synthetic_klines(525_600, symbol="SYNUSDT")
    writes, reads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            store = KlineStore(Path(tmp) / f"store-{i}")
            t0 = time.perf_counter()
            files = store.write(year)
            t1 = time.perf_counter()
            rows = len(store.read("SYNUSDT", "1m"))
            t2 = time.perf_counter()
            writes.append(t1 - t0)
            reads.append(t2 - t1)
    print(f"write {len(year):,} 1m klines into {len(files)} files: best {min(writes):.2f} s, "
          f"median {statistics.median(writes):.2f} s")
    print(f"read {rows:,} rows: best {min(reads):.3f} s, median {statistics.median(reads):.3f} s; "
          f"target < {TARGET_READ_S:g} s: {'ok' if min(reads) < TARGET_READ_S else 'MISSED'}")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
