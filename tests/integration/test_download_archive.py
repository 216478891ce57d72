"""The archive source against a local data.binance.vision look-alike (tests/archive) over loopback."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kinetic_empire.core.errors import DataError
from kinetic_empire.data import KlineStore, find_kline_files, load_klines, read_kline_file, sample_data_dir
from kinetic_empire.download import (
    ChecksumError,
    Coverage,
    DownloadOptions,
    DownloadRequest,
    FundingStore,
    Kind,
    MarkKlineStore,
    RetryPolicy,
    SeriesKey,
    download,
    load_funding,
)
from tests.support.download import ARCHIVE, AppServer, Background, FixedClock, archive_app, ms

TESTS = Path(__file__).resolve().parents[1]
DERIVED_1H = TESTS / "data" / "FILUSDT-1h-2023-08_2023-09.DERIVED.csv.gz"
UM = "data/futures/um"
AUG, OCT = ms("2023-08-01"), ms("2023-10-01")
LATER = FixedClock(ms("2024-01-15"))


@pytest.fixture(scope="module")
def bg() -> Iterator[Background]:
    b = Background()
    yield b
    b.close()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A private copy of the archive fixture (symlinks resolved) that a test may damage."""
    dst = tmp_path / "archive"
    shutil.copytree(ARCHIVE / "data", dst / "data")
    return dst


def serve(bg: Background, root: Path) -> tuple[AppServer, list[str]]:
    log: list[str] = []
    return AppServer(bg, archive_app(root, log=log)), log


def options(root: Path, url: str, clock: FixedClock = LATER) -> DownloadOptions:
    return DownloadOptions(root=root, archive_url=url, rest_url="http://127.0.0.1:9", clock=clock,
                           retry=RetryPolicy(max_retries=1, base_delay=0.0), progress=False)


def request(*tfs: str, symbols: tuple[str, ...] = ("FILUSDT",), start: int = AUG, end: int = OCT,
            funding: bool = False, mark: bool = False, source: str = "archive") -> DownloadRequest:
    return DownloadRequest(symbols, tfs, start, end, source=source, funding=funding, mark=mark)


