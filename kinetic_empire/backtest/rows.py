"""A replayed frame's rows as Python scalars, and the loads a compiled replay loop makes of them.

The single-stream loops (:mod:`kinetic_empire.backtest.feed`) read the columns a chunk at a time; a field or a
kline they do not carry on every event is read from the arrays here only where it is used (a failure's kline,
a store settled before a call out).
"""

from __future__ import annotations

import re
from typing import Any

from ..core.events import KlineClosed, KlineFields
from ..data import KlineFrame

FIELDS = ("open_time", "open_", "high", "low", "close", "volume", "close_time")
"""The scalars a compiled loop sees per kline (``core.bus.InlineStep``), in the order of the columns it is given."""


def column(f: KlineFrame, name: str, lo: int, hi: int) -> list[Any]:
    """Rows ``lo:hi`` of one of ``FIELDS`` as python scalars (close time = open time + interval - 1)."""
    if name == "close_time":
        return (f.open_time[lo:hi] + (f.interval_ms - 1)).tolist()
    return getattr(f, name.rstrip("_"))[lo:hi].tolist()


class Rows:
    """A frame's rows from ``start`` on, and the kline of a row built from them on demand: the same object for
    the same row, each field the python scalar the columns' ``tolist`` gives. The loops read a field the kline
    does not carry every time from the arrays kept here (``cold_load``)."""

    __slots__ = ("_k", "_last_ms", "_row", "_start", "_sym", "_tf", "close", "high", "low", "open_", "open_time",
                 "volume")

    def __init__(self, f: KlineFrame, start: int) -> None:
        self._start, self._last_ms, self._sym, self._tf, self._row = start, f.interval_ms - 1, f.symbol, f.timeframe, -1
        self.open_time, self.open_, self.high, self.low, self.close, self.volume = f.open_time, f.open, f.high, f.low, \
            f.close, f.volume
        self._k: KlineClosed | None = None

    def kline(self, row: int) -> KlineClosed:
        if row != self._row or self._k is None:
            i = self._start + row
            ot = self.open_time.item(i)  # (item: the python scalar tolist gives)
            ct = ot + self._last_ms
            k: Any = KlineFields()  # new_kline(...), written out as the loops' _BUILD does
            k.symbol = self._sym
            k.timeframe = self._tf
            k.open_time = ot
            k.open = self.open_.item(i)
            k.high = self.high.item(i)
            k.low = self.low.item(i)
            k.close = self.close.item(i)
            k.volume = self.volume.item(i)
            k.ts_event = k.ts_init = ct
            k.__class__ = KlineClosed
            self._k, self._row = k, row
        return self._k

    def value(self, name: str, row: int) -> Any:
        """One of ``FIELDS`` at ``row``."""
        i = self._start + row
        if name == "close_time":
            return self.open_time.item(i) + self._last_ms
        return getattr(self, name).item(i)


def cold_load(name: str, rows: str = "rows", row: str = "n") -> str:
    """``rows.value(name, row)`` as an expression on a :class:`Rows` (an attribute and a call less)."""
    if name == "close_time":
        return f"{rows}.open_time.item({rows}._start + {row}) + {rows}._last_ms"
    return f"{rows}.{name}.item({rows}._start + {row})"


_FIELD = re.compile(r"(?<![.\w])(" + "|".join(FIELDS) + r")\b")


def store_source(step_source: str) -> str:
    """A ``latest_only`` step's source (its names bound) reading row ``row_i`` of a :class:`Rows` ``rows`` instead
    of the loop's scalars: the lazy loop runs it where it settles a slot, for the kline the slot holds there."""

    def load(m: re.Match[str]) -> str:
        name = m.group(1)
        return "(rows.open_time.item(row_i) + rows._last_ms)" if name == "close_time" else f"rows.{name}.item(row_i)"

    return _FIELD.sub(load, step_source)


__all__ = ["FIELDS", "Rows", "cold_load", "column", "store_source"]
