"""Equity chart rendering on a year of 1m equity points (525,600), as a year-long backtest report draws it.

    python benchmarks/bench_report.py [--points 525600] [--runs 3]

Prints the render time per run (best and median) and the PNG size. Target: under 5 s per render on a
quiet machine (the test suite checks only that the bytes are valid and identical across renders).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from kinetic_empire.report import drawdown_pct, render_equity_png

TARGET_S = 5.0


def curve(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000 + 59_999
    eq = 10_000 + np.cumsum(np.sin(np.arange(n) / 37.0) * 3 + np.cos(np.arange(n) / 11.0))
    return ts, eq, drawdown_pct(eq, 10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=525_600)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ts, eq, dd = curve(args.points)
    render_equity_png(ts[:100], eq[:100], dd[:100])  # matplotlib's import and font cache are not the render
    times, size = [], 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        size = len(render_equity_png(ts, eq, dd))
        times.append(time.perf_counter() - t0)
    best = min(times)
    verdict = "ok" if best < TARGET_S else "MISSED"
    print(f"equity chart of {args.points:,} points: best {best:.2f} s, median {statistics.median(times):.2f} s "
          f"over {args.runs} runs, {size:,} bytes PNG; target < {TARGET_S:g} s: {verdict}")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
