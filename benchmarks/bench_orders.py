"""The backtest order path alone (issue 17, target 2): microseconds of CPU per order, and where they go.

    python benchmarks/bench_orders.py [--klines 30000] [--repeat 5] [--ablation] [--general]

``bench_backtest.py`` splits a 1M-kline EMA(20)/EMA(50) run (one order per ~49 klines) into per-kline and
per-order cost; with several benchmarks sharing the machine that split moves by tens of microseconds.
Here the same strategy with EMA(2)/EMA(3) orders every ~4 klines, so orders are most of the run:

* **split**: (CPU of the churning run - CPU of an idle EMA(3)/EMA(3) run on the same klines) / orders,
  the fastest of ``--repeat`` runs of each, alternated;
* **in the path**: this thread's CPU time inside the path's two entry points (the runner publishing an
  intent: risk gate, request, acceptance; and the exchange processing a kline that fills: the fill and
  every event and handler it sets off), per order;
* ``--ablation``: the same timing around each stage (a handler, the decision, the acceptance, the fill's
  bookkeeping), inclusive and self, per order. The timers cost about as much as a small stage (the
  timer's own cost is subtracted from the parent, not from the stage): read it for shares, not sums.

A backtest takes the fused order path (``risk.fast_path``, ``exchange.fast_fill``: the general decisions written
out for a plain market entry, close or flip, with the same results; ``backtest.direct``: the request, acceptance and
balance events handed to their only readers; round trips booked from the recorded fills when read);
``--general`` times the general path (every other intent shape takes it) instead, so one sitting compares both.
Round trips are booked when the trades are read, after the run: outside "in the path", inside "split" (each run
reads them).

Trade count and PnL are printed: they must not move when the path changes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backtest import config
from synthetic import synthetic_klines

from kinetic_empire.backtest import Backtest
from kinetic_empire.strategy.registry import build_registry

_ENTRY_POINTS = (("kinetic_empire.strategy.runner", "StrategyRunner", "_flush"),
                 ("kinetic_empire.exchange.matching", "Matching", "_process"))
_STAGES = _ENTRY_POINTS + tuple(tuple(line.split()) for line in """
kinetic_empire.strategy.runner StrategyRunner _collect
kinetic_empire.backtest.direct DirectFeeds intent
kinetic_empire.risk.manager RiskManager on_intent
kinetic_empire.risk.manager RiskManager _decide
kinetic_empire.risk.decision IntentDecider decide
kinetic_empire.risk.fast_path FastIntents plain
kinetic_empire.risk.fast_path FastIntents _entry
kinetic_empire.risk.fast_path FastIntents _close
kinetic_empire.risk.fast_path FastIntents flip
kinetic_empire.risk.exits ExitsInFlight sent_market
kinetic_empire.backtest.direct DirectFeeds request_fields
kinetic_empire.backtest.direct DirectFeeds request
kinetic_empire.portfolio.direct_handlers DirectHandlers market_requested
kinetic_empire.exchange.broker - accept_market
kinetic_empire.exchange.fast_fill - new_market_order
kinetic_empire.exchange.fast_fill - _check_margin
kinetic_empire.backtest.direct DirectFeeds accepted
kinetic_empire.portfolio.direct_handlers DirectHandlers market_accepted
kinetic_empire.exchange.matching - fill_queued_market
kinetic_empire.exchange.matching Matching _fill_market_general
kinetic_empire.exchange.fast_fill FusedState taker
kinetic_empire.exchange.fast_fill - _alone
kinetic_empire.backtest.direct DirectFeeds filled
kinetic_empire.portfolio.direct_handlers DirectHandlers market_filled
kinetic_empire.risk.exits ExitsInFlight filled
kinetic_empire.backtest.direct DirectFeeds settled
kinetic_empire.backtest.direct DirectFeeds position
kinetic_empire.portfolio.portfolio Portfolio position_changed
kinetic_empire.risk.manager RiskManager position_changed
kinetic_empire.backtest.direct DirectFeeds balance
kinetic_empire.portfolio.direct_handlers DirectHandlers wallet_changed
kinetic_empire.exchange.ledger Ledger _fill
kinetic_empire.exchange.ledger Ledger _update_liquidation_prices
""".strip().splitlines())
_GENERAL_STAGES = tuple(tuple(line.split()) for line in """
kinetic_empire.exchange.broker SimulatedBroker on_request
kinetic_empire.exchange.acceptance Acceptance submit
kinetic_empire.exchange.matching Matching _fill_market_orders
kinetic_empire.portfolio.portfolio Portfolio _on_intent
kinetic_empire.portfolio.portfolio Portfolio _on_request
kinetic_empire.portfolio.portfolio Portfolio _on_accepted
kinetic_empire.portfolio.portfolio Portfolio _on_filled
kinetic_empire.portfolio.portfolio Portfolio _on_position
kinetic_empire.portfolio.portfolio Portfolio _on_balance
kinetic_empire.risk.manager RiskManager _on_filled
kinetic_empire.risk.manager RiskManager _on_position
kinetic_empire.strategy.runner StrategyRunner _on_fill
kinetic_empire.strategy.runner StrategyRunner _on_position
""".strip().splitlines())
"""Also timed with ``--general`` (the bus handlers the general path calls)."""
"""Where an order's time goes on the fused path (``-``: a module's function, wrapped where it is called from). Bus
handlers that the direct delivery copies (``Portfolio._on_*``, ``SimulatedBroker.on_request``, the runners' and
the exits' fill handlers) are not wrapped: a wrapped one is an override, and the fused path would publish."""


class _Timers:
    """Thread-CPU timers wrapped around methods (inclusive and self time per stage)."""

    def __init__(self, stages: tuple[tuple[str, ...], ...]) -> None:
        self.inclusive: Counter[str] = Counter()
        self.own: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._stack: list[int] = []
        clock = time.thread_time_ns
        t = clock()
        for _ in range(20_000):
            clock()
            clock()
        self.pair_ns = (clock() - t) / 20_000
        self._undo: list[tuple[Any, str, Any]] = []
        for module, cls_name, method in stages:
            owner: Any = importlib.import_module(module)
            if cls_name != "-":
                owner = getattr(owner, cls_name)
            found = owner.__dict__[method] if cls_name != "-" else getattr(owner, method)
            self._undo.append((owner, method, found))
            setattr(owner, method, self._wrap(found, method if cls_name == "-" else f"{cls_name}.{method}"))

    def _wrap(self, f: Callable[..., Any], label: str) -> Callable[..., Any]:
        clock, stack, pair = time.thread_time_ns, self._stack, self.pair_ns
        inclusive, own, calls = self.inclusive, self.own, self.calls

        def timed(*args: Any, **kwargs: Any) -> Any:
            stack.append(0)
            t = clock()
            try:
                return f(*args, **kwargs)
            finally:
                d = clock() - t
                children = stack.pop()
                inclusive[label] += d
                own[label] += d - children
                calls[label] += 1
                if stack:
                    stack[-1] += d + pair  # the parent did not spend the child's timer calls itself

        return timed

    def clear(self) -> None:
        self.inclusive.clear()
        self.own.clear()
        self.calls.clear()

    def restore(self) -> None:
        for cls, method, f in self._undo:
            setattr(cls, method, f)


ACT_MASK = "off"
"""Strategies' act masks (issue 17 target 8): off by default, so every kline's path is measured."""
LONG_SHORT = False
"""``--long-short``: the strategy's every cross after the first is a flip."""


def _run(frame: Any, fast: int, slow: int, n: int) -> tuple[float, Any]:
    cpu = time.process_time()
    result = Backtest(config(n, fast=fast, slow=slow, long_only=not LONG_SHORT), build_registry(),
                      frames={"FILUSDT": frame}, act_mask=ACT_MASK).run()
    _ = result.portfolio.trades  # the round trips are booked when read: the split counts that work
    return time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--klines", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each kind; the fastest counts")
    parser.add_argument("--ablation", action="store_true", help="time each stage of the path")
    parser.add_argument("--general", action="store_true", help="the general order path (every other intent shape)")
    parser.add_argument("--long-short", action="store_true",
                        help="the strategy goes short too: after the first, every cross flips (a close and an entry "
                             "from one intent); figures per intent")
    parser.add_argument("--act-mask", choices=("off", "use"), default="off",
                        help="use the strategy's act mask (skips idle klines); default off: every kline's path")
    args = parser.parse_args()
    global ACT_MASK, LONG_SHORT
    ACT_MASK, LONG_SHORT = args.act_mask, args.long_short
    Backtest.fused_orders = not args.general
    print(f"load average:  {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cpus)")
    frame = synthetic_klines(args.klines, args.seed)
    trading = idle = float("inf")
    for _ in range(args.repeat):
        cpu, result = _run(frame, 2, 3, args.klines)
        trading = min(trading, cpu)
        cpu, quiet = _run(frame, 3, 3, args.klines)
        idle = min(idle, cpu)
    if sum(r.intents_emitted for r in quiet.runners):
        raise SystemExit("the idle run traded: the split would be wrong")
    orders = sum(r.intents_emitted for r in result.runners)
    trades = result.portfolio.trades
    unit = "intent (a flip: two orders)" if LONG_SHORT else "order"
    print(f"klines:        {args.klines:,}; trades {len(trades):,} ({orders:,} {unit.split()[0]}s); "
          f"net pnl {sum(t.net_pnl for t in trades):.4f} USDT")
    print(f"split:         {(trading - idle) / orders * 1e6:,.1f} us per {unit} "
          f"(trading run {trading:.2f} s - idle run {idle:.2f} s CPU) / orders")

    timers = _Timers(_ENTRY_POINTS)
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        timers.clear()
        _run(frame, 2, 3, args.klines)
        for label, ns in timers.inclusive.items():
            per = (ns - timers.calls[label] * timers.pair_ns / 2) / orders / 1000
            best[label] = min(best.get(label, per), per)
    timers.restore()
    path = sum(best.values())
    print(f"in the path:   {path:,.1f} us per {unit} (thread CPU: intent to accepted "
          f"{best['StrategyRunner._flush']:.1f}, the fill and its events {best['Matching._process']:.1f})")
    if not args.ablation:
        return
    timers = _Timers(_STAGES + (_GENERAL_STAGES if args.general else ()))
    incl: dict[str, float] = {}
    own: dict[str, float] = {}
    for _ in range(args.repeat):
        timers.clear()
        _run(frame, 2, 3, args.klines)
        for label, ns in timers.inclusive.items():
            incl[label] = min(incl.get(label, ns), ns)
            own[label] = min(own.get(label, timers.own[label]), timers.own[label])
    timers.restore()
    print(f"ablation (thread CPU per order, timers included; one timer pair costs {timers.pair_ns / 1000:.2f} us):")
    print(f"  {'inclusive':>9} {'self':>7}  calls/order  stage")
    for label in sorted(incl, key=lambda k: -own[k]):
        print(f"  {incl[label] / orders / 1000:9.1f} {own[label] / orders / 1000:7.1f}  "
              f"{timers.calls[label] / orders:11.2f}  {label}")


if __name__ == "__main__":
    main()
