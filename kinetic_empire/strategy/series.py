"""Read-only views of price and indicator arrays that reveal values only up to the current kline.

``s[-1]`` is the value at the current (latest closed) kline, ``s[-2]`` the one before; ``s[k]`` for
``k >= 0`` counts from the start of the history and raises past the current kline, so a strategy
cannot look ahead. The cursor is shared by every series of one strategy instance and moved by the
runner, so advancing a kline costs one assignment however many indicators there are.

No public path leads to a later value: ``values`` and slices are views of a separate buffer that holds
only what has been revealed (copied lazily, when asked, so strategies that only index pay nothing),
so neither the view nor its ``.base`` reaches the future. The engine reads the whole array through
:func:`engine_array`, which strategies have no reason to import.

Speed and memory on the replay's hot path (issue 17): scalar reads come from a window of python floats
around the current kline (``_WINDOW`` values, refilled as the cursor moves), not from a copy of the
whole history; and when the cursor runs over a whole history (a backtest, ``Cursor.whole``),
:func:`crossover` / :func:`crossunder` of two series (or a series and a number) are computed once for
every kline, vectorised, and then only read at the current index, which is the same answer the scalar
rule gives there and reveals nothing later.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Cursor:
    """Index of the current kline in the arrays; shared by all series of one strategy.

    ``whole`` is True when the arrays hold the whole history the cursor will run over (a backtest):
    results that depend on a kline and its predecessor may then be precomputed for every kline and
    read at the cursor. Live windows are recomputed on every kline, so nothing is precomputed there.
    """

    __slots__ = ("i", "whole")

    def __init__(self) -> None:
        self.i = -1
        self.whole = False


_NONE = object()  # no operand yet (None and NaN could be operands)
_WINDOW = 4096  # python floats kept around the cursor for scalar reads
_BACK = 256  # of which behind the cursor when refilled (s[-k] for small k stays in the window)


class Series:
    __slots__ = ("_crossings", "_cur", "_flags", "_list", "_lo", "_other", "_revealed", "_shown", "_values", "name")

    def __init__(self, values: np.ndarray, cursor: Cursor, name: str) -> None:
        self._values = np.asarray(values, dtype=np.float64)
        self._list: list[float] = []  # python floats of _values[_lo:_lo + len(_list)], for fast scalar reads
        self._lo = 0
        self._shown: np.ndarray | None = None  # the revealed copy behind `values` and slices, on first use
        self._revealed = 0  # how much of `_shown` is filled
        self._crossings: dict[Any, bytes] = {}  # other operand -> 1 where self crossed above it (replay only)
        self._other: Any = _NONE  # the operand last looked up in _crossings, and its flags: no dict lookup
        self._flags = b""  # when a strategy asks about the same pair every kline (the usual case)
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

    def _at(self, j: int) -> float:
        """The value at index ``j`` (already checked to be revealed), from the window of floats."""
        off = j - self._lo
        values = self._list
        if 0 <= off < len(values):
            return values[off]
        if j < self._cur.i - _BACK:  # a read far behind the cursor: don't move the window for it
            return float(self._values[j])
        lo = self._lo = max(0, j - _BACK)
        values = self._list = self._values[lo : lo + _WINDOW].tolist()
        return values[j - lo]

    def __getitem__(self, k: Any) -> Any:
        i = self._cur.i
        if isinstance(k, int):
            if k < 0:
                j = i + 1 + k
                if j < 0:
                    raise IndexError(f"{self.name}[{k}]: only {i + 1} values revealed so far")
            elif k > i:
                raise IndexError(f"{self.name}[{k}] is in the future (current index {i})")
            else:
                j = k
            off = j - self._lo
            values = self._list
            if 0 <= off < len(values):
                return values[off]
            return self._at(j)
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


def _crossings(a: Series, b: Series | float) -> bytes:
    """For every index i: 1 when ``a`` crossed above ``b`` at i (a[i-1] <= b[i-1] and a[i] > b[i]), else 0.

    The scalar rule of :func:`crossover`, vectorised (NaN compares False in both); each entry depends
    only on indices i-1 and i, so reading entry i reveals nothing after kline i."""
    av = a._values
    bv = b._values if isinstance(b, Series) else np.full(len(av), float(b))
    out = np.zeros(len(av), dtype=np.uint8)
    if len(av) > 1:
        with np.errstate(invalid="ignore"):
            out[1:] = (av[:-1] <= bv[:-1]) & (av[1:] > bv[1:])
    return out.tobytes()


def _crossed(a: Series, b: Series | float) -> bool:
    """``a`` crossed above ``b`` at the cursor: precomputed over a whole history (replay), else scalar."""
    i = a._cur.i
    if i < 1:
        return False
    same_history = b._cur is a._cur if type(b) is Series else type(b) in (int, float)
    if a._cur.whole and same_history and len(a._values) > i:
        flags = a._crossings[b] = _crossings(a, b)
        a._other, a._flags = b, flags
        return flags[i] == 1
    a1, a0 = a[-1], a[-2]
    if type(b) is Series:
        b1, b0 = b[-1], b[-2]
    else:
        b1 = b0 = b
    return a0 <= b0 and a1 > b1


def crossover(a: Series | float, b: Series | float) -> bool:
    """True when ``a`` crossed above ``b`` on the current kline (a[-2] <= b[-2] and a[-1] > b[-1])."""
    if type(a) is Series:
        if a._other is b:  # the common replay case, kept cheap: it runs every kline
            return a._flags[a._cur.i] == 1
        return _looked_up(a, b)
    return _crossover_mixed(a, b)


def crossunder(a: Series | float, b: Series | float) -> bool:
    """True when ``a`` crossed below ``b`` on the current kline (a[-2] >= b[-2] and a[-1] < b[-1])."""
    if type(b) is Series:
        if b._other is a:
            return b._flags[b._cur.i] == 1
        return _looked_up(b, a)
    return _crossover_mixed(b, a)


def _looked_up(a: Series, b: Series | float) -> bool:
    """``a`` crossed above ``b``: from the precomputed flags of the pair (kept as the last pair asked), else
    computed (``_crossed``)."""
    flags = a._crossings.get(b)
    if flags is None:
        return _crossed(a, b)
    a._other, a._flags = b, flags
    return flags[a._cur.i] == 1


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
