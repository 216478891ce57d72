"""StagedFiles: a batch of files replaced all together or not at all, and the stores that write through it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kinetic_empire.core.errors import DataError
from kinetic_empire.data import KlineFrame, KlineStore, load_klines, sample_data_dir
from kinetic_empire.data.staged import StagedFiles
from kinetic_empire.download.funding import FundingRows, FundingStore
from kinetic_empire.download.series import Kind, SeriesKey
from kinetic_empire.download.stores import Coverage

DAY = 86_400_000
AUG = 1690848000000  # 2023-08-01 00:00 UTC
SEP = 1693526400000  # 2023-09-01 00:00 UTC


def files_in(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def table(n: int) -> pa.Table:
    return pa.table({"x": np.arange(n, dtype=np.int64)})


def test_a_clean_batch_replaces_every_file(tmp_path: Path) -> None:
    old = tmp_path / "a.parquet"
    pq.write_table(table(1), old)
    with StagedFiles() as batch:
        batch.parquet(table(3), old)
        batch.text("{}", tmp_path / "b.json")
        assert not (tmp_path / "b.json").exists()  # nothing is visible before the block ends
    assert batch.destinations == [old, tmp_path / "b.json"]
    assert pq.read_table(old).num_rows == 3 and (tmp_path / "b.json").read_text() == "{}"
    assert sorted(files_in(tmp_path)) == ["a.parquet", "b.json"]


def test_an_exception_inside_the_batch_replaces_nothing(tmp_path: Path) -> None:
    pq.write_table(table(1), tmp_path / "a.parquet")
    before = files_in(tmp_path)
    with pytest.raises(KeyboardInterrupt), StagedFiles() as batch:
        batch.parquet(table(5), tmp_path / "a.parquet")
        batch.parquet(table(5), tmp_path / "new.parquet")
        raise KeyboardInterrupt
    assert files_in(tmp_path) == before


def test_a_write_failing_half_way_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    pq.write_table(table(1), tmp_path / "a.parquet")
    before = files_in(tmp_path)
    with pytest.raises(OSError, match="disk full"), StagedFiles() as batch:
        batch.parquet(table(5), tmp_path / "b.parquet")
        with batch.path_for(tmp_path / "a.parquet").open("wb") as half:
            half.write(b"PAR1 and then the disk filled up")
            raise OSError("disk full")
    assert files_in(tmp_path) == before


def test_a_table_parquet_cannot_hold_leaves_nothing_behind(tmp_path: Path) -> None:
    union = pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])])
    with pytest.raises(pa.ArrowNotImplementedError), StagedFiles() as batch:
        batch.parquet(pa.table({"u": union}), tmp_path / "a.parquet")
    assert files_in(tmp_path) == {}


@pytest.fixture(scope="module")
def near() -> KlineFrame:
    return load_klines(sample_data_dir(), symbol="NEARUSDT", timeframe="1m")


def test_kline_store_keeps_every_partition_when_a_later_month_fails(tmp_path: Path, near: KlineFrame) -> None:
    store = KlineStore(tmp_path)
    store.write(near.between(AUG, AUG + DAY))
    [september] = store.write(near.between(SEP, SEP + DAY))
    september.write_bytes(b"not parquet")  # the second month of the next write cannot be merged
    before = files_in(tmp_path)
    with pytest.raises(DataError, match="unreadable partition"):
        store.write(near)  # August's new partition is written first, then September fails
    assert files_in(tmp_path) == before


def test_funding_store_keeps_every_partition_when_a_later_month_fails(tmp_path: Path) -> None:
    store = FundingStore(tmp_path)

    def rows(*times: int) -> FundingRows:
        return FundingRows.build("FILUSDT", list(times), ["0.0001"] * len(times), [None] * len(times), "test")

    store.write(rows(AUG))
    [september] = store.write(rows(SEP))
    september.write_bytes(b"not parquet")
    before = files_in(tmp_path)
    with pytest.raises(DataError, match="unreadable funding partition"):
        store.write(rows(AUG + DAY // 3, SEP + DAY // 3))
    assert files_in(tmp_path) == before
    september.unlink()
    assert len(store.write(rows(AUG + DAY // 3, SEP + DAY // 3))) == 2 and len(store.read("FILUSDT")) == 3


def test_coverage_record_is_written_through_the_batch(tmp_path: Path) -> None:
    key = SeriesKey(Kind.KLINES, "FILUSDT", "1h")
    cov = Coverage.load(tmp_path, key)
    cov.add((AUG, SEP), [])
    cov.save()
    assert Coverage.load(tmp_path, key).covered == [(AUG, SEP)]
    assert [p.name for p in cov.path.parent.iterdir()] == [cov.path.name]


def test_temporaries_of_a_killed_writer_are_swept_by_the_next_write(tmp_path: Path) -> None:
    """A writer SIGKILLed between writing its temporary and the rename leaves a hidden file; the next
    batch writing into that folder removes it, and never touches a live writer's temporaries."""
    final = tmp_path / "2023-08.parquet"
    script = (
        "import os, signal, sys; from pathlib import Path; import pyarrow as pa\n"
        "from kinetic_empire.data.staged import StagedFiles\n"
        "batch = StagedFiles(); batch.__enter__()\n"
        f"batch.parquet(pa.table({{'x': [1, 2]}}), Path({str(final)!r}))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], check=False)
    assert proc.returncode == -signal.SIGKILL
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].name.startswith(".2023-08.parquet.")
    mine = tmp_path / f".other.parquet.{os.getpid()}.{'a' * 32}.tmp"  # a live process's temporary
    mine.write_text("in progress")

    with StagedFiles() as batch:
        batch.text("hello", tmp_path / "note.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["note.txt", mine.name])
