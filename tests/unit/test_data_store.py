"""The parquet KlineStore: layout, round trip, idempotent merge, atomic writes, catalog, speed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kinetic_empire.core.errors import DataError
from kinetic_empire.data import (
    CatalogEntry,
    Gap,
    KlineFrame,
    KlineStore,
    load_klines,
    read_kline_file,
    sample_data_dir,
)

DATA = Path(__file__).parents[1] / "data"
T0 = 1690848000000  # 2023-08-01 00:00 UTC
SEP = 1693526400000  # 2023-09-01 00:00 UTC
MIN = 60_000
COLS = ("open_time", "open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def near() -> KlineFrame:
    return load_klines(sample_data_dir(), symbol="NEARUSDT", timeframe="1m")


def same(a: KlineFrame, b: KlineFrame) -> bool:
    return len(a) == len(b) and all(np.array_equal(getattr(a, c), getattr(b, c)) for c in COLS)


def files_in(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def synthetic_year(symbol: str = "SYNUSDT") -> KlineFrame:
    n = 525_600
    rng = np.random.default_rng(7)
    c = 100 + np.cumsum(rng.normal(0, 0.05, n))
    o = np.r_[c[0], c[:-1]]
    t = 1672531200000 + np.arange(n, dtype=np.int64) * MIN  # 2023-01-01
    return KlineFrame(symbol, "1m", t, o, np.maximum(o, c) + 0.01, np.minimum(o, c) - 0.01, c,
                      np.round(rng.random(n) * 100, 1))


def test_round_trip_and_layout(tmp_path: Path, near: KlineFrame):
    store = KlineStore(tmp_path)
    written = store.write(near)
    base = tmp_path / "klines" / "NEARUSDT" / "1m"
    assert written == [base / "2023-08.parquet", base / "2023-09.parquet"]
    assert sorted(files_in(tmp_path)) == ["klines/NEARUSDT/1m/2023-08.parquet", "klines/NEARUSDT/1m/2023-09.parquet"]
    back = store.read("NEARUSDT", "1m")
    assert same(back, near) and back.gaps == () and (back.symbol, back.timeframe) == ("NEARUSDT", "1m")
    assert back.open_time.dtype == np.int64 and back.close.dtype == np.float64
    # A partition is an ordinary kline file too, and the store is a folder load_klines understands.
    assert same(read_kline_file(base / "2023-09.parquet"), near.between(SEP, None))
    assert same(load_klines(tmp_path, start=T0 + 10 * MIN, end=SEP + MIN), near.between(T0 + 10 * MIN, SEP + MIN))


def test_read_window(tmp_path: Path, near: KlineFrame):
    store = KlineStore(tmp_path)
    store.write(near)
    w = store.read("NEARUSDT", "1m", SEP - 5 * MIN, SEP + 5 * MIN)
    assert same(w, near.between(SEP - 5 * MIN, SEP + 5 * MIN)) and len(w) == 10


def test_write_is_idempotent(tmp_path: Path, near: KlineFrame):
    store = KlineStore(tmp_path)
    store.write(near)
    before = files_in(tmp_path)
    assert store.write(near) == []
    assert store.write(near.between(T0 + 100 * MIN, T0 + 200 * MIN)) == []
    assert files_in(tmp_path) == before


def test_merge_without_duplicates_and_newer_rows_win(tmp_path: Path, near: KlineFrame):
    store = KlineStore(tmp_path)
    store.write(near.between(None, T0 + 20 * 86_400_000))  # 1..20 Aug
    store.write(near.between(T0 + 10 * 86_400_000, None))  # 11 Aug .. 30 Sep, overlapping
    assert same(store.read("NEARUSDT", "1m"), near)
    fixed = near.between(T0, T0 + 3 * MIN)
    fixed = KlineFrame("NEARUSDT", "1m", fixed.open_time, fixed.open, fixed.high + 1, fixed.low, fixed.close,
                       fixed.volume + 5)
    assert len(store.write(fixed)) == 1
    back = store.read("NEARUSDT", "1m")
    assert len(back) == len(near) and back.high[0] == near.high[0] + 1 and back.volume[2] == near.volume[2] + 5
    assert back.high[3] == near.high[3]


def test_nothing_stored(tmp_path: Path, near: KlineFrame):
    store = KlineStore(tmp_path)
    with pytest.raises(DataError, match="no NEARUSDT 1m klines stored") as err:
        store.read("NEARUSDT", "1m")
    assert err.value.rule == "store"
    store.write(near)
    with pytest.raises(DataError, match="NEARUSDT 1h"):
        store.read("NEARUSDT", "1h")
    with pytest.raises(DataError, match="stored from 2023-10-11 00:00:00Z"):
        store.read("NEARUSDT", "1m", SEP + 40 * 86_400_000)
    with pytest.raises(ValueError):
        store.read("../x", "1m")


def test_failed_replace_leaves_no_partial_files(tmp_path: Path, near: KlineFrame, monkeypatch: pytest.MonkeyPatch):
    store = KlineStore(tmp_path)
    store.write(near.between(None, SEP))
    before = files_in(tmp_path)
    calls = []

    def broken_replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        calls.append(dst)
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.write(near)
    assert calls and files_in(tmp_path) == before  # no temp files, old partition intact
    monkeypatch.undo()
    assert same(store.read("NEARUSDT", "1m"), near.between(None, SEP))


def test_invalid_frame_writes_nothing(tmp_path: Path, near: KlineFrame):
    part = near.between(SEP - 10 * MIN, SEP + 10 * MIN)
    high = part.high.copy()
    high[15] = part.low[15] - 1  # a September row breaks high >= low
    bad = KlineFrame("NEARUSDT", "1m", part.open_time, part.open, high, part.low, part.close, part.volume)
    store = KlineStore(tmp_path)
    with pytest.raises(DataError) as err:
        store.write(bad)
    assert (err.value.rule, err.value.row) == ("high_low", 16)
    assert files_in(tmp_path) == {}


def test_flat_filled_gaps_survive_the_store(tmp_path: Path):
    filled = read_kline_file(DATA / "bad" / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="ffill")
    holed = read_kline_file(DATA / "bad" / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="keep")
    gap = (Gap(T0 + 90 * MIN, T0 + 94 * MIN, 5),)
    a, b = KlineStore(tmp_path / "a"), KlineStore(tmp_path / "b")
    a.write(filled)
    b.write(holed)
    assert a.read("FILUSDT", "1m").gaps == gap and len(a.read("FILUSDT", "1m")) == 120
    assert b.read("FILUSDT", "1m").gaps == gap and len(b.read("FILUSDT", "1m")) == 115
    with pytest.raises(DataError, match=r"\[gap\]"):
        b.read("FILUSDT", "1m", gap_policy="error")
    # Real klines written over the filled span replace the filler and the recorded gap.
    a.write(read_kline_file(DATA / "FILUSDT-1m-2023-08-01.csv"))
    assert a.read("FILUSDT", "1m").gaps == () and len(a.read("FILUSDT", "1m")) == 300


def test_catalog(tmp_path: Path, near: KlineFrame):
    store = KlineStore(tmp_path)
    assert store.catalog() == []
    store.write(near)
    store.write(read_kline_file(DATA / "bad" / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="keep"))
    assert store.catalog() == [
        CatalogEntry("FILUSDT", "1m", T0, T0 + 119 * MIN, 115, 1),
        CatalogEntry("NEARUSDT", "1m", T0, SEP + 30 * 86_400_000 - MIN, 87_840, 0),
    ]


def test_a_symbol_year_of_1m_round_trips(tmp_path: Path):
    """A year in twelve monthly files reads back exactly (how fast: benchmarks/bench_store.py)."""
    year = synthetic_year()
    store = KlineStore(tmp_path)
    assert len(store.write(year)) == 12
    assert same(store.read("SYNUSDT", "1m"), year)


def test_a_hole_before_the_backtest_window_does_not_refuse_it(tmp_path: Path) -> None:
    """Issue 16 item 7: the gap policy judges the window; warm-up history starts after the last hole."""
    from kinetic_empire.backtest import Backtest, BacktestConfig
    from kinetic_empire.strategy.registry import build_registry

    fil = load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m")
    store = KlineStore(tmp_path / "store")
    store.write(fil.between(T0, T0 + 5 * 86_400_000))  # Aug 1-5, then a hole until Aug 20
    store.write(fil.between(T0 + 19 * 86_400_000, None))

    def config(start: str) -> BacktestConfig:
        return BacktestConfig.from_mapping({
            "backtest": {"data": str(store.root), "start": start, "end": "2023-10-01", "gap_policy": "error"},
            "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1h"}],
            "risk": {"sizing": {"method": "fixed_notional", "notional": 1000}},
        })  # fmt: skip

    result = Backtest(config("2023-09-01"), build_registry()).run()
    assert result.klines_processed > 0
    with pytest.raises(DataError, match=r"gap.*2023-08-06 00:00:00Z\.\.2023-08-19 23:59:00Z"):
        Backtest(config("2023-08-03"), build_registry()).run()  # the hole is inside this window
