"""Multi-symbol backtests against one symbol, per kline (issue 17 target 4: 10 x 100k within 1.2x of 1 x 1M).

    python benchmarks/bench_multisymbol.py [--klines 1000000] [--symbols 10] [--seed 42] [--repeat 1] [--every-kline]
    python benchmarks/bench_multisymbol.py --idle [--klines 1000000] [--repeat 3]
    python benchmarks/bench_multisymbol.py --pairs [--klines 1000000]

``--idle``: the same two runs with fast = slow (two equal EMAs never cross: no orders), timing the replay
alone (this process's CPU time between the feed's first and last progress calls): the per-kline ratio of
the merged feed against the single-stream one, without setup or the order path.

``--pairs`` (issue 13): one two-symbol strategy (``strategies/pairs_spread.py``: one instance, both legs,
``on_kline`` once per kline time after both symbols' klines closed) on FILUSDT and NEARUSDT with
``klines / 2`` each, against two single-symbol EMA-cross instances on the same klines: klines/s of each
and the ratio, with the load average.

Same strategy as bench_backtest (EMA 20/50 cross, long-only, fixed quantity, leverage 1) on seeded
synthetic 1m klines: once on one symbol with ``--klines`` klines, once on ``--symbols`` symbols with
``klines / symbols`` each, so both replay the same number of klines. With several symbols, positions share
the cross wallet; ``--every-kline`` adds a run with cross liquidation prices re-solved after every kline (the
old way) to show what the cross-margin band saves. Prints wall and CPU seconds, ns per kline and the ratios
(on a machine shared with other work the CPU-time ratio is the steadier one); trades and PnL show the
results (the every-kline run must give the same).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import synthetic_klines

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.data import KlineFrame
from kinetic_empire.exchange import SimulatedExchange
from kinetic_empire.resources import default_symbol_rules
from kinetic_empire.strategy.registry import build_registry

SYMBOLS = ["FILUSDT", "NEARUSDT", "ADAUSDT", "XRPUSDT", "DOGEUSDT", "LINKUSDT", "DOTUSDT", "AVAXUSDT", "LTCUSDT",
           "BNBUSDT", "SOLUSDT", "ETHUSDT"]


ACT_MASK = "off"
"""Strategies' act masks (issue 17 target 8): off by default, so every kline's path is measured."""


def config(symbols: list[str], fast: int = 20) -> BacktestConfig:
    return BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 1_000_000, "fees": {"maker": 0.0004, "taker": 0.0004},
                     "funding_rate": 0},
        "strategies": [{"name": "ema_cross", "symbols": symbols, "timeframe": "1m",
                        "params": {"fast": fast, "slow": 50, "long_only": True}}],
        "risk": {"default_leverage": 1, "sizing": {"method": "fixed_notional", "notional": 500},
                 "guards": {"max_open_positions": len(symbols)}},
    })  # fmt: skip


def _frames(symbols: list[str], per_symbol: int, seed: int) -> dict[str, KlineFrame]:
    rules = default_symbol_rules(full=True)
    return {s: synthetic_klines(per_symbol, seed + i, s, start_price=5.0, tick=float(rules[s].tick_size))
            for i, s in enumerate(symbols)}


def timed(symbols: list[str], per_symbol: int, seed: int,
          frames: dict[str, KlineFrame] | None = None) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, klines, result line) of one backtest (on ``frames`` when given: made once for
    repeated runs, so the runs compared follow each other closely)."""
    if frames is None:
        frames = _frames(symbols, per_symbol, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    result = Backtest(config(symbols), build_registry(), frames=frames, act_mask=ACT_MASK).run()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    trades = result.portfolio.trades
    return elapsed, cpu, result.klines_processed, f"{len(trades):,} trades, net {sum(t.net_pnl for t in trades):.2f}"


def pairs(klines: int, seed: int) -> None:
    rules = default_symbol_rules(full=True)
    legs = ["FILUSDT", "NEARUSDT"]
    frames = {s: synthetic_klines(klines // 2, seed + i, s, start_price=5.0, tick=float(rules[s].tick_size))
              for i, s in enumerate(legs)}
    pair = BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": 1_000_000, "fees": {"maker": 0.0004, "taker": 0.0004},
                     "funding_rate": 0},
        "strategies": [{"name": "pairs_spread", "symbols": legs, "timeframe": "1m", "params": {"lookback": 60}}],
        "risk": {"default_leverage": 1, "sizing": {"method": "fixed_notional", "notional": 500}},
    })  # fmt: skip
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cpus)")
    idle = replace(pair, strategies=(replace(pair.strategies[0], params={"lookback": 60, "entry_z": 1e9}),))
    for name, cfg in (("two single-symbol ema_cross", config(legs)), ("one two-symbol pairs_spread", pair),
                      ("the same, never trading", idle)):
        t0 = time.perf_counter()
        result = Backtest(cfg, build_registry(), frames=frames, act_mask=ACT_MASK).run()
        whole = time.perf_counter() - t0
        trades = result.portfolio.trades
        print(f"{name:28s} 2 x {klines // 2:,}: replay {result.elapsed_s:6.2f} s -> {result.klines_per_second:9,.0f} "
              f"klines/s; whole run {whole:6.2f} s -> {result.klines_processed / whole:9,.0f} klines/s "
              f"({len(trades):,} trades)")
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def idle(klines: int, symbols: int, seed: int, repeat: int) -> None:
    """The replay's CPU time per kline with no orders, one symbol against several, alternating runs."""
    many = SYMBOLS[:symbols]
    data = {"one": _frames(many[:1], klines, seed), "many": _frames(many, klines // len(many), seed)}
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    best: dict[str, float] = {}
    for _ in range(max(1, repeat)):
        for name, frames in data.items():
            marks: list[tuple[int, float]] = []
            result = Backtest(config(list(frames), fast=50), build_registry(), frames=frames, act_mask=ACT_MASK).run(
                progress=lambda done, _total, marks=marks: marks.append((done, time.process_time())))
            if result.portfolio.trades:
                raise SystemExit("the idle run traded")
            (k0, c0), (k1, c1) = marks[0], marks[-1]
            best[name] = min(best.get(name, float("inf")), (c1 - c0) / (k1 - k0) * 1e9)
    print(f"idle replay, 1 x {klines:,}: {best['one']:,.0f} ns/kline CPU; {len(many)} x {klines // len(many):,}: "
          f"{best['many']:,.0f} ns/kline CPU; ratio {best['many'] / best['one']:.2f} (fastest of {repeat})")
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pairs", action="store_true", help="a two-symbol strategy against two single ones")
    parser.add_argument("--idle", action="store_true", help="replay only, no orders: the feed's per-kline ratio")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate the one- and many-symbol runs this many times (on the same klines, the "
                             "order swapped each round) and keep each one's fastest, with each round's ratio "
                             "and their median (a busy machine skews the ratio less)")
    parser.add_argument("--every-kline", action="store_true",
                        help="also run the many-symbol backtest re-solving liquidation prices after every kline")
    parser.add_argument("--act-mask", choices=("off", "use"), default="off",
                        help="use the strategy's act mask (skips idle klines); default off: every kline's path")
    args = parser.parse_args()
    global ACT_MASK
    ACT_MASK = args.act_mask
    if args.pairs:
        pairs(args.klines, args.seed)
        return
    if args.idle:
        idle(args.klines, args.symbols, args.seed, args.repeat)
        return
    many = SYMBOLS[: args.symbols]
    per = args.klines // len(many)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    best: dict[str, tuple[float, float]] = {}  # run -> fastest (wall, cpu)
    runs: dict[str, tuple[int, str]] = {}
    plans = (("one", many[:1], args.klines), ("many", many, per))
    frames = {name: _frames(symbols, count, args.seed) for name, symbols, count in plans}
    pairs_cpu: list[float] = []  # each round's many / one, per kline: a machine whose speed drifts over minutes
    for round_ in range(max(1, args.repeat)):  # skews a pair of neighbouring runs less than two fastest runs
        cpus = {}
        for name, symbols, count in plans if round_ % 2 == 0 else plans[::-1]:
            wall, cpu, n, result = timed(symbols, count, args.seed, frames[name])
            w0, c0 = best.get(name, (float("inf"), float("inf")))
            best[name], runs[name] = (min(w0, wall), min(c0, cpu)), (n, result)
            cpus[name] = cpu / n
        pairs_cpu.append(cpus["many"] / cpus["one"])
    for name, label in (("one", f"1 x {args.klines:,}"), ("many", f"{len(many)} x {per:,}")):
        (wall, cpu), (n, result) = best[name], runs[name]
        print(f"{label}:  {wall:7.2f} s wall  {cpu:7.2f} s CPU  {cpu / n * 1e9:7.0f} ns/kline CPU  ({result})")
    one, many_ = best["one"], best["many"]
    n_one, n_many = runs["one"][0], runs["many"][0]
    print(f"ratio multi/one per kline: {many_[1] / n_many / (one[1] / n_one):.2f} CPU, "
          f"{many_[0] / n_many / (one[0] / n_one):.2f} wall (target <= 1.2)")
    if len(pairs_cpu) > 1:
        print(f"ratio in each round (CPU): {', '.join(f'{r:.2f}' for r in pairs_cpu)}; "
              f"median {statistics.median(pairs_cpu):.2f}")
    if args.every_kline:
        SimulatedExchange.bounded_liquidation_solves = False
        wall, cpu, n, result = timed(many, per, args.seed)
        SimulatedExchange.bounded_liquidation_solves = True
        print(f"{len(many)} x {per:,}, re-solving every kline:  {wall:7.2f} s wall  {cpu:7.2f} s CPU  ({result}; "
              f"ratio {cpu / n / (one[1] / n_one):.2f} CPU)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
