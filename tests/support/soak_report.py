"""What a soak did and what it found: counts, recovery times, and every invariant violation with its time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .soak_invariants import Violation

SYMBOL_COUNT = 2


@dataclass
class SoakReport:
    """What a soak did and what it found; it passed when ``problems`` and ``violations`` are both empty."""

    seed: int
    klines: int
    schedule: str = ""
    kills: int = 0
    restarts: int = 0
    forced: dict[str, int] = field(default_factory=dict)  # schedule events carried out, by kind
    skipped: dict[str, int] = field(default_factory=dict)  # events that found nothing to act on
    late: int = 0  # events carried out more than 10 klines after they were due
    faults: dict[str, int] = field(default_factory=dict)  # faults the sandbox injected, by kind
    orders: int = 0
    algo_orders: int = 0
    fills: int = 0
    journal_fills: int = 0
    partial_fill_orders: int = 0
    stop_rejections: int = 0  # stops refused with -2021 (price already through the trigger)
    journal_refusals: int = 0  # engine log lines saying the journal could not write
    reconcile_runs: int = 0
    reconcile_actions: dict[str, int] = field(default_factory=dict)
    recovery_s: list[float] = field(default_factory=list)
    positions: dict[str, str] = field(default_factory=dict)
    polls: int = 0
    polls_skipped: int = 0
    wall_s: float = 0.0
    violations: list[Violation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the soak itself could not run as planned

    @property
    def failed(self) -> bool:
        return bool(self.problems or self.violations)

    def kinds(self) -> set[str]:
        return {v.kind for v in self.violations}

    @staticmethod
    def _pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        s = sorted(values)
        return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]

    @property
    def recovery_p50(self) -> float:
        return self._pct(self.recovery_s, 0.5)

    @property
    def recovery_p99(self) -> float:
        return self._pct(self.recovery_s, 0.99)

    def format(self) -> str:
        def kv(d: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"

        by_kind = Counter(v.kind for v in self.violations)
        lines = [
            f"soak seed {self.seed}: {self.klines} 1m klines x {SYMBOL_COUNT} symbols in {self.wall_s:.0f} s wall",
            f"  forced events     {kv(self.forced)} (skipped: {kv(self.skipped)}; late {self.late})",
            f"  sandbox faults    {kv(self.faults)}",
            f"  kills / restarts  {self.kills} engine SIGKILLs, {self.restarts} engine restarts in all",
            f"  orders            {self.orders} (+{self.algo_orders} conditional), "
            f"{self.partial_fill_orders} filled in parts; stops refused -2021: {self.stop_rejections}; "
            f"journal refusals logged: {self.journal_refusals}",
            f"  fills             venue {self.fills}, journal {self.journal_fills}",
            f"  reconciliations   {self.reconcile_runs} plans journaled; actions: {kv(self.reconcile_actions)}",
            f"  recovery (s)      p50 {self.recovery_p50:.2f}, p99 {self.recovery_p99:.2f}, n={len(self.recovery_s)}",
            f"  final positions   {self.positions}",
            f"  invariant polls   {self.polls} ({self.polls_skipped} skipped: venue busy)",
            f"  violations        {len(self.violations)}" + (f" ({kv(dict(by_kind))})" if by_kind else ""),
        ]
        lines += ["    " + v.format() for v in self.violations[:40]]
        if self.problems:
            lines.append("  soak problems     " + "\n    ".join(self.problems))
        lines.append("  audit             " + ("FAILED" if self.failed else
                                               "OK: every invariant held throughout and at the end"))
        return "\n".join(lines)



__all__ = ["SoakReport"]
