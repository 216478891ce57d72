"""The lazy replay loop's kline of a row (``feed.Rows.kline``, its fields stored in place) and its reads of a
field the loop does not carry (``Rows.value``, ``feed.cold_load``) give what ``new_kline`` and the frame's
columns give, scalar for scalar."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from kinetic_empire.backtest.rows import FIELDS, Rows, cold_load, column
from kinetic_empire.core.events import KlineClosed, new_kline

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import synthetic_klines


def test_a_rows_kline_and_values_are_the_frames() -> None:
    f = synthetic_klines(500, 7)
    start = 37
    rows = Rows(f, start)
    columns = {name: column(f, name, start, len(f)) for name in FIELDS}
    for row in (0, 1, 200, 462):
        k = rows.kline(row)
        ot, o, h, lo, c, v, ct = (columns[name][row] for name in FIELDS)
        general = new_kline(f.symbol, f.timeframe, ot, o, h, lo, c, v, ct, ct)
        assert type(k) is KlineClosed and asdict(k) == asdict(general) and repr(k) == repr(general)
        assert [type(x) for x in asdict(k).values()] == [type(x) for x in asdict(general).values()]
        assert rows.kline(row) is k  # the same object for the same row
        for name in FIELDS:
            read = eval(cold_load(name, "rows", "row"))  # the loops' expression
            assert read == rows.value(name, row) == columns[name][row] and type(read) is type(columns[name][row])