def rezip(path: Path, csv: bytes) -> None:
    """Replace a fixture ZIP's content and write a matching CHECKSUM (so only the content is wrong)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.name.replace(".zip", ".csv"), csv)
    path.unlink()
    path.write_bytes(buf.getvalue())
    Path(f"{path}.CHECKSUM").write_text(f"{hashlib.sha256(buf.getvalue()).hexdigest()}  {path.name}\n")


def unzip(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(zf.namelist()[0])


# ------------------------------------------------------------------------------------------ happy paths


@pytest.mark.integration
def test_monthly_files_land_in_the_store_exactly_and_a_rerun_fetches_nothing(bg: Background, tmp_path: Path) -> None:
    server, log = serve(bg, ARCHIVE)
    root = tmp_path / "store"
    try:
        summary = download(request("1m", funding=True), options(root, server.url))
        expected = load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m")
        got = KlineStore(root).read("FILUSDT", "1m")
        assert len(got) == len(expected) == 87_840
        for col in ("open_time", "open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(got, col), getattr(expected, col))
        assert summary.rows_added == 87_840 + 183 and summary.gaps_found == 0
        assert f"/{UM}/monthly/klines/FILUSDT/1m/FILUSDT-1m-2023-08.zip.CHECKSUM" in log
        funding = load_funding(root, "FILUSDT", AUG, OCT)
        assert len(funding) == 183
        assert all(t % (8 * 3_600_000) == 0 for t in funding)  # calc_time jitter rounded to the settlement
        assert str(funding[AUG]) == "0.00013000"
        cov = Coverage.load(root, SeriesKey(Kind.KLINES, "FILUSDT", "1m"))
        assert cov.covered == [(AUG, OCT)] and cov.gaps == []

        log.clear()
        again = download(request("1m", funding=True), options(root, server.url))
        assert again.rows_added == 0 and log == []
    finally:
        server.close()


@pytest.mark.integration
def test_missing_month_falls_back_to_daily_files(bg: Background, tmp_path: Path) -> None:
    server, log = serve(bg, ARCHIVE)
    root = tmp_path / "store"
    try:
        summary = download(request("1h"), options(root, server.url))
    finally:
        server.close()
    assert f"/{UM}/monthly/klines/FILUSDT/1h/FILUSDT-1h-2023-09.zip" in log  # tried, 404
    assert f"/{UM}/daily/klines/FILUSDT/1h/FILUSDT-1h-2023-09-30.zip" in log
    (result,) = summary.results
    assert result.fetched == {"monthly": 1, "daily": 30}
    reference = read_kline_file(DERIVED_1H, "FILUSDT", "1h")
    got = KlineStore(root).read("FILUSDT", "1h")
    np.testing.assert_array_equal(got.open_time, reference.open_time)
    np.testing.assert_array_equal(got.close, reference.close)
    np.testing.assert_array_equal(got.volume, reference.volume)


@pytest.mark.integration
def test_the_current_month_comes_from_daily_files_and_today_is_reported_missing(bg: Background,
                                                                                 tmp_path: Path) -> None:
    server, log = serve(bg, ARCHIVE)
    root = tmp_path / "store"
    now = FixedClock(ms("2023-09-10 06:30"))
    try:
        summary = download(request("1h", source="archive"), options(root, server.url, now))
    finally:
        server.close()
    (result,) = summary.results
    assert result.fetched == {"monthly": 1, "daily": 9}
    assert result.unavailable == [(ms("2023-09-10"), ms("2023-09-10 06:00"))]  # the closed klines of today
    assert not any("2023-09-10" in p for p in log)  # today's file cannot exist yet: not even asked for
    got = KlineStore(root).read("FILUSDT", "1h")
    assert got.open_time[-1] == ms("2023-09-09 23:00")
    assert "not in the archive: 2023-09-10 00:00:00Z" in "\n".join(summary.lines())


@pytest.mark.integration
def test_mark_price_klines_are_stored_apart_from_klines(bg: Background, tmp_path: Path) -> None:
    server, _ = serve(bg, ARCHIVE)
    root = tmp_path / "store"
    try:
        download(request("1h", mark=True, start=AUG, end=ms("2023-09-01")), options(root, server.url))
    finally:
        server.close()
    mark = MarkKlineStore(root).read("FILUSDT", "1h")
    last = KlineStore(root).read("FILUSDT", "1h")
    assert len(mark) == len(last) == 744
    assert not mark.volume.any() and last.volume.all()
    assert (root / "mark" / "FILUSDT" / "1h-mark" / "2023-08.parquet").is_file()
    # The backtester searches a store root for partitions: it must see the klines only.
    assert find_kline_files(root, "FILUSDT", "1h") == [root / "klines" / "FILUSDT" / "1h" / "2023-08.parquet"]
    assert [(e.symbol, e.timeframe, e.rows) for e in MarkKlineStore(root).catalog()] == [("FILUSDT", "1h", 744)]


@pytest.mark.integration
def test_gaps_at_the_source_are_recorded_reported_and_not_fetched_again(bg: Background, tree: Path,
                                                                         tmp_path: Path) -> None:
    day = tree / UM / "daily/klines/FILUSDT/1h/FILUSDT-1h-2023-09-05.zip"
    lines = unzip(day).splitlines(keepends=True)
    rezip(day, b"".join(lines[:11] + lines[14:]))  # an outage: 10:00..12:00 missing
    server, log = serve(bg, tree)
    root = tmp_path / "store"
    try:
        summary = download(request("1h"), options(root, server.url))
        assert summary.gaps_found == 1
        (gap,) = summary.results[0].gaps
        assert (gap.start_ms, gap.end_ms, gap.missing) == (ms("2023-09-05 10:00"), ms("2023-09-05 12:00"), 3)
        assert "1 gap(s) at the source, 3 missing" in "\n".join(summary.lines())
        (entry,) = KlineStore(root).catalog()
        assert entry.gaps == 1 and entry.rows == 1464 - 3
        log.clear()
        assert download(request("1h"), options(root, server.url)).rows_added == 0
        assert log == []  # the outage is known: nothing to fetch
    finally:
        server.close()


# ------------------------------------------------------------------------------------------ bad files


def _aug_1h(tree: Path) -> Path:
    return tree / UM / "monthly/klines/FILUSDT/1h/FILUSDT-1h-2023-08.zip"


@pytest.mark.integration
def test_checksum_mismatch_is_an_error_naming_the_file_and_nothing_is_written(bg: Background, tree: Path,
                                                                              tmp_path: Path) -> None:
    f = _aug_1h(tree)
    data = bytearray(f.read_bytes())
    data[100] ^= 0xFF
    f.write_bytes(bytes(data))
    server, _ = serve(bg, tree)
    root = tmp_path / "store"
    try:
        with pytest.raises(ChecksumError, match=r"checksum mismatch for FILUSDT-1h-2023-08\.zip"):
            download(request("1h", end=ms("2023-09-01")), options(root, server.url))
    finally:
        server.close()
    assert KlineStore(root).catalog() == []


@pytest.mark.integration
def test_html_page_instead_of_a_zip(bg: Background, tree: Path, tmp_path: Path) -> None:
    f = _aug_1h(tree)
    f.write_bytes((TESTS / "data/bad/FILUSDT-1m-2023-08-01.html.csv").read_bytes())
    server, _ = serve(bg, tree)
    try:
        with pytest.raises(DataError, match=r"FILUSDT-1h-2023-08\.zip: \[format\] expected a ZIP archive, got an HTML"):
            download(request("1h", end=ms("2023-09-01")), options(tmp_path / "store", server.url))
    finally:
        server.close()


@pytest.mark.integration
def test_corrupt_zip_with_a_valid_checksum(bg: Background, tree: Path, tmp_path: Path) -> None:
    f = _aug_1h(tree)
    cut = f.read_bytes()[: f.stat().st_size // 2]
    f.write_bytes(cut)
    Path(f"{f}.CHECKSUM").write_text(f"{hashlib.sha256(cut).hexdigest()}  {f.name}\n")
    server, _ = serve(bg, tree)
    try:
        with pytest.raises(DataError, match=r"FILUSDT-1h-2023-08\.zip: \[format\] not a readable zip archive"):
            download(request("1h", end=ms("2023-09-01")), options(tmp_path / "store", server.url))
    finally:
        server.close()


@pytest.mark.integration
def test_truncated_csv_names_file_and_row_and_leaves_the_store_as_it_was(bg: Background, tree: Path,
                                                                          tmp_path: Path) -> None:
    server, _ = serve(bg, tree)
    root = tmp_path / "store"
    try:
        download(request("1h", start=ms("2023-09-01")), options(root, server.url))  # September is stored
        before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
        f = _aug_1h(tree)
        text = unzip(f)
        rezip(f, text[: len(text) // 2])  # cut mid-line, as an interrupted write would
        with pytest.raises(DataError, match=r"FILUSDT-1h-2023-08\.zip, row \d+: \[columns\]"):
            download(request("1h"), options(root, server.url))
    finally:
        server.close()
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


@pytest.mark.integration
def test_a_missing_checksum_file_is_an_error(bg: Background, tree: Path, tmp_path: Path) -> None:
    Path(f"{_aug_1h(tree)}.CHECKSUM").unlink()
    server, _ = serve(bg, tree)
    try:
        with pytest.raises(Exception, match=r"FILUSDT-1h-2023-08\.zip\.CHECKSUM: not found"):
            download(request("1h", end=ms("2023-09-01")), options(tmp_path / "store", server.url))
    finally:
        server.close()


def test_funding_store_merges_sources_by_settlement(tmp_path: Path) -> None:
    from kinetic_empire.download import FundingRows

    store = FundingStore(tmp_path)
    archive = FundingRows.build("FILUSDT", [AUG + 3, AUG + 8 * 3_600_000 + 1], ["0.0001", "0.0002"], [None, None], "a")
    rest = FundingRows.build("FILUSDT", [AUG, AUG + 8 * 3_600_000], ["0.00010000", "0.00020000"],
                             ["4.25", "4.30"], "r")
    store.write(rest)
    store.write(archive)  # newer rows win, but keep the mark price the archive lacks
    rows = store.read("FILUSDT")
    assert len(rows) == 2 and rows.rate == ("0.0001", "0.0002") and rows.mark == ("4.25", "4.30")
    assert store.write(archive) == []  # idempotent
    with pytest.raises(DataError, match=r"\[nan\]"):
        FundingRows.build("FILUSDT", [AUG], ["abc"], [None], "x")
