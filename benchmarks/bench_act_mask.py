"""Act masks (issue 17, target 8): the same backtest with and without the strategy's act mask, and how close a
declared EMA cross gets to vectorbt and to a bare Python loop.

    python benchmarks/bench_act_mask.py [--klines 1000000] [--seed 42] [--repeat 2] [--vbt-python PY]

Spec: that of ``bench_vs_backtesting.py`` (seeded GBM 1m bars, EMA(20)/EMA(50) cross long-only, a fixed 100
units, next-open fills, 0.04 % per side). The engine runs ``--repeat`` times each way, alternating (``off``
then ``use``), in one sitting; every run must give the same trades and net PnL or the script exits 1.
Printed per way: the best whole run (indicators, replay, results) and the best replay alone, the klines the
replay delivered (the rest were jumped over, flat or in a position with no order resting) and the strategy
calls skipped. Then the idle split
(fast = slow: the EMAs never cross): what a kline costs when nothing happens, without the mask and with it,
and so how much of the trading replay is the order path, which a mask cannot skip.

Two references for the same trades on the same bars:

* a bare Python loop: the same EMA arrays (``kinetic_empire.indicators.ema``), the crossings vectorised, then
  one Python iteration per kline taking the decisions and booking trades in float: the floor of an
  event loop in Python;
* vectorbt, when importable by ``--vbt-python`` (default ``/tmp/vbtvenv/bin/python``, a private venv with
  ``pip install vectorbt``; never a project dependency): ``Portfolio.from_signals`` on the same signals shifted
  to the next kline and filled at its open, timed in a child process, once cold (numba compiling) and once warm.

Both must give the engine's trade count and its net PnL within 1e-6 per trade on average, else the script
says so (exit 1). ``uptime``'s load is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backtest import config as engine_config
from synthetic import synthetic_klines

from kinetic_empire.backtest import Backtest
from kinetic_empire.data import KlineFrame
from kinetic_empire.indicators import ema
from kinetic_empire.strategy.act_mask import crossed_above
from kinetic_empire.strategy.registry import build_registry

FEE = 0.0004


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cpus)"


def run_engine(frame: KlineFrame, mode: str, fast: int, slow: int, quantity: float) -> dict[str, Any]:
    cfg = engine_config(len(frame), symbol=frame.symbol, quantity=quantity, fast=fast, slow=slow)
    bt = Backtest(cfg, build_registry(), frames={frame.symbol: frame}, act_mask=mode)
    t0, c0 = time.perf_counter(), time.process_time()
    result = bt.run()
    whole, cpu = time.perf_counter() - t0, time.process_time() - c0
    trades = [(t.entry_time, t.exit_time, t.entry_price, t.exit_price, t.net_pnl) for t in result.portfolio.trades]
    plan = bt.skip_plan
    skipped = sum(g.calls_skipped for g in bt.act_gates)
    return {"whole": whole, "cpu": cpu, "replay": result.elapsed_s, "trades": trades, "klines": result.klines_processed,
            "delivered": plan.delivered if plan is not None else result.klines_processed, "skipped_calls": skipped,
            "orders": len(result.portfolio.orders), "held": plan.held_skipped if plan is not None else 0}


def signals(frame: KlineFrame, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    f, s = ema(frame.close, fast), ema(frame.close, slow)
    return crossed_above(f, s), crossed_above(s, f)


def bare_loop(frame: KlineFrame, fast: int, slow: int, quantity: float) -> tuple[float, int, float]:
    """The strategy as one Python loop over precomputed crossings: (seconds, closed trades, net PnL)."""
    t0 = time.perf_counter()
    up, down = signals(frame, fast, slow)
    opens = frame.open.tolist()
    n = len(opens)
    long_entry = 0.0
    held = False
    trades, pnl = 0, 0.0
    for i, (u, d) in enumerate(zip(up.tolist(), down.tolist())):
        if i + 1 >= n:
            break
        if u and not held:
            held, long_entry = True, opens[i + 1]
        elif d and held:
            exit_price = opens[i + 1]
            pnl += (exit_price - long_entry) * quantity - (long_entry + exit_price) * quantity * FEE
            trades += 1
            held = False
    return time.perf_counter() - t0, trades, pnl


_VBT_CHILD = r"""
import json, sys, time
import numpy as np, pandas as pd
import vectorbt as vbt
data = np.load(sys.argv[1])
quantity = float(sys.argv[2])
o, c = data["open"], data["close"]
out = []
for attempt in ("cold", "warm"):
    t0 = time.perf_counter()
    close = pd.Series(c)
    # the engine's EMA (ta: pandas ewm, span, adjust=False, min_periods=period) and crossover rule
    f = close.ewm(span=int(sys.argv[3]), adjust=False, min_periods=int(sys.argv[3])).mean().to_numpy()
    s = close.ewm(span=int(sys.argv[4]), adjust=False, min_periods=int(sys.argv[4])).mean().to_numpy()
    up = np.zeros(len(c), bool); dn = np.zeros(len(c), bool)
    with np.errstate(invalid="ignore"):
        up[1:] = (f[:-1] <= s[:-1]) & (f[1:] > s[1:])
        dn[1:] = (s[:-1] <= f[:-1]) & (s[1:] > f[1:])
    entries = np.zeros(len(c), bool); exits = np.zeros(len(c), bool)
    entries[1:], exits[1:] = up[:-1], dn[:-1]  # a signal at kline i fills at the open of kline i + 1
    pf = vbt.Portfolio.from_signals(pd.Series(c), entries, exits, price=pd.Series(o), size=quantity,
                                    size_type="amount", fees=0.0004, init_cash=1e12, accumulate=False)
    rec = pf.trades.records_readable
    closed = rec[rec["Status"] == "Closed"]
    elapsed = time.perf_counter() - t0
    out.append({"attempt": attempt, "seconds": elapsed, "trades": int(len(closed)), "pnl": float(closed["PnL"].sum())})
