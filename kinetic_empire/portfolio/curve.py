"""Step-function lookups over recorded change points, vectorised for whole runs at once."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np


def floats(values: list[Decimal]) -> np.ndarray:
    """Decimals as a float64 array, each exactly ``float(value)`` (change points keep the events' Decimals)."""
    return np.fromiter(map(float, values), dtype=np.float64, count=len(values))


def step_lookup(change_ts: np.ndarray, values: np.ndarray, query_ts: np.ndarray, before: float) -> np.ndarray:
    """Value in effect at each query time: the last change with ``ts <= t``, else ``before``.

    Several changes with the same timestamp resolve to the last one recorded, which is the state the
    exchange left the account in. Out-of-order stamps are sorted stably first.
    """
    return step_lookups(change_ts, (values,), query_ts, before)[0]


def step_lookups(
    change_ts: np.ndarray, columns: Sequence[np.ndarray], query_ts: np.ndarray, before: float
) -> list[np.ndarray]:
    """:func:`step_lookup` of several value columns recorded at the same change times: one search
    (and one index array as long as the query) serves them all."""
    query = np.asarray(query_ts, dtype=np.int64)
    if len(change_ts) == 0:
        return [np.full(query.shape, before, dtype=np.float64) for _ in columns]
    ts = np.asarray(change_ts, dtype=np.int64)
    cols = [np.asarray(c, dtype=np.float64) for c in columns]
    if ts.size > 1 and np.any(ts[1:] < ts[:-1]):
        order = np.argsort(ts, kind="stable")
        ts, cols = ts[order], [c[order] for c in cols]
    if query.size > 1 and np.any(query[1:] < query[:-1]):  # unordered queries: a search each
        idx = np.searchsorted(ts, query, side="right")  # 0 = before the first change
        return [np.concatenate(([before], c))[idx] for c in cols]
    # ascending queries (an equity curve's kline times): the function is a run of constant stretches, change j
    # in effect from the first query at or after its time; a search per change (thousands) instead of one per
    # query (millions), and each stretch's value repeated over it
    starts = np.searchsorted(query, ts, side="left")
    lengths = np.diff(starts, prepend=0, append=query.size)  # stretch 0 (before any change), then one per change
    return [np.repeat(np.concatenate(([before], c)), lengths) for c in cols]
