"""Lookahead check: does an indicator at kline k depend on klines after k?

For sampled klines, every indicator is recomputed on the history truncated at that kline and its
last value compared with the value the full-history computation gave for the same kline. Any
difference means the indicator peeks into the future (a centred window, a ``shift(-1)``, a
normalisation over the whole series...), and the check names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.errors import KineticError
from ..strategy.base import Strategy
from ..strategy.series import engine_array


class LookaheadError(KineticError):
    """Raised before a backtest whose indicators use future data."""

    def __init__(self, findings: Sequence[object]) -> None:
        self.findings = findings
        super().__init__("lookahead check failed:\n  " + "\n  ".join(map(str, findings)))


@dataclass(frozen=True, slots=True)
class LookaheadFinding:
    strategy: str
    symbol: str
    indicator: str
    index: int
    full_value: float
    truncated_value: float

    def __str__(self) -> str:
        return (
            f"{self.strategy} on {self.symbol}: indicator {self.indicator!r} at kline {self.index} is "
            f"{self.full_value!r} with the whole history but {self.truncated_value!r} with history up to "
            "that kline: it uses future data"
        )


def sample_points(n: int, samples: int = 24, seed: int = 7) -> list[int]:
    """The klines (indices into a history of ``n``) at which the check cuts the history; [] below 3."""
    if n < 3:
        return []
    rng = np.random.default_rng(seed)
    return sorted(set(rng.integers(1, n - 1, size=min(samples, n - 2)).tolist()) | {n // 2})


def describe_pass(strategy: Strategy, n: int, samples: int = 24, seed: int = 7) -> str:
    """What a passed check covered, for the operator: the strategy, its indicators and the cut points."""
    names = [series.name for series in strategy._indicators]
    picks = sample_points(n, samples, seed)
    shown = ", ".join(names) if names else "no indicators declared"
    return (f"{strategy.strategy_name()} on {'+'.join(strategy.symbols)}: {len(names)} indicator series ({shown}) "
            f"recomputed on the history cut at {len(picks)} sampled klines of {n}: each value matched the "
            "whole-history one, so none uses a later kline")  # fmt: skip


def check_lookahead(
    strategy: Strategy,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    samples: int = 24,
    seed: int = 7,
    rtol: float = 1e-9,
    open_time: np.ndarray | None = None,
) -> list[LookaheadFinding]:
    """Compare full-history indicators with truncated recomputations at ``samples`` klines."""
    o, h, lo, c, v = arrays
    n = len(c)
    if n < 3:
        return []
    full = strategy._fresh()  # the same class, symbols, timeframe and parameters
    full._bind(o, h, lo, c, v, open_time)
    reference = {s.name: engine_array(s) for s in full._indicators}
    picks = sample_points(n, samples, seed)
    findings: list[LookaheadFinding] = []
    for k in picks:
        probe = strategy._fresh()
        probe._bind(o[: k + 1], h[: k + 1], lo[: k + 1], c[: k + 1], v[: k + 1],
                    None if open_time is None else open_time[: k + 1])
        for series in probe._indicators:
            a = float(reference[series.name][k])
            b = float(engine_array(series)[k])
            same = (np.isnan(a) and np.isnan(b)) or np.isclose(a, b, rtol=rtol, atol=1e-12)
            if not same:
                findings.append(LookaheadFinding(strategy.strategy_name(), strategy.symbol, series.name, k, a, b))
                break
    return findings
