"""Equity and drawdown chart as PNG bytes, byte-identical for identical input.

No pyplot: a bare ``Figure`` on an Agg canvas touches no global state (two backtests in one process
can render at once) and needs no display. The style is pinned to matplotlib's defaults so a user's
matplotlibrc cannot change the bytes, and the PNG carries no ``Software`` tag (Agg writes no date).
matplotlib is imported when a chart is drawn: it is ~30 MiB a backtest that writes no report never needs.
"""

from __future__ import annotations

import io
import itertools

import numpy as np

_DPI = 100
_EQUITY_COLOR = "#1f5fa8"
_DD_COLOR = "#c0392b"


def _decimate(n: int, series: list[np.ndarray], buckets: int) -> np.ndarray:
    """Indices keeping each bucket's first point and every series' min and max: the drawn shape is kept.

    A year of 1m bars is ~500k points on a ~1000-pixel-wide axis; drawing them all is slow and adds nothing.
    """
    if n <= 4 * buckets:
        return np.arange(n)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = [edges[:-1], np.array([n - 1])]
    for lo, hi in itertools.pairwise(edges.tolist()):
        for s in series:
            chunk = s[lo:hi]
            keep.append(np.array([lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))]))
    return np.unique(np.concatenate(keep))


def render_equity_png(
    timestamps_ms: np.ndarray,
    equity: np.ndarray,
    drawdown_pct: np.ndarray,
    *,
    title: str = "",
    width_px: int = 1200,
    height_px: int = 700,
) -> bytes:
    """Two stacked panels sharing a UTC date axis: equity on top, drawdown (%) below."""
    import matplotlib.dates as mdates
    import matplotlib.style as mstyle
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ts = np.asarray(timestamps_ms, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    dd = np.asarray(drawdown_pct, dtype=np.float64)
    if not (ts.shape == eq.shape == dd.shape):
        raise ValueError(f"shapes differ: timestamps {ts.shape}, equity {eq.shape}, drawdown {dd.shape}")
    with mstyle.context("default"):
        fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI, facecolor="white")
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        if title:
            fig.suptitle(title)
        if ts.size == 0:
            top.text(0.5, 0.5, "no data", ha="center", va="center", transform=top.transAxes)
        else:
            keep = _decimate(ts.size, [eq, dd], buckets=max(width_px, 1))
            when = ts[keep].astype("datetime64[ms]")
            top.plot(when, eq[keep], color=_EQUITY_COLOR, linewidth=1.0)
            bottom.fill_between(when, dd[keep], 0.0, color=_DD_COLOR, alpha=0.35, linewidth=0)
            bottom.plot(when, dd[keep], color=_DD_COLOR, linewidth=0.8)
            locator = mdates.AutoDateLocator()
            bottom.xaxis.set_major_locator(locator)
            bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        top.set_ylabel("equity")
        bottom.set_ylabel("drawdown %")
        bottom.set_xlabel("time (UTC)")
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()
