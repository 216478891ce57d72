"""Resampling: exact against 1h klines aggregated by Binance's rules, and against pandas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinetic_empire.data import Gap, KlineFrame, load_klines, read_kline_file, resample, sample_data_dir

DATA = Path(__file__).parents[1] / "data"
SHARED = Path("/work/shared/data/klines/futures_um")
T0 = 1690848000000  # 2023-08-01 00:00 UTC
MIN = 60_000
COLS = ("open_time", "open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def fil_1m() -> KlineFrame:
    return load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m")


def assert_exact(a: KlineFrame, b: KlineFrame) -> None:
    assert len(a) == len(b)
    for c in COLS:
        assert np.array_equal(getattr(a, c), getattr(b, c)), c


def test_matches_the_derived_1h_exactly(fil_1m: KlineFrame):
    expected = read_kline_file(DATA / "FILUSDT-1h-2023-08_2023-09.DERIVED.csv.gz")
    got = resample(fil_1m, "1h")
    assert (got.symbol, got.timeframe, got.gaps) == ("FILUSDT", "1h", ())
    assert_exact(got, expected)
    # Plain float addition would not do: it differs from Binance's decimal sums in the last bit.
    naive = np.add.reduceat(fil_1m.volume, np.arange(0, len(fil_1m), 60))
    assert not np.array_equal(naive, expected.volume)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data folder not available")
@pytest.mark.parametrize("symbol", ["FILUSDT", "NEARUSDT"])
def test_matches_all_shared_derived_files(symbol: str):
    m1 = load_klines(SHARED / "monthly" / "1m" / symbol)
    (h1_file,) = (SHARED / "derived_1h").glob(f"{symbol}-1h-*.DERIVED.csv.gz")
    assert_exact(resample(m1, "1h"), read_kline_file(h1_file))


@pytest.mark.parametrize(("timeframe", "rule"), [("5m", "5min"), ("15m", "15min"), ("4h", "4h"), ("1d", "1D")])
def test_agrees_with_pandas(fil_1m: KlineFrame, timeframe: str, rule: str):
    df = fil_1m.to_pandas()
    ref = df.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    got = resample(fil_1m, timeframe)
    assert np.array_equal(got.open_time, ref.index.as_unit("ms").asi8)
    for c in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(got, c), ref[c].to_numpy()), c
    assert np.allclose(got.volume, ref["volume"].to_numpy(), rtol=1e-12, atol=0)


def test_weeks_start_on_monday_and_partial_edges_are_dropped(fil_1m: KlineFrame):
    w = resample(fil_1m, "1w")
    # 2023-08-01 was a Tuesday: the first full week starts Monday 08-07, the last ends Sunday 09-24.
    assert pd.Timestamp(int(w.open_time[0]), unit="ms").day_name() == "Monday"
    assert [str(pd.Timestamp(int(t), unit="ms").date()) for t in w.open_time[[0, -1]]] == ["2023-08-07", "2023-09-18"]
    assert len(w) == 7
    kept = resample(fil_1m, "1w", keep_partial=True)
    assert len(kept) == 9 and kept.open_time[0] == T0 - 1 * 86_400_000


def test_partial_first_and_last_hour(fil_1m: KlineFrame):
    cut = fil_1m.between(T0 + 30 * MIN, T0 + 150 * MIN)  # 00:30 .. 02:29
    h = resample(cut, "1h")
    assert list(h.open_time) == [T0 + 60 * MIN]
    assert h.open[0] == cut.open[30] and h.close[0] == cut.close[89]
    assert list(resample(cut, "1h", keep_partial=True).open_time) == [T0, T0 + 60 * MIN, T0 + 120 * MIN]


def test_refuses_finer_and_non_multiples(fil_1m: KlineFrame):
    h = resample(fil_1m, "1h")
    with pytest.raises(ValueError, match="multiple"):
        resample(h, "15m")
    with pytest.raises(ValueError, match="multiple"):
        resample(resample(fil_1m, "3m"), "5m")
    with pytest.raises(ValueError, match="unknown timeframe"):
        resample(fil_1m, "7m")
    assert resample(fil_1m, "1m") is fil_1m


def test_gaps_are_carried_to_the_target_timeframe():
    holed = read_kline_file(DATA / "bad" / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="keep")  # 01:30..01:34
    m5 = resample(holed, "5m")
    assert m5.gaps == (Gap(T0 + 90 * MIN, T0 + 90 * MIN, 1),) and T0 + 90 * MIN not in m5.open_time
    h1 = resample(holed, "1h")  # the 01:00 hour is built from the 55 klines present
    assert len(h1) == 2 and h1.gaps == (Gap(T0 + 60 * MIN, T0 + 60 * MIN, 1),)
    filled = read_kline_file(DATA / "bad" / "FILUSDT-1m-2023-08-01.gap.csv", gap_policy="ffill")
    assert resample(filled, "5m").gaps == m5.gaps and len(resample(filled, "5m")) == 24


def test_empty_frame():
    e = KlineFrame("X", "1m", np.empty(0, np.int64), *(np.empty(0) for _ in range(5)))
    assert len(resample(e, "1h")) == 0
