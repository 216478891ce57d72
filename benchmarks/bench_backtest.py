"""Backtest throughput: EMA(20)/EMA(50) cross, long-only, fixed quantity, on seeded synthetic 1m klines.

    python benchmarks/bench_backtest.py [--klines 1000000] [--seed 42] [--no-split] [--idle] [--store DIR]

Prints klines/second through the full event-driven path (bus → strategy → risk manager → simulated
exchange → portfolio), the peak memory of the process and the memory per kline above the data. Same
spec as the peers' figures in issue 2: next-open market fills, 0.04 % fee per side, no risk limit binding.

Unless ``--no-split``, a second run on the same klines with fast = slow (two identical EMAs never cross:
the strategy runs its crossover checks on every kline and never trades) splits the replay time in two
(issue 17, targets 2 and 3): the per-kline cost when nothing happens, and the cost per order (the extra
time of the trading run over the idle one, divided by the orders it placed).

``--idle`` runs only the idle backtest and prints its replay cost per kline as wall time and as this
process's CPU time over the replay alone (read at the feed's progress calls: steadier under other load).

``--store DIR`` (issue 17, target 5) reads the klines from a parquet store memory-mapped, as a backtest
larger than memory does: the store is written first (in a child process, so its memory is not counted) when it
lacks them, and the run prints its peak anonymous memory (what the data's file-backed pages do not count in)
beside the peak RSS. Run it per size to see how the peak grows, e.g.
``for n in 1000000 5000000 10000000; do python benchmarks/bench_backtest.py --klines $n --store /tmp/s$n; done``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import synthetic_klines

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.strategy.registry import build_registry

ACT_MASK = "off"
"""Strategies' act masks (issue 17 target 8): off by default, so every kline's path is measured."""


def config(n: int, *, symbol: str = "FILUSDT", quantity: float = 100, fast: int = 20, slow: int = 50,
           long_only: bool = True) -> BacktestConfig:
    """The benchmark's backtest (``n`` is unused: the frames given decide the length)."""
    return BacktestConfig.from_mapping(
        {
            "backtest": {
                "data": "unused",
                "initial_balance": 1_000_000,
                "fees": {"maker": 0.0004, "taker": 0.0004},
                "funding_rate": 0,
            },
            "strategies": [
                {
                    "name": "ema_cross",
                    "symbols": [symbol],
                    "timeframe": "1m",
                    "params": {"fast": fast, "slow": slow, "long_only": long_only},
                }
            ],
            "risk": {
                "default_leverage": 1,
                "sizing": {"method": "fixed_quantity", "quantity": quantity},
            },
        }
    )


def _rss_mib() -> float:
    """Current resident memory (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _anon_mib() -> float:
    """Current anonymous resident memory (Linux /proc RssAnon), MiB: memory of our own, not file pages."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _PeakAnon:
    """Samples RssAnon every 20 ms in a thread (the kernel keeps no anonymous high-water mark); only with
    ``--store``: the sampling takes the GIL from the replay, which would bend the CPU figures of the split."""

    def __init__(self) -> None:
        self.peak = _anon_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _anon_mib())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _anon_mib())


