"""Closed trades grouped by strategy, symbol, entry tag or exit reason, with the figures of each group.

Trades still open at the end are left out (their PnL is not final); the report says how many.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .metrics import format_duration

NO_TAG = "(no tag)"


@dataclass(frozen=True, slots=True)
class Group:
    key: str
    trades: int
    wins: int
    net_pnl: float
    avg_pnl: float
    avg_return_pct: float
    profit_factor: float | None  # None: no losing trade
    avg_duration_ms: int

    @property
    def win_rate_pct(self) -> float:
        return self.wins / self.trades * 100.0 if self.trades else 0.0


def closed(trades: Sequence[Any]) -> list[Any]:
    return [t for t in trades if t.exit_reason != "open"]


def exit_label(t: Any) -> str:
    """The exit reason, with the strategy's tag when it gave one: ``signal (rsi back to middle)``."""
    tag = getattr(t, "exit_tag", "")
    return f"{t.exit_reason} ({tag})" if tag else str(t.exit_reason)


KEYS: dict[str, Callable[[Any], str]] = {
    "strategy": lambda t: str(t.strategy_id),
    "symbol": lambda t: str(t.symbol),
    "entry tag": lambda t: getattr(t, "entry_tag", "") or NO_TAG,
    "exit reason": exit_label,
}
"""The breakdowns the report shows, by heading."""


def group_by(trades: Sequence[Any], key: Callable[[Any], str]) -> list[Group]:
    """One row per key of the closed trades, largest net PnL first (ties by key)."""
    buckets: dict[str, list[Any]] = {}
    for t in closed(trades):
        buckets.setdefault(key(t), []).append(t)
    rows = []
    for name, items in buckets.items():
        pnl = [float(t.net_pnl) for t in items]
        gains = sum(p for p in pnl if p > 0)
        losses = -sum(p for p in pnl if p < 0)
        rows.append(Group(
            key=name, trades=len(items), wins=sum(1 for p in pnl if p > 0), net_pnl=sum(pnl),
            avg_pnl=sum(pnl) / len(pnl), avg_return_pct=sum(float(t.return_pct) for t in items) / len(items),
            profit_factor=gains / losses if losses > 0 else None,
            avg_duration_ms=sum(int(t.duration_ms) for t in items) // len(items),
        ))  # fmt: skip
    return sorted(rows, key=lambda g: (-g.net_pnl, g.key))


HEADER = ("trades", "win %", "net PnL", "avg PnL", "avg ret %", "PF", "avg held")
"""Column headings after the key (PF: profit factor, gains over losses)."""


def group_cells(g: Group) -> list[str]:
    pf = "n/a" if g.profit_factor is None else f"{g.profit_factor:,.2f}"
    return [
        g.key, str(g.trades), f"{g.win_rate_pct:.1f}", f"{g.net_pnl:+,.2f}", f"{g.avg_pnl:+,.2f}",
        f"{g.avg_return_pct:+.2f}", pf, format_duration(g.avg_duration_ms),
    ]  # fmt: skip