print(json.dumps({"version": vbt.__version__, "runs": out}))
"""


def run_vectorbt(python: str, frame: KlineFrame, fast: int, slow: int, quantity: float) -> dict[str, Any] | str:
    if not Path(python).exists():
        return f"{python} not found (python -m venv /tmp/vbtvenv && /tmp/vbtvenv/bin/pip install vectorbt)"
    with tempfile.TemporaryDirectory() as tmp:
        bars = Path(tmp) / "bars.npz"
        np.savez(bars, open=frame.open, close=frame.close)
        script = Path(tmp) / "vbt_child.py"
        script.write_text(_VBT_CHILD)
        done = subprocess.run([python, str(script), str(bars), str(quantity), str(fast), str(slow)],
                              capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return "vectorbt run failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=2, help="engine runs per way, alternating (best is shown)")
    parser.add_argument("--quantity", type=float, default=100)
    parser.add_argument("--fast", type=int, default=20)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--vbt-python", default="/tmp/vbtvenv/bin/python", help="a python that can import vectorbt")
    parser.add_argument("--skip-vbt", action="store_true")
    args = parser.parse_args()
    frame = synthetic_klines(args.klines, args.seed)
    print(f"bars:            {len(frame):,} {frame.symbol} {frame.timeframe} ({frame.source})")
    print(f"load before:     {_load()}")
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "use": []}
    for _ in range(args.repeat):
        for mode in ("off", "use"):
            runs[mode].append(run_engine(frame, mode, args.fast, args.slow, args.quantity))
    reference = runs["off"][0]["trades"]
    for mode, done in runs.items():
        for r in done:
            if r["trades"] != reference:
                print(f"MISMATCH: act_mask={mode} gave other trades than act_mask=off")
                return 1
    pnl = sum((t[4] for t in reference), Decimal(0))
    best: dict[str, dict[str, float]] = {}
    for mode, done in runs.items():
        whole, replay, cpu = (min(r[key] for r in done) for key in ("whole", "replay", "cpu"))
        best[mode] = {"whole": whole, "replay": replay, "cpu": cpu}
        r = done[0]
        print(f"engine {mode:>3}:      whole {whole:6.2f} s ({cpu:.2f} s CPU), replay {replay:6.2f} s "
              f"({r['klines'] / replay:,.0f} klines/s); delivered {r['delivered']:,} of {r['klines']:,} klines "
              f"({r['held']:,} jumped over in a position), "
              f"{r['skipped_calls']:,} strategy calls skipped")
    print(f"trades and PnL:  identical both ways: {len(reference):,} trades, net PnL {pnl:.4f}, "
          f"{runs['use'][0]['orders']:,} order records")
    print(f"mask speed-up:   whole run {best['off']['whole'] / best['use']['whole']:.2f}x "
          f"({best['off']['cpu'] / best['use']['cpu']:.2f}x in CPU time, which other load disturbs less), "
          f"replay {best['off']['replay'] / best['use']['replay']:.2f}x")
    idle = {mode: run_engine(frame, mode, args.fast, args.fast, args.quantity) for mode in ("off", "use")}
    per_kline = idle["off"]["replay"] / idle["off"]["klines"]
    orders = runs["off"][0]["orders"] / 2  # each order: an accepted row and a fill row
    print(f"idle runs:       whole off {idle['off']['whole']:.2f} s ({idle['off']['cpu']:.2f} s CPU), use "
          f"{idle['use']['whole']:.2f} s ({idle['use']['cpu']:.2f} s CPU)")
    print(f"idle split:      fast = slow (never crosses): replay off {idle['off']['replay']:.2f} s "
          f"({per_kline * 1e9:,.0f} ns/kline), use {idle['use']['replay']:.3f} s ({idle['use']['delivered']:,} "
          f"klines delivered); so of the trading replay off, about {per_kline * len(frame):.2f} s is klines and "
          f"{best['off']['replay'] - per_kline * len(frame):.2f} s the {orders:,.0f} orders "
          f"({(best['off']['replay'] - per_kline * len(frame)) / orders * 1e6:,.0f} us each), which no mask skips")
    loop_s, loop_trades, loop_pnl = min((bare_loop(frame, args.fast, args.slow, args.quantity) for _ in range(2)),
                                        key=lambda x: x[0])
    status = 0
    ok = loop_trades == len(reference) and abs(loop_pnl - float(pnl)) < 1e-6 * max(1, loop_trades)
    print(f"bare loop:       {loop_s:6.2f} s, {loop_trades:,} trades, net PnL {loop_pnl:.4f} "
          f"({'same' if ok else 'DIFFERENT'}); engine with mask is {best['use']['whole'] / loop_s:.1f}x its time "
          f"(without: {best['off']['whole'] / loop_s:.1f}x)")
    status |= 0 if ok else 1
    if not args.skip_vbt:
        vbt = run_vectorbt(args.vbt_python, frame, args.fast, args.slow, args.quantity)
        if isinstance(vbt, str):
            print(f"vectorbt:        not measured: {vbt}")
        else:
            cold, warm = vbt["runs"]
            ok = warm["trades"] == len(reference) and abs(warm["pnl"] - float(pnl)) < 1e-6 * max(1, warm["trades"])
            print(f"vectorbt {vbt['version']}:  warm {warm['seconds']:6.2f} s (cold, numba compiling: "
                  f"{cold['seconds']:.2f} s), {warm['trades']:,} trades, net PnL {warm['pnl']:.4f} "
                  f"({'same' if ok else 'DIFFERENT'}); engine with mask is "
                  f"{best['use']['whole'] / warm['seconds']:.1f}x its time "
                  f"(without: {best['off']['whole'] / warm['seconds']:.1f}x)")
            status |= 0 if ok else 1
    print(f"load after:      {_load()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