def _idle_only(frame, klines: int, repeat: int) -> None:
    """Idle runs only: replay cost per kline, wall and CPU (the CPU between the first and last progress call)."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        marks: list[tuple[int, float]] = []
        run = Backtest(config(klines, fast=50, slow=50), build_registry(), frames={"FILUSDT": frame}, act_mask=ACT_MASK)
        idle = run.run(progress=lambda done, _total, marks=marks: marks.append((done, time.process_time())))
        if sum(r.intents_emitted for r in idle.runners):
            raise SystemExit("the idle run traded")
        best_wall = min(best_wall, idle.elapsed_s / idle.klines_processed * 1e9)
        (k0, c0), (k1, c1) = marks[0], marks[-1]
        if k1 > k0:
            best_cpu = min(best_cpu, (c1 - c0) / (k1 - k0) * 1e9)
    print(f"idle replay:          {best_wall:,.0f} ns per kline wall, {best_cpu:,.0f} ns per kline CPU "
          f"(fastest of {repeat})")


def _store_frame(root: str, klines: int, seed: int):
    """The benchmark's klines read memory-mapped from the store at ``root``, written there first if absent."""
    from kinetic_empire.data import KlineStore

    store = KlineStore(root)
    if not store.series_dir("FILUSDT", "1m").is_dir():
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from synthetic import synthetic_klines; "
                "from kinetic_empire.data import KlineStore; "
                "KlineStore(sys.argv[2]).write(synthetic_klines(int(sys.argv[3]), int(sys.argv[4])))")
        subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent), root, str(klines),
                        str(seed)], check=True)  # fmt: skip
    frame = store.read("FILUSDT", "1m", mapped=True)
    if len(frame) != klines:
        raise SystemExit(f"{root} holds {len(frame):,} klines, not {klines:,}: use an empty folder")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-split", action="store_true", help="skip the idle run (per-kline / per-order split)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind for the split; the fastest counts")
    parser.add_argument("--idle", action="store_true", help="only the idle run: replay cost per kline")
    parser.add_argument("--store", metavar="DIR", help="read the klines memory-mapped from a parquet store")
    parser.add_argument("--act-mask", choices=("off", "use"), default="off",
                        help="use the strategy's act mask (skips idle klines); default off: every kline's path")
    args = parser.parse_args()
    global ACT_MASK
    ACT_MASK = args.act_mask
    print(f"load average:         {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cpus)")
    t0 = time.perf_counter()
    frame = _store_frame(args.store, args.klines, args.seed) if args.store else synthetic_klines(args.klines, args.seed)
    t1 = time.perf_counter()
    if args.idle:
        _idle_only(frame, args.klines, args.repeat)
        return
    import pandas  # noqa: F401
    import ta.trend  # noqa: F401

    import kinetic_empire.indicators as _ind  # noqa: F401  (imports outside the measured memory)

    base_mib = _rss_mib()
    base_anon = _anon_mib()
    anon = _PeakAnon() if args.store else None
    cpu0 = time.process_time()
    result = Backtest(config(args.klines), build_registry(), frames={"FILUSDT": frame}, act_mask=ACT_MASK).run()
    t2 = time.perf_counter()
    peak_anon = anon.stop() if anon is not None else 0.0
    full_cpu = time.process_time() - cpu0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trades = result.portfolio.trades
    orders = sum(r.intents_emitted for r in result.runners)
    print(f"klines:               {result.klines_processed:,}")
    print(f"trades:               {len(trades):,}  ({orders:,} orders)")
    print(f"net pnl:              {sum(t.net_pnl for t in trades):.4f} USDT")
    print(f"replay loop:          {result.elapsed_s:.2f} s  ->  {result.klines_per_second:,.0f} klines/s")
    print(f"whole run (setup, indicators, equity curve): {t2 - t1:.2f} s -> {args.klines / (t2 - t1):,.0f} klines/s")
    print(f"whole run CPU time:   {full_cpu:.2f} s (this process only: less sensitive to other load)")
    print(f"data generation:      {t1 - t0:.2f} s")
    print(f"peak memory (RSS):    {peak_mib:,.0f} MiB")
    above = (peak_mib - base_mib) * 2**20 / max(1, result.klines_processed)
    print(f"memory above data:    {above:,.0f} bytes/kline (peak {peak_mib:,.0f} MiB - {base_mib:,.0f} MiB with "
          "the klines and imports loaded)")
    if anon is not None:
        per_kline = (peak_anon - base_anon) * 2**20 / max(1, result.klines_processed)
        print(f"peak anonymous memory: {peak_anon:,.0f} MiB ({base_anon:,.0f} MiB before the run; file-backed pages of "
              f"mapped klines are not in it) -> {per_kline:,.0f} bytes/kline")
    if args.no_split or args.store:
        return
    del result, trades
    for _ in range(args.repeat - 1):  # the fastest of several runs: the one least disturbed by other load
        cpu0 = time.process_time()
        Backtest(config(args.klines), build_registry(), frames={"FILUSDT": frame}, act_mask=ACT_MASK).run()
        full_cpu = min(full_cpu, time.process_time() - cpu0)
    idle_cpu = idle_wall = float("inf")
    for _ in range(args.repeat):
        cpu0 = time.process_time()
        idle = Backtest(config(args.klines, fast=50, slow=50), build_registry(), frames={"FILUSDT": frame},
                        act_mask=ACT_MASK).run()
        idle_cpu = min(idle_cpu, time.process_time() - cpu0)
        idle_wall = min(idle_wall, idle.elapsed_s)  # the fastest, like the CPU figure, not the last run's
        if sum(r.intents_emitted for r in idle.runners):
            raise SystemExit("the idle run traded: the split would be wrong")
    per_kline_ns = idle_wall / idle.klines_processed * 1e9
    per_kline_cpu = idle_cpu / idle.klines_processed * 1e9
    print(f"idle replay:          {idle_wall:.2f} s wall -> {per_kline_ns:,.0f} ns per kline when nothing happens;"
          f" whole idle run {idle_cpu:.2f} s CPU -> {per_kline_cpu:,.0f} ns per kline (setup included)")
    # the trading run = the idle run + what its orders added (fastest CPU time of whole runs, same setup)
    per_order_us = (full_cpu - idle_cpu) / max(1, orders) * 1e6
    print(f"order path:           {per_order_us:,.1f} us per order ((trading - idle run CPU) / orders)")


if __name__ == "__main__":
    main()
