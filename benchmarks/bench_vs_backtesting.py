"""The engine against backtesting.py 0.6.6 on the same bars: same trades, same PnL, and the time ratio.

    python benchmarks/bench_vs_backtesting.py [--klines 1000000] [--seed 42] [--quantity 100] [--repeat 3]
    python benchmarks/bench_vs_backtesting.py --bars FILE_OR_DIR [--symbol FILUSDT]

Spec (issue 17): EMA(fast)/EMA(slow) cross, long-only (a cross up opens a long of a fixed quantity, a
cross down closes it), market orders filled at the next kline's open, 0.04 % fee per side, no leverage
limit binding. Bars are the seeded GBM of ``synthetic.py`` or any kline file/folder ``kinetic`` can load
(``--bars``, for re-measuring on bars the engine was not tuned on; prices must be on the symbol's tick).

The engine runs as a user runs it, with the strategy's act mask used (``Backtest``'s default: idle klines are
jumped over, with results identical to calling ``on_kline`` on every kline), and also with the mask off (every
kline's path); both are timed, alternated with backtesting.py, both must give the peer's trades and PnL, and both
ratios are printed. ``--act-mask`` picks the one printed as the headline ratio (default ``use``).

Both sides get the same EMA arrays (the engine's ``kinetic_empire.indicators.ema``) and the same
crossover rule (``a[-2] <= b[-2] and a[-1] > b[-1]``), so any difference is in the simulation. The script
fails (exit 1) unless every closed trade matches (entry/exit time and price, size) and each trade's net
PnL agrees to 1e-6 (backtesting.py computes in float, the engine in Decimal).

backtesting.py is an optional benchmark dependency, not a project dependency: if it is missing the
script says how to install it (into a private environment, e.g.
``python -m venv /tmp/btvenv && /tmp/btvenv/bin/pip install backtesting==0.6.6`` with the project on
``PYTHONPATH``). Timings are whole runs (indicators, simulation, results); ``uptime``'s load is printed
because the ratio only means something when both sides ran under the same load. Not timed on either side: imports,
and the engine's strategy registry (finding the strategy class, as the peer's ``class`` statement is not timed);
a full garbage collection runs before each timed run, so neither side pays for the other's garbage.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backtest import config as engine_config
from synthetic import synthetic_klines

from kinetic_empire.backtest import Backtest
from kinetic_empire.data import KlineFrame, load_klines
from kinetic_empire.indicators import ema
from kinetic_empire.strategy.registry import StrategyRegistry, build_registry

_INSTALL = ("backtesting.py 0.6.6 is not importable. It is an optional benchmark dependency; install it into a "
            "private environment, e.g.: python -m venv --system-site-packages /tmp/btvenv && "
            "/tmp/btvenv/bin/pip install backtesting==0.6.6, then run this script with /tmp/btvenv/bin/python "
            "and PYTHONPATH set to the project (or pip install 'backtesting==0.6.6' in your own venv).")


MODES = ("use", "off")
"""The engine's runs: the strategy's act mask used (as ``Backtest`` runs by default), and off (every kline's path)."""


def _load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cpus)"


def run_engine(frame: KlineFrame, fast: int, slow: int, quantity: float, registry: StrategyRegistry,
               act_mask: str) -> tuple[float, float, list[tuple[Any, ...]]]:
    cfg = engine_config(len(frame), symbol=frame.symbol, quantity=quantity, fast=fast, slow=slow)
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    result = Backtest(cfg, registry, frames={frame.symbol: frame}, act_mask=act_mask).run()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    trades = [(t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.quantity, t.net_pnl)
              for t in result.portfolio.trades]  # fmt: skip
    return elapsed, cpu, trades


