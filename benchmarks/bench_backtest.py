"""Backtest throughput: EMA(20)/EMA(50) cross, long-only, fixed quantity, on seeded synthetic 1m klines.

    python benchmarks/bench_backtest.py [--klines 1000000] [--seed 42]

Prints klines/second through the full event-driven path (bus → strategy → risk manager → simulated
exchange → portfolio) and the peak memory of the process. Same spec as the peers' figures in issue 2:
next-open market fills, 0.04 % fee per side, no risk limit binding.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    t0 = time.perf_counter()
    frame = synthetic_klines(args.klines, args.seed)
    t1 = time.perf_counter()
    result = Backtest(config(args.klines), build_registry(), frames={"FILUSDT": frame}).run()
    t2 = time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trades = result.portfolio.trades
    print(f"klines:               {result.klines_processed:,}")
    print(f"trades:               {len(trades):,}")
    print(f"net pnl:              {sum(t.net_pnl for t in trades):.4f} USDT")
    print(f"replay loop:          {result.elapsed_s:.2f} s  ->  {result.klines_per_second:,.0f} klines/s")
    print(f"whole run (setup, indicators, equity curve): {t2 - t1:.2f} s -> {args.klines / (t2 - t1):,.0f} klines/s")
    print(f"data generation:      {t1 - t0:.2f} s")
    print(f"peak memory (RSS):    {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
