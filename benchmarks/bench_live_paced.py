"""Kline-to-order latency at a live run's pace: one closing kline a minute, on the wall clock's minute boundaries.

    python benchmarks/bench_live_paced.py --minutes 60            # an hour; two samples a minute (two symbols)
    chrt -f 10 python benchmarks/bench_live_paced.py --minutes 120

``bench_live.py`` steps klines back to back (a few ms apart), so the engine never idles long. A live run idles
most of each minute, and the closing klines of every symbol arrive together just after the boundary. Here the same
engine, strategy and sandbox (``bench_live.measure``) are stepped at that pace: the kline closes 20 ms after each
wall-clock minute boundary (``--offset-ms``), and the next kline's opening update (where the orders fill) comes a
second later. Minutes alternate between ``live.close_poll`` off and on (the engine polls and rehearses from 150 ms
before the boundary to 750 ms after, as the config key does), so the two are compared under the same host phases.

Prints a line per minute (so a long run can be read while it goes, or stopped), then per arm p50/p90/p99/max of
the wall time from the kline message to its first order's request on the socket, with the CPU time beside it and
the host's steal over the run. With ~60 samples per arm an hour, p99 is about the second slowest sample: read the
max and the p90 too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_live import K, measure, percentile, steal_s, stop_on_sigterm

from kinetic_empire.live.gcpace import KLINE_CLOSE_QUIET_MS

BEFORE_S, AFTER_S = KLINE_CLOSE_QUIET_MS[0] / 1000, KLINE_CLOSE_QUIET_MS[1] / 1000


def paced(minutes: int, offset_ms: float, period_s: float = 60.0) -> Any:
    """A ``measure`` drive: each minute, close a kline ``offset_ms`` after the boundary, alternating the arms."""

    async def drive(step: Any, engine: Any, arm: Any, samples: Any) -> None:
        loop = asyncio.get_running_loop()
        await step(1)  # the first kline's opening update
        await engine.settle(0.005)
        for i in range(minutes):
            boundary = (time.time() // period_s + 1) * period_s
            poll = i % 2 == 1
            name = "close_poll on" if poll else "close_poll off"
            await asyncio.sleep(max(0.0, boundary - BEFORE_S - time.time()))
            if poll:  # the window live.close_poll opens around every boundary
                engine.close_poll.hold(BEFORE_S + AFTER_S)
            await asyncio.sleep(max(0.0, boundary + offset_ms / 1000 - time.time()))
            arm(name)
            await step(K)  # the rest of the kline and its close: what is measured
            await engine.settle(0.005)
            await asyncio.sleep(max(0.0, boundary + 1.0 - time.time()))
            arm("")
            await step(1)  # the next kline's opening update: the orders fill
            await engine.settle(0.005)
            got = [s for s in samples() if s[0] == name][-2:]
            print(f"  minute {i + 1:3d} {time.strftime('%H:%M:%S', time.gmtime(boundary))} {name:14s} "
                  + "  ".join(f"{w:6.2f} ms (CPU {c:5.2f}; {st})" for _, w, c, st in got)
                  + f"   (load {os.getloadavg()[0]:.2f}, loop {loop.time():.0f})", flush=True)

    return drive


def main() -> None:
    stop_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=int, default=30, help="closing klines to step, one a minute (default 30)")
    ap.add_argument("--offset-ms", type=float, default=20.0, help="the close's delay after each boundary")
    ap.add_argument("--period-s", type=float, default=60.0,
                    help="seconds between closes (default 60: a 1m kline's minute); shorter ones show how the cost "
                         "of a close grows with the idle time before it")
    ap.add_argument("--window", type=int, default=300)
    args = ap.parse_args()
    print(f"kline-to-order latency at a live pace: {args.minutes} minutes, closes {args.offset_ms:.0f} ms after each "
          f"boundary, close_poll off and on in alternate minutes", flush=True)
    stolen, began = steal_s(), time.perf_counter()
    r = asyncio.run(measure(args.minutes + 2, args.window, drive=paced(args.minutes, args.offset_ms, args.period_s)))
    after = steal_s()
    elapsed = time.perf_counter() - began
    for name in ("close_poll off", "close_poll on"):
        wall = [w for label, w, _ in r["labeled"] if label == name]
        cpu = [c for label, _, c in r["labeled"] if label == name and c == c]
        if not wall:
            continue
        over = sum(1 for w in wall if w >= 2)
        print(f"  {name:14s} {len(wall):4d} samples: p50 {statistics.median(wall):.2f}  p90 {percentile(wall, 0.9):.2f}"
              f"  p99 {percentile(wall, 0.99):.2f}  max {max(wall):.2f} ms;  {over} at or over 2 ms"
              + (f";  CPU p50 {statistics.median(cpu):.2f}  p99 {percentile(cpu, 0.99):.2f} ms" if cpu else ""))
    if stolen is not None and after is not None:
        print(f"  the host's steal over the run: {(after - stolen) / elapsed * 100:.1f} % of a core")
    print(f"  (load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