def run_backtesting_py(
    frame: KlineFrame, fast: int, slow: int, quantity: float
) -> tuple[float, float, list[tuple[Any, ...]]]:
    import backtesting.backtesting as bt_module
    import pandas as pd
    from backtesting import Backtest as BtBacktest
    from backtesting import Strategy as BtStrategy

    size = int(quantity) if quantity == int(quantity) else quantity  # whole units: an int (a float < 1 is a share)

    class EmaCrossLong(BtStrategy):
        def init(self) -> None:
            self.f = self.I(ema, self.data.Close, fast)
            self.s = self.I(ema, self.data.Close, slow)

        def next(self) -> None:
            f, s = self.f, self.s
            if f[-2] <= s[-2] and f[-1] > s[-1]:  # the engine's crossover()
                if not self.position:
                    self.buy(size=size)
            elif s[-2] <= f[-2] and s[-1] > f[-1] and self.position:  # crossunder()
                self.position.close()

    bt_module._tqdm = lambda seq, **_: seq  # no progress bar in the figures
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    df = pd.DataFrame(
        {"Open": frame.open, "High": frame.high, "Low": frame.low, "Close": frame.close, "Volume": frame.volume},
        index=pd.to_datetime(frame.open_time, unit="ms"),
    )
    bt = BtBacktest(df, EmaCrossLong, cash=1e12, commission=0.0004, trade_on_close=False, exclusive_orders=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    tr = stats["_trades"]
    entry_ms = [t.value // 1_000_000 for t in tr["EntryTime"]]
    exit_ms = [t.value // 1_000_000 for t in tr["ExitTime"]]
    trades = list(zip(entry_ms, exit_ms, tr["EntryPrice"].tolist(),
                      tr["ExitPrice"].tolist(), tr["Size"].tolist(), tr["PnL"].tolist()))  # fmt: skip
    return elapsed, cpu, trades


def compare(engine: list[tuple[Any, ...]], peer: list[tuple[Any, ...]]) -> str | None:
    """None when the closed trades are the same; else the first difference, in one line."""
    if len(engine) != len(peer):
        return f"trade count differs: engine {len(engine):,}, backtesting.py {len(peer):,}"
    for n, (e, p) in enumerate(zip(engine, peer)):
        et, xt, ep, xp, q, pnl = e
        same = (et == p[0] and xt == p[1] and abs(float(ep) - p[2]) < 1e-9 and abs(float(xp) - p[3]) < 1e-9
                and float(q) == abs(p[4]) and abs(float(pnl) - p[5]) < 1e-6)  # fmt: skip
        if not same:
            return f"trade {n} differs: engine {e}, backtesting.py {p}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=1_000_000, help="synthetic klines (ignored with --bars)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bars", help="kline file or folder to use instead of the synthetic series")
    parser.add_argument("--symbol", default="FILUSDT", help="symbol of --bars (its exchange rules apply)")
    parser.add_argument("--timeframe", default="1m", help="timeframe of --bars")
    parser.add_argument("--quantity", type=float, default=100, help="fixed order quantity (default 100)")
    parser.add_argument("--fast", type=int, default=20)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--skip-peer", action="store_true", help="time the engine only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each side, alternated; the fastest of each counts (steadier under other load)")
    parser.add_argument("--act-mask", choices=MODES, default="use",
                        help="the engine's run the headline ratio is of (both are timed and printed): use (default, "
                             "as Backtest runs: idle klines jumped over) or off (every kline's path)")
    args = parser.parse_args()
    if not args.skip_peer:
        try:
            import backtesting
        except ImportError:
            print(_INSTALL, file=sys.stderr)
            return 2
        if backtesting.__version__ != "0.6.6":
            print(f"note: backtesting.py {backtesting.__version__} found; the spec names 0.6.6", file=sys.stderr)
    if args.bars:
        try:
            frame = load_klines(args.bars, symbol=args.symbol, timeframe=args.timeframe, gap_policy="keep")
        except Exception as exc:  # one line, no traceback: the path or its content is the problem
            print(f"error: cannot load bars from {args.bars}: {exc}", file=sys.stderr)
            return 2
    else:
        frame = synthetic_klines(args.klines, args.seed)
    registry = build_registry()
    print(f"bars:                 {len(frame):,} {frame.symbol} {frame.timeframe} ({frame.source or args.bars})")
    print(f"load before:          {_load_average()}")
    best = {mode: (float("inf"), float("inf")) for mode in MODES}
    engine: dict[str, list[tuple[Any, ...]]] = {}
    t_peer = c_peer = float("inf")
    peer: list[tuple[Any, ...]] = []
    for _ in range(max(1, args.repeat)):  # alternated, so every run meets the same spells of other load
        for mode in MODES:
            t, c, engine[mode] = run_engine(frame, args.fast, args.slow, args.quantity, registry, mode)
            best[mode] = (min(best[mode][0], t), min(best[mode][1], c))
        if not args.skip_peer:
            t, c, peer = run_backtesting_py(frame, args.fast, args.slow, args.quantity)
            t_peer, c_peer = min(t_peer, t), min(c_peer, c)
    fastest = f" (fastest of {args.repeat})" if args.repeat > 1 else ""
    for mode in MODES:
        pnl = sum((t[5] for t in engine[mode]), Decimal(0))
        t_engine, c_engine = best[mode]
        print(f"engine, act mask {mode + ':':5s} {t_engine:.2f} s ({c_engine:.2f} s CPU), "
              f"{len(engine[mode]):,} trades, net PnL {pnl:.4f}{fastest}")
    if args.skip_peer:
        return 0
    print(f"backtesting.py:       {t_peer:.2f} s ({c_peer:.2f} s CPU), {len(peer):,} trades, "
          f"net PnL {sum(t[5] for t in peer):.4f}{fastest}")
    print(f"load after:           {_load_average()}")
    for mode in sorted(MODES, key=lambda m: m != args.act_mask):  # the headline first
        t_engine, c_engine = best[mode]
        print(f"ratio, act mask {mode + ':':5s}  engine is {t_peer / t_engine:.2f}x faster than backtesting.py "
              f"({c_peer / c_engine:.2f}x in CPU time, which other load disturbs less)")
    mismatch = [f"act mask {mode}: {diff}" for mode in MODES if (diff := compare(engine[mode], peer))]
    for line in mismatch:
        print(f"MISMATCH, {line}")
    if mismatch:
        return 1
    print("trades and PnL:       identical both ways (every closed trade; PnL per trade within 1e-6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
