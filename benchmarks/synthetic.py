"""Seeded synthetic 1m klines: a geometric random walk on the FILUSDT tick grid."""

from __future__ import annotations

import numpy as np

from kinetic_empire.data import KlineFrame

START_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC


def synthetic_klines(n: int, seed: int = 42, symbol: str = "FILUSDT", start_price: float = 5.0,
                     tick: float = 0.001) -> KlineFrame:
    """``n`` 1m klines; prices rounded to the symbol's tick (FILUSDT's 0.001 by default) so fills are on the grid."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.0012, n)
    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.empty(n)
    open_[0] = start_price
    open_[1:] = close[:-1]
    wiggle = np.abs(rng.normal(0.0, 0.0008, (2, n))) * close
    high = np.maximum(open_, close) + wiggle[0]
    low = np.minimum(open_, close) - wiggle[1]
    open_, high, low, close = (np.round(a / tick) * tick for a in (open_, high, low, close))
    low = np.maximum(low, tick)
    volume = rng.integers(1_000, 100_000, n).astype(np.float64)
    open_time = START_MS + np.arange(n, dtype=np.int64) * 60_000
    return KlineFrame(symbol, "1m", open_time, open_, high, low, close, volume, source=f"synthetic(seed={seed})")
