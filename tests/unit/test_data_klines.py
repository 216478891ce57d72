"""Reading and validating kline files: real files from tests/data and the bundled sample, every rule."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_empire.core.errors import DataError
from kinetic_empire.data import (
    Gap,
    KlineFrame,
    find_kline_files,
    kline_file_name,
    load_klines,
    read_kline_file,
    sample_data_dir,
    validate,
)

DATA = Path(__file__).parents[1] / "data"
FIL = DATA / "FILUSDT-1m-2023-08-01.csv"  # 300 real rows with header, 2023-08-01 00:00..04:59
BAD = DATA / "bad"
T0 = 1690848000000  # 2023-08-01 00:00 UTC
MIN = 60_000
COLS = ("open_time", "open", "high", "low", "close", "volume")


def rows_of(path: Path) -> list[list[str]]:
    """The CSV as text rows, parsed independently of the code under test."""
    lines = list(csv.reader(io.StringIO(path.read_text())))
    return lines[1:] if not lines[0][0].isdigit() else lines


def same(a: KlineFrame, b: KlineFrame) -> bool:
    return all(np.array_equal(getattr(a, c), getattr(b, c)) for c in COLS)


def write_csv(path: Path, rows: list[list[str]], header: bool = True) -> Path:
    head = FIL.read_text().splitlines()[0] + "\n" if header else ""
    path.write_text(head + "".join(",".join(r) + "\n" for r in rows))
    return path


def klines_from_closes(closes: list[float], start: int = T0, timeframe: str = "1m", symbol: str = "TESTUSDT"):
    """Synthetic klines where the shape matters: open = previous close, high/low bracket both."""
    c = np.asarray(closes, dtype=float)
    o = np.r_[c[0], c[:-1]]
    step = {"1m": MIN, "1h": 60 * MIN}[timeframe]
    t = start + np.arange(c.size, dtype=np.int64) * step
    return KlineFrame(symbol, timeframe, t, o, np.maximum(o, c) + 0.5, np.minimum(o, c) - 0.5, c, np.ones(c.size))


# --- good files -----------------------------------------------------------------------------------------


def test_headered_futures_csv_matches_the_text():
    f = read_kline_file(FIL)
    rows = rows_of(FIL)
    assert (f.symbol, f.timeframe, len(f)) == ("FILUSDT", "1m", 300)
    assert f.open_time[0] == T0 and np.all(np.diff(f.open_time) == MIN)
    for i in (0, 137, 299):
        assert [f.open_time[i], f.open[i], f.high[i], f.low[i], f.close[i], f.volume[i]] == [
            int(rows[i][0]), *(float(x) for x in rows[i][1:6])
        ]
    assert np.array_equal(f.close_time, [int(r[6]) for r in rows])
    assert f.gaps == () and f.source == str(FIL)


def test_no_header_spot_files_are_detected():
    a = read_kline_file(DATA / "spot" / "ADABTC-1m-2021-11-27.csv")
    b = read_kline_file(DATA / "spot" / "ADABTC-1m-2021-11-28.csv")
    assert (a.symbol, a.timeframe, len(a), len(b)) == ("ADABTC", "1m", 10, 11)
    assert a.open_time[0] == 1637971200000 and a.close[0] == 0.00002854


def test_microsecond_timestamps_are_converted_to_ms():
    us = read_kline_file(DATA / "micros" / "ADABTC-1m-2021-11-27.csv")
    ms = read_kline_file(DATA / "spot" / "ADABTC-1m-2021-11-27.csv")
    assert same(us, ms)


@pytest.mark.parametrize("kind", ["csv.gz", "zip", "parquet", "crlf"])
def test_every_container_gives_the_same_klines(tmp_path: Path, kind: str):
    data = FIL.read_bytes()
    path = tmp_path / f"FILUSDT-1m-2023-08-01.{kind.replace('crlf', 'csv')}"
    if kind == "csv.gz":
        path.write_bytes(gzip.compress(data))
    elif kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("FILUSDT-1m-2023-08-01.csv", data)
    elif kind == "crlf":
        path.write_bytes(data.replace(b"\n", b"\r\n"))
    else:
        frame = read_kline_file(FIL)
        pd.DataFrame({c: getattr(frame, c) for c in COLS}).to_parquet(path)
    assert same(read_kline_file(path), read_kline_file(FIL))


def test_timeframe_from_close_time_when_the_name_does_not_say(tmp_path: Path):
    path = tmp_path / "download.csv"
    shutil.copyfile(FIL, path)
    with pytest.raises(DataError, match="symbol"):
        read_kline_file(path)
    f = read_kline_file(path, symbol="FILUSDT")
    assert (f.symbol, f.timeframe, len(f)) == ("FILUSDT", "1m", 300)


def test_file_names():
    assert kline_file_name("FILUSDT-1m-2023-08.csv") == ("FILUSDT", "1m")
    assert kline_file_name("x/FILUSDT-1h-2023-08_2023-11.DERIVED.csv.gz") == ("FILUSDT", "1h")
    assert kline_file_name("root/klines/NEARUSDT/4h/2023-09.parquet") == ("NEARUSDT", "4h")
    assert kline_file_name("notes.txt") == (None, None)


# --- every rule, on real rows -----------------------------------------------------------------------------

BAD_CASES = [
    ("duplicate", "duplicate", 51),
    ("order", "order", 61),
    ("nan", "nan", 70),
    ("high_low", "high_low", 80),
    ("gap", "gap", 91),
    ("interval", "interval", 40),
    ("misaligned", "interval", 1),
    ("garbage", "parse", 30),
    ("columns", "columns", 25),
    ("html", "format", None),
]


@pytest.mark.parametrize(("variant", "rule", "row"), BAD_CASES)
def test_bad_files_name_file_row_and_rule(variant: str, rule: str, row: int | None):
    path = BAD / f"FILUSDT-1m-2023-08-01.{variant}.csv"
    with pytest.raises(DataError) as err:
        read_kline_file(path)
    e = err.value
    assert (e.rule, e.row, e.file) == (rule, row, str(path))
    assert str(path) in str(e) and f"[{rule}]" in str(e)


def test_truncated_zip():
    with pytest.raises(DataError, match=r"\[format\].*zip") as err:
        read_kline_file(BAD / "FILUSDT-1m-2023-08-01.truncated.zip")
    assert err.value.file.endswith("truncated.zip")


def test_messages_say_what_is_wrong():
    def msg(variant: str) -> str:
        with pytest.raises(DataError) as err:
            read_kline_file(BAD / f"FILUSDT-1m-2023-08-01.{variant}.csv")
        return str(err.value)

    assert "already seen at" in msg("duplicate") and "row 50" in msg("duplicate")
    assert "high < low" in msg("high_low")
    assert "5m" in msg("interval")
    assert "'abc'" in msg("garbage") and "low" in msg("garbage")
    assert "2023-08-01 01:30:00Z..2023-08-01 01:34:00Z (5 missing)" in msg("gap")
    assert "HTML" in msg("html")


def tweak(row: int, col: int, value: str) -> list[list[str]]:
    rows = rows_of(FIL)[:50]
    rows[row - 1][col] = value
    return rows


@pytest.mark.parametrize(
    ("rows", "rule", "row"),
    [
        (tweak(7, 4, "NaN"), "nan", 7),
        (tweak(8, 5, "inf"), "nan", 8),
        (tweak(9, 1, "4.30"), "high_low", 9),  # open above high
        (tweak(10, 4, "1.0"), "high_low", 10),  # close below low
        (tweak(11, 0, "1690848600000.5"), "parse", 11),
        (tweak(12, 6, "x"), "parse", 12),
        (tweak(13, 0, str((T0 + 12 * MIN) * 1000)), "timestamp", 13),  # one µs row among ms
    ],
)
def test_more_rules(tmp_path: Path, rows: list[list[str]], rule: str, row: int):
    path = write_csv(tmp_path / "FILUSDT-1m-2023-08-01.csv", rows)
    with pytest.raises(DataError) as err:
        read_kline_file(path)
    assert (err.value.rule, err.value.row) == (rule, row)


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"", "format"),
        (b"open_time,open,high,low,close,volume,close_time,quote_volume,count,a,b,ignore\n", "format"),
        (b'<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>', "format"),
        (b"hello world\n1,2,3\n", "parse"),
        (gzip.compress(FIL.read_bytes())[:500], "format"),
    ],
)
def test_garbage_files(tmp_path: Path, content: bytes, rule: str):
    path = tmp_path / "FILUSDT-1m-2023-08-01.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_kline_file(path)
    assert err.value.rule == rule


def test_zip_with_two_members_is_refused(tmp_path: Path):
    path = tmp_path / "FILUSDT-1m-2023-08-01.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.csv", FIL.read_bytes())
        zf.writestr("b.csv", FIL.read_bytes())
    with pytest.raises(DataError, match="exactly one CSV"):
        read_kline_file(path)


def test_requested_timeframe_must_match_the_name():
    with pytest.raises(DataError, match="timeframe '1h' requested"):
        read_kline_file(FIL, timeframe="1h")


# --- gap policies -------------------------------------------------------------------------------------------


def test_gap_policy_keep_records_the_hole():
    f = read_kline_file(BAD / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="keep")
    assert len(f) == 115
    assert f.gaps == (Gap(T0 + 90 * MIN, T0 + 94 * MIN, 5),) and f.missing == 5


def test_gap_policy_ffill_inserts_flat_klines():
    f = read_kline_file(BAD / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="ffill")
    good = read_kline_file(FIL).between(T0, T0 + 120 * MIN)
    assert len(f) == 120 and np.array_equal(f.open_time, good.open_time)
    hole = slice(90, 95)
    prev_close = good.close[89]
    for col in ("open", "high", "low", "close"):
        assert np.all(getattr(f, col)[hole] == prev_close)
    assert np.all(f.volume[hole] == 0)
    keep = np.r_[0:90, 95:120]
    assert all(np.array_equal(getattr(f, c)[keep], getattr(good, c)[keep]) for c in COLS)
    assert f.gaps == (Gap(T0 + 90 * MIN, T0 + 94 * MIN, 5),)


def test_unknown_gap_policy():
    with pytest.raises(ValueError, match="gap_policy"):
        read_kline_file(BAD / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="ignore")


def test_validate_synthetic_frame():
    f = klines_from_closes([1, 2, 3, 4])
    assert validate(f) is f
    holed = KlineFrame(f.symbol, "1m", f.open_time[[0, 3]], f.open[[0, 3]], f.high[[0, 3]], f.low[[0, 3]],
                       f.close[[0, 3]], f.volume[[0, 3]])
    with pytest.raises(DataError, match="2 1m kline"):
        validate(holed)
    filled = validate(holed, gap_policy="ffill")
    assert len(filled) == 4 and filled.close[1] == filled.close[2] == 1.0
    again = validate(filled, gap_policy="keep")  # re-validating does not list gaps twice
    assert again.gaps == filled.gaps == (Gap(T0 + MIN, T0 + 2 * MIN, 2),)


# --- loading series -----------------------------------------------------------------------------------------


def test_bundled_sample_folder():
    f = load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m")
    assert len(f) == 44640 + 43200 and f.gaps == ()
    assert f.open_time[0] == T0 and np.all(np.diff(f.open_time) == MIN)
    assert len(find_kline_files(sample_data_dir(), "NEARUSDT", "1m")) == 2


def test_folder_with_several_series_needs_a_symbol():
    with pytest.raises(DataError, match="several series"):
        load_klines(sample_data_dir())


def test_window_and_gap_outside_it(tmp_path: Path):
    rows = rows_of(FIL)
    write_csv(tmp_path / "FILUSDT-1m-2023-08-01.csv", rows[:100] + rows[110:])
    with pytest.raises(DataError, match=r"\[gap\]"):
        load_klines(tmp_path)
    f = load_klines(tmp_path, start="2023-08-01 02:00", end=T0 + 180 * MIN)
    assert (len(f), f.open_time[0], f.open_time[-1]) == (60, T0 + 120 * MIN, T0 + 179 * MIN)


def test_files_are_concatenated_in_time_order_and_holes_between_files_are_caught(tmp_path: Path):
    rows = rows_of(FIL)
    a = write_csv(tmp_path / "FILUSDT-1m-2023-08-01.a.csv", rows[:100])
    b = write_csv(tmp_path / "FILUSDT-1m-2023-08-01.b.csv", rows[100:], header=False)
    assert same(load_klines([b, a]), read_kline_file(FIL))
    c = write_csv(tmp_path / "FILUSDT-1m-2023-08-01.c.csv", rows[103:])
    with pytest.raises(DataError) as err:
        load_klines([c, a])
    assert (err.value.rule, err.value.file, err.value.row) == ("gap", str(c), 1)


def test_same_data_twice_is_a_duplicate_naming_the_second_file(tmp_path: Path):
    copy = tmp_path / "FILUSDT-1m-2023-08-01.zip"
    with zipfile.ZipFile(copy, "w") as zf:
        zf.writestr("x.csv", FIL.read_bytes()[: len(FIL.read_bytes()) // 2].rsplit(b"\n", 1)[0] + b"\n")
    with pytest.raises(DataError) as err:
        load_klines([FIL, copy])
    assert err.value.rule == "duplicate" and err.value.row == 1
    assert {err.value.file} <= {str(FIL), str(copy)}


def test_load_errors(tmp_path: Path):
    with pytest.raises(DataError, match="no such file"):
        load_klines(tmp_path / "missing")
    with pytest.raises(DataError, match="no XRPUSDT 1m files"):
        load_klines(sample_data_dir(), symbol="XRPUSDT", timeframe="1m")
    with pytest.raises(DataError, match="no FILUSDT 1m klines"):
        load_klines(FIL, start="2024-01-01")


def test_sample_data_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert (sample_data_dir() / "futures" / "um" / "monthly" / "klines" / "FILUSDT").is_dir()
    monkeypatch.setenv("KINETIC_DATA_DIR", str(tmp_path))
    assert sample_data_dir() == tmp_path


# --- the frame ------------------------------------------------------------------------------------------------


def test_between_clips_gaps_and_shares_memory():
    f = read_kline_file(BAD / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="keep")
    w = f.between(T0 + 92 * MIN, T0 + 100 * MIN)
    assert w.gaps == (Gap(T0 + 92 * MIN, T0 + 94 * MIN, 3),)
    assert np.shares_memory(w.close, f.close)
    assert f.between(None, None) is f and len(f.between(T0 + 10**9, None)) == 0


def test_shifted_moves_times_and_gaps_not_prices():
    f = read_kline_file(BAD / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="keep")
    day = 86_400_000
    g = f.shifted(day)
    assert (g.open_time == f.open_time + day).all() and np.shares_memory(g.close, f.close)
    assert g.gaps == tuple(Gap(x.start_ms + day, x.end_ms + day, x.missing) for x in f.gaps) and g.gaps
    assert same(g.shifted(-day), f)


def test_pandas_round_trip():
    f = read_kline_file(FIL)
    df = f.to_pandas()
    assert str(df.index.tz) == "UTC" and df.index[0] == pd.Timestamp("2023-08-01", tz="UTC")
    assert list(df.columns) == list(COLS)
    back = KlineFrame.from_pandas(df)
    assert same(back, f) and (back.symbol, back.timeframe) == ("FILUSDT", "1m")
    by_index = KlineFrame.from_pandas(df.drop(columns="open_time").rename(columns=str.title), "FILUSDT", "1m")
    assert same(by_index, f)


def test_extra_columns_are_refused(tmp_path: Path):
    rows = rows_of(FIL)[:30]
    rows[19].append("7")
    with pytest.raises(DataError) as err:
        read_kline_file(write_csv(tmp_path / "FILUSDT-1m-2023-08-01.csv", rows))
    assert (err.value.rule, err.value.row) == ("columns", 20) and "found 13" in str(err.value)


def test_files_named_outside_the_window_are_not_read(tmp_path: Path):
    shutil.copyfile(FIL, tmp_path / FIL.name)
    (tmp_path / "FILUSDT-1m-2023-07-31.csv").write_text("<html>not data</html>")
    f = load_klines(tmp_path, start="2023-08-01", end="2023-08-02")
    assert len(f) == 300
    with pytest.raises(DataError, match="HTML"):
        load_klines(tmp_path)


def test_symbol_alone_selects_the_series_in_a_folder():
    f = load_klines(sample_data_dir(), symbol="NEARUSDT", start="2023-09-30 23:00")
    assert (f.symbol, f.timeframe, len(f)) == ("NEARUSDT", "1m", 60)
