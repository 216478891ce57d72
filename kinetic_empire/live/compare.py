"""``kinetic compare <run-id> <backtest>``: a paper run and a backtest of the same klines, trade by trade.

Trades are paired by symbol and side, nearest entry time first (within ``match_window_ms``). Each pair
is checked field by field and every difference gets a reason the operator can act on: a later entry
(the feed was late or backfilled, an order's outcome was unknown), another entry price (filled at a
later price update), another exit (a stop and a take-profit inside one kline resolve differently on
the sandbox's intrabar path), another size (equity had already diverged). A trade on one side only is
explained from the paper run's journal: a risk denial, a venue rejection, a halted strategy, a feed
gap, or the edge of the run's window.

What counts: a difference is *harmless* when latency explains it: a fill later than the backtest's
(under five minutes), the price at that later moment, and a size within 1 % (equity drifted with those
prices); a trade on one side only is harmless at the edge of the run's window.
A trade still open at the end of the paper run is counted apart (its exit is not known yet), paired
with the backtest's trade when there is one. Everything else is *material*, and only material
differences make ``kinetic compare`` exit 3. Before the trades, the two configurations are compared
(strategies, symbols, timeframes, parameters, risk, fees, balance): a mismatch is warned about first,
since it explains every difference below it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..core.events import Note, OrderRejected, RiskDenied, StrategyHalted, TradingStateChanged
from .compare_config import backtest_config, config_mismatches, journal_config
from .journal import read_events
from .report import REPORT_DIR, build_report

_MIN = 60_000


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    side: str
    quantity: Decimal
    entry_time: int
    entry_price: Decimal
    exit_time: int
    exit_price: Decimal
    exit_reason: str
    net_pnl: Decimal


@dataclass
class Pair:
    live: Trade
    backtest: Trade
    differences: list[str] = field(default_factory=list)
    material: bool = False  # a difference beyond fill latency inside a kline and tick-level prices


EDGE = "at the edge of the paper run's window"


@dataclass
class Comparison:
    pairs: list[Pair]
    missed: list[tuple[Trade, str]]  # in the backtest only
    extra: list[tuple[Trade, str]]  # in the paper run only
    window: tuple[int, int]
    outside: int = 0  # backtest trades outside the paper run's window
    open_at_end: list[tuple[Trade, Trade | None]] = field(default_factory=list)  # paper run's open trades
    config_warnings: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.missed and not self.extra and all(not p.differences for p in self.pairs)

    @property
    def material(self) -> bool:
        """Differences an operator must look at (see the module docstring); harmless ones are not."""
        one_sided = [why for _t, why in (*self.missed, *self.extra) if not why.startswith(EDGE)]
        return bool(one_sided) or any(p.material for p in self.pairs)


def read_trades(path: Path) -> list[Trade]:
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.append(Trade(
                symbol=row["symbol"], side=row["side"], quantity=Decimal(row["quantity"]),
                entry_time=int(row["entry_time"]), entry_price=Decimal(row["entry_price"]),
                exit_time=int(row["exit_time"]), exit_price=Decimal(row["exit_price"]),
                exit_reason=row["exit_reason"], net_pnl=Decimal(row["net_pnl"]),
            ))
    return out


class _Journal:
    """What the paper run's journal says happened around a time on a symbol."""

    def __init__(self, run_dir: Path) -> None:
        self.events: list[Any] = list(read_events(run_dir / "journal.sqlite", (
            "RiskDenied", "OrderRejected", "StrategyHalted", "Note", "TradingStateChanged", "KlineClosed")))
        klines = [e for e in self.events if type(e).__name__ == "KlineClosed"]
        self.start = min((k.open_time for k in klines), default=0)
        self.end = max((k.ts_event for k in klines), default=0)

    def explain(self, symbol: str, ts: int, span_ms: int) -> str:
        near = [e for e in self.events if abs(e.ts_event - ts) <= span_ms and getattr(e, "symbol", symbol) in
                (symbol, None)]
        for e in near:
            if isinstance(e, RiskDenied):
                return f"rejection: the risk manager denied the entry ({e.code}: {e.message})"
        for e in near:
            if isinstance(e, OrderRejected):
                return f"rejection: the venue rejected the order ({e.code}: {e.reason})"
        for e in self.events:
            if isinstance(e, StrategyHalted) and e.ts_event <= ts:
                return f"missed signal: strategy {e.strategy_id} was halted ({e.error[:80]})"
        for e in near:
            if isinstance(e, TradingStateChanged) and e.state.value != "ACTIVE":
                return f"missed signal: trading was {e.state.value} ({e.cause})"
            if isinstance(e, Note) and e.topic == "feed":
                return f"missed signal: {e.message}"
        if ts - self.start < span_ms or self.end - ts < span_ms:
            return f"{EDGE}: the other side saw a different history or end"
        return "missed signal: no intent at that time; the strategy's state (position) differed by then"


