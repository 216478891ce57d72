"""Rebuild the archive fixture in this folder (a small data.binance.vision tree) from backtests/data.

Run from anywhere: ``python tests/archive/build.py``. Deterministic: the same input gives byte-identical
ZIPs (fixed member timestamps) and so the same ``.CHECKSUM`` files. See README.md for what each file is.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SAMPLE = REPO / "backtests" / "data" / "futures" / "um" / "monthly" / "klines"
UM = HERE / "data" / "futures" / "um"
HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
          "taker_buy_quote_volume,ignore")
HOUR = 3_600_000
DAY = 86_400_000
FUNDING_EVERY = 8 * HOUR


def real_1m(symbol: str, month: str) -> list[list[str]]:
    """Rows of the bundled real monthly 1m file (header dropped)."""
    with zipfile.ZipFile(SAMPLE / symbol / "1m" / f"{symbol}-1m-{month}.zip") as zf:
        text = zf.read(zf.namelist()[0]).decode()
    return [line.split(",") for line in text.splitlines()[1:]]


def to_1h(rows: list[list[str]]) -> list[list[str]]:
    """Hourly klines the way Binance builds them: first open, max high, min low, last close, exact sums."""
    out: list[list[str]] = []
    for i in range(0, len(rows), 60):
        block = rows[i : i + 60]
        t = int(block[0][0])
        assert t % HOUR == 0 and len(block) == 60 and int(block[-1][0]) == t + 59 * 60_000

        def total(col: int, block: list[list[str]] = block) -> str:
            return str(sum((Decimal(r[col]) for r in block), Decimal(0)))

        out.append([
            str(t), block[0][1], max(block, key=lambda r: Decimal(r[2]))[2],
            min(block, key=lambda r: Decimal(r[3]))[3], block[-1][4], total(5), str(t + HOUR - 1), total(7),
            str(sum(int(r[8]) for r in block)), total(9), total(10), "0",
        ])
    return out


def as_mark(rows: list[list[str]]) -> list[list[str]]:
    """DERIVED mark-price klines: last-price OHLC, volume fields zero, as markPriceKlines files have them."""
    return [[r[0], r[1], r[2], r[3], r[4], "0", r[6], "0", "0", "0", "0", "0"] for r in rows]


def csv_text(rows: Iterable[list[str]], header: str | None = HEADER) -> bytes:
    lines = ([header] if header else []) + [",".join(r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def write_zip(path: Path, csv: bytes) -> None:
    """A ZIP holding one CSV named like the ZIP, plus its ``.CHECKSUM`` (``<sha256>  <name>``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(path.name.replace(".zip", ".csv"), date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, csv)
    path.write_bytes(buf.getvalue())
    write_checksum(path)


def write_checksum(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    Path(f"{path}.CHECKSUM").write_text(f"{digest}  {path.name}\n")


def link_real_month(symbol: str, month: str) -> None:
    """The real monthly 1m ZIP, as a relative symlink into backtests/data (no second copy in git)."""
    link = UM / "monthly" / "klines" / symbol / "1m" / f"{symbol}-1m-{month}.zip"
    link.parent.mkdir(parents=True, exist_ok=True)
    target = SAMPLE / symbol / "1m" / link.name
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(target, link.parent))
    write_checksum(link)


def funding_rows(month_start_ms: int, month_end_ms: int) -> list[list[str]]:
    """SYNTHETIC funding settlements every 8 h, calc_time with a few ms of jitter as Binance's has."""
    rows = []
    t = month_start_ms
    while t < month_end_ms:
        k = t // FUNDING_EVERY
        rate = Decimal(100 + (k * 37) % 61 - 30) / Decimal(1_000_000)  # 0.00007..0.00013
        rows.append([str(t + k % 7), "8", f"{rate:.8f}"])
        t += FUNDING_EVERY
    return rows


def main() -> None:
    months = {"2023-08": (1690848000000, 1693526400000), "2023-09": (1693526400000, 1696118400000)}
    for symbol in ("FILUSDT", "NEARUSDT"):
        for month, (lo, hi) in months.items():
            link_real_month(symbol, month)
            hourly = to_1h(real_1m(symbol, month))
            assert int(hourly[0][0]) == lo and int(hourly[-1][0]) == hi - HOUR
            funding = funding_rows(lo, hi)
            write_zip(UM / "monthly" / "fundingRate" / symbol / f"{symbol}-fundingRate-{month}.zip",
                      csv_text(funding, "calc_time,funding_interval_hours,last_funding_rate"))
            if symbol == "FILUSDT":
                write_zip(UM / "monthly" / "markPriceKlines" / symbol / "1h" / f"{symbol}-1h-{month}.zip",
                          csv_text(as_mark(hourly)))
            if symbol == "FILUSDT" and month == "2023-09":
                # No monthly 1h file for September: the downloader must fall back to daily files.
                for d in range(30):
                    day = hourly[d * 24 : (d + 1) * 24]
                    write_zip(UM / "daily" / "klines" / symbol / "1h" / f"{symbol}-1h-{month}-{d + 1:02d}.zip",
                              csv_text(day))
            else:
                write_zip(UM / "monthly" / "klines" / symbol / "1h" / f"{symbol}-1h-{month}.zip", csv_text(hourly))


if __name__ == "__main__":
    main()
