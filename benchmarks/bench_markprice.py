"""Backtest throughput with mark-price klines in the store, and with a strategy that asks for mark events.

    python benchmarks/bench_markprice.py [--klines 200000] [--seed 42]

Same spec as bench_backtest.py (EMA(20)/EMA(50) cross, long-only, 1m, fixed quantity) read from a
parquet store in a temporary folder, three ways: klines only (mark = last), klines plus mark-price
klines (the exchange on the mark), and the same with ``on_mark_price`` and ``on_ticker`` defined (one
event of each per kline). Prints the replay-loop klines/s of each.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from bench_backtest import config
from synthetic import synthetic_klines

from kinetic_empire.backtest import Backtest
from kinetic_empire.data import KlineStore
from kinetic_empire.download.stores import MarkKlineStore
from kinetic_empire.strategy.registry import build_registry

_STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    frame = synthetic_klines(args.klines, args.seed)
    mark = replace(frame, open=frame.open * 1.0002, high=frame.high * 1.0002, low=frame.low * 1.0002,
                   close=frame.close * 1.0002)
    registry = build_registry()
    base = registry.get("ema_cross")

    class EmaCrossWatching(base):  # type: ignore[misc, valid-type]
        name = "ema_cross_watching"

        def on_mark_price(self, update):  # type: ignore[no-untyped-def]
            pass

        def on_ticker(self, ticker):  # type: ignore[no-untyped-def]
            pass

    registry.add(EmaCrossWatching, "bench_markprice")
    with tempfile.TemporaryDirectory() as tmp:
        plain, marked = Path(tmp) / "plain", Path(tmp) / "marked"
        for root in (plain, marked):
            KlineStore(root).write(frame)
        MarkKlineStore(marked).write(mark)
        for label, root, name in (("klines only (mark = last)", plain, "ema_cross"),
                                  ("with mark-price klines", marked, "ema_cross"),
                                  ("with marks + on_mark_price/on_ticker", marked, "ema_cross_watching")):
            cfg = config(args.klines)
            cfg = replace(cfg, data=(str(root),), strategies=(replace(cfg.strategies[0], name=name),))
            result = Backtest(cfg, registry).run()
            print(f"{label:<40} {result.elapsed_s:6.2f} s  ->  {result.klines_per_second:>9,.0f} klines/s"
                  f"  ({len(result.portfolio.trades):,} trades)")


if __name__ == "__main__":
    main()
