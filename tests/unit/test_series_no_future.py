"""A Series reveals nothing after the current kline through any public path (issue 13 item 10)."""

from __future__ import annotations

import numpy as np
import pytest

from kinetic_empire.strategy.series import Cursor, Series, engine_array


def reachable_arrays(obj: object, depth: int = 4) -> list[np.ndarray]:
    """Every ndarray reachable from `obj` through .base chains (what a strategy could dig out)."""
    out: list[np.ndarray] = []
    cur = obj
    for _ in range(depth):
        if isinstance(cur, np.ndarray):
            out.append(cur)
        base = getattr(cur, "base", None)
        if base is None:
            break
        cur = base
    return out


@pytest.fixture
def series() -> tuple[Series, Cursor, np.ndarray]:
    data = np.arange(100, dtype=np.float64) * 1.5
    cur = Cursor()
    return Series(data, cur, "close"), cur, data


def test_values_and_slices_hold_no_later_value(series: tuple[Series, Cursor, np.ndarray]) -> None:
    s, cur, data = series
    for i in (0, 10, 57, 99):
        cur.i = i
        for got in (s.values, s[:], s[-5:], s[::2]):
            for arr in reachable_arrays(got):
                later = data[i + 1:]
                assert not np.isin(arr[np.isfinite(arr)], later).any() or i == 99, (i, arr)
        assert np.array_equal(s.values, data[: i + 1])
        assert not s.values.flags.writeable


def test_reading_the_future_raises_and_full_is_gone(series: tuple[Series, Cursor, np.ndarray]) -> None:
    s, cur, data = series
    cur.i = 10
    with pytest.raises(IndexError, match="in the future"):
        s[11]
    assert not hasattr(s, "full")
    assert s.values.base is not None and len(s.values.base) == 100
    assert np.isnan(s.values.base[11:]).all()  # the buffer behind the view: unrevealed slots are NaN
    assert engine_array(s) is not None and engine_array(s)[11] == data[11]  # the engine still sees it all


def test_revealing_moves_on_with_the_cursor(series: tuple[Series, Cursor, np.ndarray]) -> None:
    s, cur, data = series
    cur.i = 3
    first = s.values.copy()
    cur.i = 7
    assert np.array_equal(first, data[:4]) and np.array_equal(s.values, data[:8])
    cur.i = 5  # a cursor moved back (a fresh replay) never shows more than it should
    assert np.array_equal(s.values, data[:6])