def _timing(what: str, delta_ms: int) -> str:
    later = "later" if delta_ms > 0 else "earlier"
    if abs(delta_ms) < _MIN:
        return (f"{what} {abs(delta_ms) / 1000:g} s {later} in the paper run: the order reached the venue after "
                "the kline's opening update and filled at its next price update (fill latency, same kline)")
    return (f"{what} {abs(delta_ms) / _MIN:g} min {later} in the paper run (a late or backfilled kline, or an "
            "order whose outcome was unknown and was resolved later)")


def _same_price(a: Decimal, b: Decimal) -> bool:
    """Equal at the coarser of the two precisions (one side's CSV may round averages to fewer decimals)."""
    places = min(_places(a), _places(b))
    step = Decimal(1).scaleb(-places)
    return a.quantize(step) == b.quantize(step)


def _places(d: Decimal) -> int:
    exponent = d.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


LAG_MS = 5 * _MIN
"""A paper fill this much later than the backtest's is a different decision, not latency."""
SIZE_TOLERANCE = Decimal("0.01")
"""Sizes within 1 % differ because equity drifted with earlier fills' prices, not by a decision."""


def _differences(a: Trade, b: Trade, tol_pct: Decimal) -> tuple[list[str], bool]:
    """(what differs, whether any of it is material).

    Harmless: what latency causes (a later fill, the price at that moment, and the slightly different
    equity and size that follow). Material: another exit reason, a size off by more than 1 %, a price
    off beyond the tolerance at the same moment, or a fill five minutes or more apart.
    """
    out, material = [], False
    if a.entry_time != b.entry_time:
        out.append("timing: " + _timing("entered", a.entry_time - b.entry_time))
        material |= abs(a.entry_time - b.entry_time) >= LAG_MS
    for name, pa, pb, same_time in (("entry", a.entry_price, b.entry_price, a.entry_time == b.entry_time),
                                    ("exit", a.exit_price, b.exit_price, a.exit_time == b.exit_time)):  # fmt: skip
        if not _same_price(pa, pb):
            pct = (pa - pb) / pb * 100 if pb else Decimal(0)
            level = "entry price" if name == "entry" else "exit price"
            beyond = abs(pct) > tol_pct
            cause = ("filled at a later price update than the kline's open" if beyond and not same_time
                     else "a different price at the same moment" if beyond else "tick-level difference")
            out.append(f"{level}: {pa} vs {pb} ({pct:+.4f} %): {cause}")
            material |= beyond and same_time
    if a.exit_reason != b.exit_reason:
        out.append(f"exit: {a.exit_reason} vs {b.exit_reason} (a stop and a take-profit inside one kline: the "
                   "sandbox follows the kline's intrabar path, the backtest assumes the stop first)")
        material = True
    elif a.exit_time // _MIN != b.exit_time // _MIN or (a.exit_reason == "signal" and a.exit_time != b.exit_time):
        out.append("exit timing: " + _timing("exited", a.exit_time - b.exit_time))
        material |= abs(a.exit_time - b.exit_time) >= LAG_MS
    if a.quantity != b.quantity:
        off = abs(a.quantity - b.quantity) / max(abs(b.quantity), Decimal("1e-18"))
        out.append(f"size: {a.quantity} vs {b.quantity} (equity or price at sizing time differed)")
        material |= off > SIZE_TOLERANCE
    return out, material


