"""Step-function lookups over recorded change points, vectorised for whole runs at once."""

from __future__ import annotations

import numpy as np


def step_lookup(change_ts: np.ndarray, values: np.ndarray, query_ts: np.ndarray, before: float) -> np.ndarray:
    """Value in effect at each query time: the last change with ``ts <= t``, else ``before``.

    Several changes with the same timestamp resolve to the last one recorded, which is the state the
    exchange left the account in. Out-of-order stamps are sorted stably first.
    """
    query = np.asarray(query_ts, dtype=np.int64)
    if len(change_ts) == 0:
        return np.full(query.shape, before, dtype=np.float64)
    ts = np.asarray(change_ts, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    if ts.size > 1 and np.any(ts[1:] < ts[:-1]):
        order = np.argsort(ts, kind="stable")
        ts, vals = ts[order], vals[order]
    idx = np.searchsorted(ts, query, side="right")  # 0 = before the first change
    return np.concatenate(([before], vals))[idx]
