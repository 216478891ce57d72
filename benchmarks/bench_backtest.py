"""Backtest throughput: EMA(20)/EMA(50) cross, long-only, fixed quantity, on seeded synthetic 1m klines.

    python benchmarks/bench_backtest.py [--klines 1000000] [--seed 42] [--no-split]

Prints klines/second through the full event-driven path (bus → strategy → risk manager → simulated
exchange → portfolio), the peak memory of the process and the memory per kline above the data. Same
spec as the peers' figures in issue 2: next-open market fills, 0.04 % fee per side, no risk limit binding.

Unless ``--no-split``, a second run on the same klines with fast = slow (two identical EMAs never cross:
the strategy runs its crossover checks on every kline and never trades) splits the replay time in two
(issue 17, targets 2 and 3): the per-kline cost when nothing happens, and the cost per order (the extra
time of the trading run over the idle one, divided by the orders it placed).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import synthetic_klines

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.strategy.registry import build_registry


def config(n: int, *, symbol: str = "FILUSDT", quantity: float = 100, fast: int = 20, slow: int = 50) -> BacktestConfig:
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
                    "params": {"fast": fast, "slow": slow, "long_only": True},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-split", action="store_true", help="skip the idle run (per-kline / per-order split)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind for the split; the fastest counts")
    args = parser.parse_args()
    print(f"load average:         {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cpus)")
    t0 = time.perf_counter()
    frame = synthetic_klines(args.klines, args.seed)
    t1 = time.perf_counter()
    import pandas  # noqa: F401
    import ta.trend  # noqa: F401

    import kinetic_empire.indicators as _ind  # noqa: F401  (imports outside the measured memory)

    base_mib = _rss_mib()
    cpu0 = time.process_time()
    result = Backtest(config(args.klines), build_registry(), frames={"FILUSDT": frame}).run()
    t2 = time.perf_counter()
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
    if args.no_split:
        return
    del result, trades
    for _ in range(args.repeat - 1):  # the fastest of several runs: the one least disturbed by other load
        cpu0 = time.process_time()
        Backtest(config(args.klines), build_registry(), frames={"FILUSDT": frame}).run()
        full_cpu = min(full_cpu, time.process_time() - cpu0)
    idle_cpu = float("inf")
    for _ in range(args.repeat):
        cpu0 = time.process_time()
        idle = Backtest(config(args.klines, fast=50, slow=50), build_registry(), frames={"FILUSDT": frame}).run()
        idle_cpu = min(idle_cpu, time.process_time() - cpu0)
    if sum(r.intents_emitted for r in idle.runners):
        raise SystemExit("the idle run traded: the split would be wrong")
    per_kline_ns = idle.elapsed_s / idle.klines_processed * 1e9
    per_kline_cpu = idle_cpu / idle.klines_processed * 1e9
    print(f"idle replay:          {idle.elapsed_s:.2f} s wall -> {per_kline_ns:,.0f} ns per kline when nothing happens;"
          f" whole idle run {idle_cpu:.2f} s CPU -> {per_kline_cpu:,.0f} ns per kline (setup included)")
    # the trading run = the idle run + what its orders added (fastest CPU time of whole runs, same setup)
    per_order_us = (full_cpu - idle_cpu) / max(1, orders) * 1e6
    print(f"order path:           {per_order_us:,.1f} us per order ((trading - idle run CPU) / orders)")


if __name__ == "__main__":
    main()
