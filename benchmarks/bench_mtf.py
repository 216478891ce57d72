"""What higher-timeframe indicators cost: a 1m EMA cross alone, and with a 1h and a 4h EMA read (issue 13).

    python benchmarks/bench_mtf.py [--klines 1000000] [--seed 42] [--repeat 3]

Both runs replay the same seeded synthetic 1m klines through the full event-driven path (bus → strategy
→ risk manager → simulated exchange → portfolio) with the benchmark spec of ``bench_backtest.py``
(next-open fills, 0.04 % per side, fixed quantity). The second strategy computes ``self.I(ema, ...,
timeframe="1h")`` and ``timeframe="4h"`` (each built from the 1m klines, visible once its period has
closed) and reads both on every kline. The fastest of ``--repeat`` alternating runs of each counts (CPU
time of this process, the least sensitive to other load); the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backtest import config
from synthetic import synthetic_klines

from kinetic_empire import Strategy, crossover, crossunder
from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.indicators import ema
from kinetic_empire.strategy.registry import build_registry


class MtfGate(Strategy):
    """ema_cross's trades (EMA(20)/EMA(50) on 1m, long only), reading a 1h and a 4h EMA(20) on every kline.

    It counts the klines where the close is above both instead of gating on them, so both runs place the
    same orders once its longer warm-up is over, and the difference is what the higher-timeframe indicators
    cost."""

    timeframe = "1m"

    def init(self):
        self.fast_ema = self.I(ema, self.close, 20)
        self.slow_ema = self.I(ema, self.close, 50)
        self.hour_ema = self.I(ema, self.close, 20, timeframe="1h")
        self.four_ema = self.I(ema, self.close, 20, timeframe="4h")
        self.above = 0

    def on_kline(self, kline):
        if kline.close > self.hour_ema[-1] and kline.close > self.four_ema[-1]:
            self.above += 1
        if crossover(self.fast_ema, self.slow_ema):
            self.buy()
        elif crossunder(self.fast_ema, self.slow_ema) and self.position.is_long:
            self.close_position()


def _run(name: str, frame, registry) -> tuple[float, float, int, int]:
    cfg = config(len(frame)) if name == "ema_cross" else BacktestConfig.from_mapping(_mapping(name))
    cpu0 = time.process_time()
    result = Backtest(cfg, registry, frames={"FILUSDT": frame}).run()
    cpu = time.process_time() - cpu0
    return cpu, result.elapsed_s, result.klines_processed, len(result.portfolio.trades)


def _mapping(name: str) -> dict:
    return {
        "backtest": {"data": "unused", "initial_balance": 1_000_000,
                     "fees": {"maker": 0.0004, "taker": 0.0004}, "funding_rate": 0},
        "strategies": [{"name": name, "symbols": ["FILUSDT"], "timeframe": "1m"}],
        "risk": {"default_leverage": 1, "sizing": {"method": "fixed_quantity", "quantity": 100}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each kind; the fastest counts")
    args = parser.parse_args()
    frame = synthetic_klines(args.klines, args.seed)
    registry = build_registry()
    registry.add(MtfGate, "benchmarks/bench_mtf.py")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cpus)")
    best: dict[str, tuple[float, float, int, int]] = {}
    for _ in range(args.repeat):
        for name in ("ema_cross", "mtf_gate"):
            got = _run(name, frame, registry)
            if name not in best or got[0] < best[name][0]:
                best[name] = got
    for name, (cpu, replay, klines, trades) in best.items():
        print(f"{name:10s} whole run {cpu:6.2f} s CPU -> {klines / cpu:>9,.0f} klines/s;"
              f" replay loop {replay:5.2f} s; {trades:,} trades")
    # the 4h EMA(20) needs 80 hours of 1m klines before the strategy's first call: the gated run starts later
    # and trades a little less; everything after its warm-up is the same trades
    ratio = best["mtf_gate"][0] / best["ema_cross"][0]
    print(f"1h + 4h indicators cost {ratio:.2f}x the single-timeframe run (whole-run CPU)")
    print(f"load average at end:   {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
