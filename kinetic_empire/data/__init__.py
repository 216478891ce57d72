"""Kline data for the backtester: read data.binance.vision files, validate, resample, store as parquet.

Typical use::

    from kinetic_empire.data import load_klines, resample, sample_data_dir
    m1 = load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m")
    h1 = resample(m1, "1h")
"""

from __future__ import annotations

import os
from pathlib import Path

from kinetic_empire.data._csv import KLINE_CSV_COLUMNS
from kinetic_empire.data.frame import COLUMNS, Gap, KlineFrame
from kinetic_empire.data.klines import find_kline_files, kline_file_name, load_klines, read_kline_file
from kinetic_empire.data.resample import resample
from kinetic_empire.data.store import CatalogEntry, KlineStore
from kinetic_empire.data.validate import GAP_POLICIES, GapPolicy, find_gaps, validate

DATA_DIR_ENV = "KINETIC_DATA_DIR"


def sample_data_dir() -> Path:
    """The bundled sample klines (``backtests/data/``), or ``$KINETIC_DATA_DIR`` when that is set.

    The environment variable lets a user point every example and test at a larger local archive
    without code changes.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "backtests" / "data"


__all__ = [
    "COLUMNS",
    "DATA_DIR_ENV",
    "GAP_POLICIES",
    "KLINE_CSV_COLUMNS",
    "CatalogEntry",
    "Gap",
    "GapPolicy",
    "KlineFrame",
    "KlineStore",
    "find_gaps",
    "find_kline_files",
    "kline_file_name",
    "load_klines",
    "read_kline_file",
    "resample",
    "sample_data_dir",
    "validate",
]
