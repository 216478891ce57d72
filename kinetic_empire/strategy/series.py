"""Read-only views of price and indicator arrays that reveal values only up to the current kline.

``s[-1]`` is the value at the current (latest closed) kline, ``s[-2]`` the one before; ``s[k]`` for
``k >= 0`` counts from the start of the history and raises past the current kline, so a strategy
cannot look ahead. The cursor is shared by every series of one strategy instance and moved by the
runner, so advancing a kline costs one assignment however many indicators there are.

No public path leads to a later value: ``values`` and slices are views of a separate buffer that holds
only what has been revealed (copied lazily, when asked, so strategies that only index pay nothing),
so neither the view nor its ``.base`` reaches the future. The engine reads the whole array through
:func:`engine_array`, which strategies have no reason to import.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Cursor:
    """Index of the current kline in the arrays; shared by all series of one strategy."""

    __slots__ = ("i",)

    def __init__(self) -> None:
        self.i = -1


class Series:
    __slots__ = ("_cur", "_list", "_revealed", "_shown", "_values", "name")

    def __init__(self, values: np.ndarray, cursor: Cursor, name: str) -> None:
        self._values = np.asarray(values, dtype=np.float64)
        self._list: list[float] | None = None  # python floats for fast scalar access, built on first use
        self._shown: np.ndarray | None = None  # the revealed copy behind `values` and slices, on first use
        self._revealed = 0  # how much of `_shown` is filled
        self._cur = cursor
        self.name = name

    def _view(self) -> np.ndarray:
        """Read-only view of the values revealed so far, backed by a buffer holding nothing later."""
        n = self._cur.i + 1
        shown = self._shown
        if shown is None:
            shown = self._shown = np.full(len(self._values), np.nan)
        if n > self._revealed:
            shown[self._revealed : n] = self._values[self._revealed : n]
            self._revealed = n
        view = shown[:n]
        view.flags.writeable = False
        return view

    def _materialize(self) -> list[float]:
        self._list = self._values.tolist()
        return self._list

    def __getitem__(self, k: Any) -> Any:
        i = self._cur.i
        if isinstance(k, int):
            values = self._list
            if values is None:
                values = self._materialize()
            if k < 0:
                j = i + 1 + k
                if j < 0:
                    raise IndexError(f"{self.name}[{k}]: only {i + 1} values revealed so far")
                return values[j]
            if k > i:
                raise IndexError(f"{self.name}[{k}] is in the future (current index {i})")
            return values[k]
        if isinstance(k, slice):
            return self._view()[k]
        raise TypeError(f"{self.name}: index must be int or slice, not {type(k).__name__}")

    def __len__(self) -> int:
        return self._cur.i + 1

    def __float__(self) -> float:
        return float(self._values[self._cur.i])

    @property
    def values(self) -> np.ndarray:
        """The revealed history as a read-only numpy array (nothing after the current kline behind it)."""
        return self._view()

    def __repr__(self) -> str:
        i = self._cur.i
        last = float(self._values[i]) if 0 <= i < len(self._values) else None
        return f"Series({self.name}, len={i + 1}, last={last})"


def engine_array(series: Series) -> np.ndarray:
    """The whole computed array of a series: for the engine's own checks (warm-up, the lookahead check),
    never for strategy decisions."""
    return series._values


def crossover(a: Series | float, b: Series | float) -> bool:
    """True when ``a`` crossed above ``b`` on the current kline (a[-2] <= b[-2] and a[-1] > b[-1])."""
    if type(a) is Series and type(b) is Series:  # the common case, kept cheap: it runs every kline
        i = a._cur.i
        if i < 1:
            return False
        al = a._list if a._list is not None else a._materialize()
        bl = b._list if b._list is not None else b._materialize()
        return al[i - 1] <= bl[i - 1] and al[i] > bl[i]
    return _crossover_mixed(a, b)


def _crossover_mixed(a: Series | float, b: Series | float) -> bool:
    if isinstance(a, Series):
        i = a._cur.i
        if i < 1:
            return False
        a1, a0 = a[-1], a[-2]
    else:
        a1 = a0 = a
    if isinstance(b, Series):
        i = b._cur.i
        if i < 1:
            return False
        b1, b0 = b[-1], b[-2]
    else:
        b1 = b0 = b
    return a0 <= b0 and a1 > b1


def crossunder(a: Series | float, b: Series | float) -> bool:
    """True when ``a`` crossed below ``b`` on the current kline (a[-2] >= b[-2] and a[-1] < b[-1])."""
    if type(a) is Series and type(b) is Series:
        i = a._cur.i
        if i < 1:
            return False
        al = a._list if a._list is not None else a._materialize()
        bl = b._list if b._list is not None else b._materialize()
        return bl[i - 1] <= al[i - 1] and bl[i] > al[i]
    return _crossover_mixed(b, a)
