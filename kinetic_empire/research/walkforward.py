"""Walk-forward analysis: optimise in-sample, test the best parameters on the unseen span after it.

The period is cut into ``windows`` pairs. Rolling: every in-sample (IS) span has the same length and
slides forward by one out-of-sample (OOS) span. Anchored: every IS span starts at the beginning and
grows. The OOS spans follow each other without overlap, so their equity curves stitch into one
out-of-sample curve (each segment compounded from where the previous ended), which is the honest
estimate of the strategy. The table of IS against OOS values shows overfitting as a gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import ConfigError
from ..core.timeframes import timeframe_ms
from ..report import compute_metrics
from .settings import WalkForward
from .trial import TrialOutcome


@dataclass(frozen=True, slots=True)
class Window:
    index: int  # 1-based
    is_start: int
    is_end: int
    oos_start: int
    oos_end: int


@dataclass(slots=True)
class WindowResult:
    window: Window
    params: dict[str, Any]
    in_sample: dict[str, Any]  # metrics of the best IS trial
    out_of_sample: dict[str, Any]  # metrics of those params on the OOS span
    is_values: list[float]
    oos_values: list[float | None]


@dataclass(slots=True)
class WalkForwardResult:
    windows: list[WindowResult] = field(default_factory=list)
    timestamps: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    equity: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.float64))
    metrics: dict[str, Any] = field(default_factory=dict)  # of the stitched OOS curve


def make_windows(start: int, end: int, wf: WalkForward, align_ms: int) -> list[Window]:
    """The IS/OOS windows of ``[start, end)``, boundaries floored to ``align_ms`` (a timeframe)."""
    total = end - start
    is_len = total / (1 + wf.windows * wf.out_of_sample)
    oos_len = is_len * wf.out_of_sample
    if oos_len < align_ms or is_len < align_ms:
        raise ConfigError("optimize.walk_forward", f"{wf.windows} windows do not fit in the period: an "
                          "out-of-sample span would be shorter than one kline")  # fmt: skip

    def at(x: float) -> int:
        return start + int((x // align_ms) * align_ms)

    out = []
    for i in range(wf.windows):
        oos_start = at(is_len + i * oos_len)
        oos_end = end if i == wf.windows - 1 else at(is_len + (i + 1) * oos_len)
        is_start = start if wf.mode == "anchored" else at(i * oos_len)
        out.append(Window(i + 1, is_start, oos_start, oos_start, oos_end))
    return out


def align_of(timeframes: Sequence[str]) -> int:
    return max(timeframe_ms(tf) for tf in timeframes)


@dataclass(frozen=True, slots=True)
class _Trade:
    net_pnl: float


def stitch(results: list[WindowResult], curves: Mapping[int, TrialOutcome], initial: float) -> WalkForwardResult:
    """One OOS equity curve from the windows' OOS runs, each compounded from the previous end."""
    ts_parts, eq_parts, trades = [], [], []
    capital, fees, funding, liquidations = initial, 0.0, 0.0, 0
    exposure_weighted, bars = 0.0, 0
    for r in results:
        out = curves[r.window.index]
        if out.curve is None:
            continue
        ts, eq = out.curve
        factor = capital / initial
        ts_parts.append(ts)
        eq_parts.append(eq * factor)
        trades += [_Trade(p * factor) for p in out.trade_pnls]
        fees += float(out.metrics.get("fees") or 0) * factor
        funding += float(out.metrics.get("funding") or 0) * factor
        liquidations += int(out.metrics.get("liquidations") or 0)
        exposure_weighted += float(out.metrics.get("exposure_pct") or 0) * len(ts)
        bars += len(ts)
        if len(eq):
            capital = float(eq[-1]) * factor
    if not ts_parts:
        return WalkForwardResult(results)
    timestamps = np.concatenate(ts_parts)
    equity = np.concatenate(eq_parts)
    exposure = exposure_weighted / bars / 100.0 if bars else 0.0
    metrics = compute_metrics(timestamps, equity, trades, initial, fees, funding, liquidations, exposure)
    return WalkForwardResult(results, timestamps, equity, dict(metrics))
