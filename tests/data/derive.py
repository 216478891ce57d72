"""Rebuild the small test files in this folder from the shared real data (see README.md).

Run from anywhere: ``python tests/data/derive.py [SHARED_DATA_DIR]``. Deterministic: the same input gives
byte-identical output.
"""

from __future__ import annotations

import gzip
import io
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/data")
FIL = SHARED / "klines/futures_um/monthly/1m/FILUSDT/FILUSDT-1m-2023-08.csv.gz"
H1 = SHARED / "klines/futures_um/derived_1h/FILUSDT-1h-2023-08_2023-11.DERIVED.csv.gz"
ADA = SHARED / "klines/spot/daily/1m/ADABTC"
STEM = "FILUSDT-1m-2023-08-01"
GOOD_ROWS = 300
BAD_ROWS = 120

HTML = b"""<!DOCTYPE html>
<html>
<head><title>404 Not Found</title></head>
<body>
<h1>404 Not Found</h1>
<p>The requested URL /data/futures/um/monthly/klines/FILUSDT/1m/FILUSDT-1m-2023-08.zip was not found.</p>
</body>
</html>
"""


def _write(path: Path, lines: list[list[str]], header: str | None) -> None:
    text = "".join(f"{x}\n" for x in ([header] if header else []) + [",".join(r) for r in lines])
    path.write_bytes(text.encode())


def main() -> None:
    text = gzip.decompress(FIL.read_bytes()).decode()
    header, *body = text.splitlines()
    rows = [line.split(",") for line in body]

    _write(HERE / f"{STEM}.csv", rows[:GOOD_ROWS], header)

    spot = HERE / "spot"
    spot.mkdir(exist_ok=True)
    for day in ("2021-11-27", "2021-11-28"):
        shutil.copyfile(ADA / f"ADABTC-1m-{day}.csv", spot / f"ADABTC-1m-{day}.csv")

    # µs timestamps, as in spot files since 2025: open_time*1000, close_time*1000+999.
    micros = HERE / "micros"
    micros.mkdir(exist_ok=True)
    ada = [line.split(",") for line in (ADA / "ADABTC-1m-2021-11-27.csv").read_text().splitlines()]
    for r in ada:
        r[0] = str(int(r[0]) * 1000)
        r[6] = str(int(r[6]) * 1000 + 999)
    _write(micros / "ADABTC-1m-2021-11-27.csv", ada, None)

    # The derived 1h file cut to the two months of 1m data bundled in backtests/data (Aug + Sep 2023).
    h1 = gzip.decompress(H1.read_bytes()).decode().splitlines(keepends=True)
    cut = "".join(h1[: 1 + (31 + 30) * 24]).encode()
    (HERE / "FILUSDT-1h-2023-08_2023-09.DERIVED.csv.gz").write_bytes(gzip.compress(cut, mtime=0))

    bad = HERE / "bad"
    bad.mkdir(exist_ok=True)
    base = [list(r) for r in rows[:BAD_ROWS]]

    def variant(rule: str, change: Callable[[list[list[str]]], list[list[str]] | None]) -> None:
        r = [list(x) for x in base]
        r = change(r) or r
        _write(bad / f"{STEM}.{rule}.csv", r, header)

    variant("duplicate", lambda r: [*r[:50], r[49], *r[50:-1]])  # data row 51 repeats row 50
    variant("order", lambda r: [*r[:59], r[60], r[59], *r[61:]])  # rows 60 and 61 swapped
    variant("nan", lambda r: r[69].__setitem__(2, ""))  # row 70: empty high
    variant("high_low", lambda r: r[79].__setitem__(slice(2, 4), [r[79][3], r[79][2]]))  # row 80: high<->low
    variant("gap", lambda r: r[:90] + r[95:])  # rows 91..95 missing, row 91 follows the hole
    variant("interval", lambda r: r[39].__setitem__(6, str(int(r[39][0]) + 299_999)))  # row 40: 5m close
    variant("misaligned", lambda r: [[str(int(x[0]) + 30_000), *x[1:6], str(int(x[6]) + 30_000), *x[7:]] for x in r])
    variant("garbage", lambda r: r[29].__setitem__(3, "abc"))  # row 30: low is text
    variant("columns", lambda r: r[24].__delitem__(11))  # row 25: 11 fields

    buf = io.BytesIO()
    good_bytes = (HERE / f"{STEM}.csv").read_bytes()
    info = zipfile.ZipInfo(f"{STEM}.csv", date_time=(1980, 1, 1, 0, 0, 0))
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(info, good_bytes, compress_type=zipfile.ZIP_DEFLATED)
    whole = buf.getvalue()
    (bad / f"{STEM}.truncated.zip").write_bytes(whole[: len(whole) // 2])
    (bad / f"{STEM}.html.csv").write_bytes(HTML)


if __name__ == "__main__":
    main()
