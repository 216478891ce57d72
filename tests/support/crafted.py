"""Kline files with a chosen shape, in Binance's public-data CSV format, for sandbox tests that need a price
path real data does not give on cue (a crash through a liquidation price, a gap between two requests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

T0 = 1_690_848_000_000  # 2023-08-01 00:00 UTC
HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
          "taker_buy_quote_volume,ignore\n")


def write_klines(folder: Path, ohlc: Sequence[tuple[str, str, str, str]], symbol: str = "FILUSDT") -> Path:
    """One 1m kline per (open, high, low, close) from 2023-08-01 00:00 UTC; returns ``folder``."""
    rows = []
    for i, (o, h, lo, c) in enumerate(ohlc):
        t = T0 + i * 60_000
        rows.append(f"{t},{o},{h},{lo},{c},1000,{t + 59_999},4000,10,500,2000,0\n")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{symbol}-1m-2023-08-01.csv").write_text(HEADER + "".join(rows))
    return folder