def compare_runs(run_dir: Path, backtest_dir: Path, *, tolerance_pct: float = 0.05,
                 match_window_ms: int = 3_600_000) -> Comparison:
    live_csv = run_dir / REPORT_DIR / "trades.csv"
    if not live_csv.is_file():
        build_report(run_dir)
    journal = _Journal(run_dir)
    every_live = read_trades(live_csv)
    live = [t for t in every_live if t.exit_reason != "open"]
    still_open = [t for t in every_live if t.exit_reason == "open"]
    every = read_trades(backtest_dir / "trades.csv")
    bt = [t for t in every if journal.start <= t.entry_time <= journal.end]
    tol = Decimal(str(tolerance_pct))
    pairs: list[Pair] = []
    free = list(bt)
    extra: list[tuple[Trade, str]] = []

    def nearest(t: Trade) -> Trade | None:
        candidates = [b for b in free if b.symbol == t.symbol and b.side == t.side
                      and abs(b.entry_time - t.entry_time) <= match_window_ms]
        best = min(candidates, key=lambda b: abs(b.entry_time - t.entry_time)) if candidates else None
        if best is not None:
            free.remove(best)
        return best

    open_at_end = [(t, nearest(t)) for t in sorted(still_open, key=lambda t: t.entry_time)]
    for t in sorted(live, key=lambda t: t.entry_time):
        best = nearest(t)
        if best is None:
            extra.append((t, journal.explain(t.symbol, t.entry_time, 2 * _MIN)))
            continue
        differences, material = _differences(t, best, tol)
        if best.exit_reason == "open":  # the backtest ended first: its exit is not known either
            differences, material = [d for d in differences if not d.startswith(("exit", "exit timing"))], False
        pairs.append(Pair(t, best, differences, material))
    missed = [(b, journal.explain(b.symbol, b.entry_time, 2 * _MIN)) for b in free]
    return Comparison(pairs, missed, extra, (journal.start, journal.end), len(every) - len(bt), open_at_end,
                      config_mismatches(journal_config(run_dir), backtest_config(backtest_dir)))


def _fmt_trade(t: Trade) -> str:
    when = _when(t.entry_time)
    return f"{t.symbol} {t.side} {t.quantity} @ {t.entry_price} {when} -> {t.exit_price} ({t.exit_reason}) " \
           f"net {t.net_pnl}"


def format_comparison(c: Comparison) -> str:
    same = sum(1 for p in c.pairs if not p.differences)
    harmless = sum(1 for p in c.pairs if p.differences and not p.material)
    lines = [f"warning: {w}" for w in c.config_warnings]
    lines.append(f"paper run vs backtest: {len(c.pairs)} paired trades ({same} identical, {harmless} with harmless "
                 f"differences, {len(c.pairs) - same - harmless} different), {len(c.missed)} only in the backtest, "
                 f"{len(c.extra)} only in the paper run, {len(c.open_at_end)} still open at the end of the paper run"
                 + (f"; {c.outside} backtest trades outside the run's window not compared" if c.outside else ""))
    for p in c.pairs:
        if p.differences:
            lines.append(f"  {'~' if p.material else '≈'} {_fmt_trade(p.live)}")
            lines.extend(f"      {d}" for d in p.differences)
    for t, why in c.missed:
        lines.append(f"  - backtest only: {_fmt_trade(t)}\n      {why}")
    for t, why in c.extra:
        lines.append(f"  + paper only:    {_fmt_trade(t)}\n      {why}")
    for t, match in c.open_at_end:
        seen = (f"the backtest's trade entered {_when(match.entry_time)} ({match.exit_reason})" if match
                else "the backtest has no trade entered near it")
        lines.append(f"  o open at the end: {t.symbol} {t.side} {t.quantity} @ {t.entry_price} {_when(t.entry_time)}; "
                     f"{seen}")
    if c.identical:
        lines.append("  every trade matches: same entries, exits, prices, sizes and PnL")
    elif not c.material:
        lines.append("  only harmless differences (fill latency and the prices and sizes it moves, the window's edge)")
    return "\n".join(lines)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def main(run: str, backtest: str, *, runs_dir: str, results_dir: str, tolerance_pct: float) -> int:
    """``kinetic compare``: print the comparison; 0 unless a difference is material (then 3)."""
    from ..core.errors import KineticError
    from ..core.names import safe_name
    from .report import has_file, run_dir_for

    run_dir = run_dir_for(run, runs_dir, where="kinetic compare RUN_ID")
    bt = Path(backtest)
    if not has_file(bt, "trades.csv"):
        bt = Path(results_dir) / safe_name(backtest, "backtest id", "kinetic compare BACKTEST")
    if not (bt / "trades.csv").is_file():
        raise KineticError(f"no backtest results (trades.csv) at {backtest} or {bt}")
    result = compare_runs(run_dir, bt, tolerance_pct=tolerance_pct)
    print(format_comparison(result))
    return 3 if result.material else 0
