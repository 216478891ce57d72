"""Memory-mapped store reads (issue 17, target 5): a backtest larger than memory streams its klines from disk.

A mapped read must give exactly the frame an in-memory read gives (values, gaps, windows), the cache must
follow the partitions it was built from, and a backtest over mapped columns must give exactly the trades
and equity of the same backtest in memory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.core.errors import DataError
from kinetic_empire.data import KlineStore, store
from kinetic_empire.strategy.registry import build_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthetic import START_MS, synthetic_klines

COLS = ("open_time", "open", "high", "low", "close", "volume")


def _mapped(frame) -> bool:
    """True when every column is backed by a file mapping, not by memory of its own."""
    return all(isinstance(_root(getattr(frame, c)), np.memmap) for c in COLS)


def _root(a: np.ndarray):
    while isinstance(a, np.ndarray) and a.base is not None and not isinstance(a, np.memmap):
        a = a.base
    return a


@pytest.fixture()
def holed_store(tmp_path: Path) -> KlineStore:
    """Three months of 1m klines (FILUSDT) with a 30-minute hole in the second month."""
    frame = synthetic_klines(3 * 31 * 1440, seed=7)
    keep = np.ones(len(frame), dtype=bool)
    keep[50_000:50_030] = False
    holed = type(frame)(frame.symbol, "1m", *(getattr(frame, c)[keep] for c in COLS), source="synthetic")
    s = KlineStore(tmp_path)
    s.write(holed)
    return s


def test_a_mapped_read_is_the_in_memory_read(holed_store: KlineStore) -> None:
    day = 86_400_000
    for window in ((None, None), (START_MS + 20 * day, START_MS + 70 * day), (START_MS + 40 * day, None)):
        plain = holed_store.read("FILUSDT", "1m", *window, mapped=False)
        mapped = holed_store.read("FILUSDT", "1m", *window, mapped=True)
        assert _mapped(mapped) and not _mapped(plain)
        for c in COLS:
            assert np.array_equal(getattr(plain, c), getattr(mapped, c)), (window, c)
        assert plain.gaps == mapped.gaps and len(mapped.gaps) == (0 if window[0] == START_MS + 40 * day else 1)
    assert (holed_store.root / "columns" / "FILUSDT" / "1m" / "close.npy").is_file()
    with pytest.raises(DataError, match="no FILUSDT 1m klines stored"):
        holed_store.read("FILUSDT", "1m", START_MS + 400 * day, None, mapped=True)


def test_the_mapped_columns_follow_the_partitions(holed_store: KlineStore) -> None:
    before = holed_store.read("FILUSDT", "1m", mapped=True)
    last = int(before.open_time[-1])
    more = synthetic_klines(2_000, seed=8)
    moved = type(more)("FILUSDT", "1m", more.open_time - START_MS + last + 60_000, more.open, more.high, more.low,
                       more.close, more.volume)  # fmt: skip
    holed_store.write(moved)  # extends the last month and starts a new one
    after = holed_store.read("FILUSDT", "1m", mapped=True)
    assert len(after) == len(before) + 2_000
    assert np.array_equal(after.close, holed_store.read("FILUSDT", "1m", mapped=False).close)


def test_a_partition_out_of_order_is_refused_by_name(holed_store: KlineStore) -> None:
    folder = holed_store.series_dir("FILUSDT", "1m")
    first, second = sorted(folder.glob("*.parquet"))[:2]
    data = first.read_bytes()
    second.write_bytes(data)  # the second month now repeats the first
    with pytest.raises(DataError, match=second.name):
        holed_store.read("FILUSDT", "1m", mapped=True)
    assert not any(p.name.endswith(".building") or ".building-" in p.name
                   for p in (holed_store.root / "columns" / "FILUSDT").iterdir())  # nothing half-built left


def test_size_decides_when_unsaid(holed_store: KlineStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "MAP_ABOVE_BYTES", 0)
    assert _mapped(holed_store.read("FILUSDT", "1m"))
    monkeypatch.setattr(store, "MAP_ABOVE_BYTES", 1 << 40)
    assert not _mapped(holed_store.read("FILUSDT", "1m"))


def _run(data: Path):
    cfg = BacktestConfig.from_mapping({
        "backtest": {"data": str(data), "start": START_MS + 25 * 86_400_000,
                     "end": START_MS + 45 * 86_400_000, "initial_balance": 10_000,
                     "fees": {"maker": 0.0002, "taker": 0.0004}, "gap_policy": "keep"},
        "strategies": [{"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m",
                        "params": {"fast": 10, "slow": 40}}],
        "risk": {"default_leverage": 2, "sizing": {"method": "fixed_quantity", "quantity": 100}},
    })  # fmt: skip
    return Backtest(cfg, build_registry()).run()


def test_a_mapped_backtest_gives_the_in_memory_result(holed_store: KlineStore,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "MAP_ABOVE_BYTES", 1 << 40)
    plain = _run(holed_store.root)
    monkeypatch.setattr(store, "MAP_ABOVE_BYTES", 0)
    mapped = _run(holed_store.root)
    assert len(plain.portfolio.trades) > 50  # it traded, both ways
    assert plain.klines_processed == mapped.klines_processed
    assert plain.portfolio.trades == mapped.portfolio.trades
    assert np.array_equal(plain.equity, mapped.equity) and np.array_equal(plain.timestamps, mapped.timestamps)
    assert isinstance(_root(mapped.closes["FILUSDT"]), np.memmap)  # the run did replay the mapped columns
    assert not isinstance(_root(plain.closes["FILUSDT"]), np.memmap)


def test_a_build_that_loses_the_race_uses_the_winners_columns(holed_store: KlineStore,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes building the same cache: the second rename fails; its reader takes the first's build."""
    import shutil

    from kinetic_empire.data import mapped

    expected = holed_store.read("FILUSDT", "1m", mapped=True)
    cache = holed_store.columns_dir("FILUSDT", "1m")
    winner = cache.with_name("winner")
    shutil.copytree(cache, winner)
    (cache / mapped.MANIFEST).write_text("{}")  # this process sees no valid cache and builds one
    real_rmtree = shutil.rmtree

    def other_process_wins(path, ignore_errors=False):
        real_rmtree(path, ignore_errors=ignore_errors)
        if Path(path) == cache:
            shutil.copytree(winner, cache)  # the other build lands between our delete and our rename

    monkeypatch.setattr(mapped.shutil, "rmtree", other_process_wins)
    again = holed_store.read("FILUSDT", "1m", mapped=True)
    assert np.array_equal(again.close, expected.close) and again.gaps == expected.gaps
    assert sorted(p.name for p in cache.parent.iterdir()) == ["1m", "winner"]  # our staging copy is gone
