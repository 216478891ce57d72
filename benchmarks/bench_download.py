"""Import (and download over loopback) a year of 1m klines for one symbol, then load it back.

The year is built from the bundled real FILUSDT August 2023 month, its rows re-timed into each month of
2021 (the first 28, 30 or 31 days of it), written as twelve data.binance.vision monthly ZIPs with
CHECKSUM files: 525,600 well-formed rows. Targets (issue 6): import >= 500,000 rows/s, load < 1 s.

    python benchmarks/bench_download.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kinetic_empire.data import KlineStore, sample_data_dir  # noqa: E402
from kinetic_empire.download import DownloadOptions, DownloadRequest, download, import_paths  # noqa: E402

SYMBOL = "FILUSDT"
YEAR = 2021
DAY_MS = 86_400_000
SOURCE = sample_data_dir() / "futures/um/monthly/klines/FILUSDT/1m/FILUSDT-1m-2023-08.zip"


def month_bounds(year: int, month: int) -> tuple[int, int]:
    import numpy as np

    lo = np.datetime64(f"{year:04d}-{month:02d}", "M")
    return (int(lo.astype("datetime64[ms]").astype(np.int64)), int((lo + 1).astype("datetime64[ms]").astype(np.int64)))


def build_year(folder: Path) -> int:
    """Twelve monthly ZIPs (+ CHECKSUM) under an archive-like tree in `folder`; returns the row count."""
    with zipfile.ZipFile(SOURCE) as zf:
        header, *lines = zf.read(zf.namelist()[0]).decode().splitlines()
    rows = [line.split(",") for line in lines]
    t0 = int(rows[0][0])
    out = folder / "data/futures/um/monthly/klines" / SYMBOL / "1m"
    out.mkdir(parents=True)
    total = 0
    for month in range(1, 13):
        lo, hi = month_bounds(YEAR, month)
        n = (hi - lo) // 60_000
        shift = lo - t0
        body = "\n".join(
            ",".join([str(int(r[0]) + shift), *r[1:6], str(int(r[6]) + shift), *r[7:]]) for r in rows[:n]
        )
        name = f"{SYMBOL}-1m-{YEAR}-{month:02d}"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{name}.csv", f"{header}\n{body}\n")
        (out / f"{name}.zip").write_bytes(buf.getvalue())
        digest = hashlib.sha256(buf.getvalue()).hexdigest()
        (out / f"{name}.zip.CHECKSUM").write_text(f"{digest}  {name}.zip\n")
        total += n
    return total


def serve(folder: Path) -> tuple[str, object]:
    """A static file server over `folder` on a background loop (the archive, over loopback)."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.StreamResponse:
        path = folder / request.path.lstrip("/")
        if not path.is_file():
            return web.Response(status=404)
        return web.Response(body=path.read_bytes(), content_type="application/zip")

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    port = asyncio.run_coroutine_threadsafe(start(), loop).result()
    return f"http://127.0.0.1:{port}", (loop, runner)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is reported")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-download-"))
    try:
        t = time.perf_counter()
        rows = build_year(work / "archive")
        print(f"built {rows:,} rows in 12 monthly ZIPs in {time.perf_counter() - t:.2f} s")

        best_import = best_load = best_download = float("inf")
        for i in range(args.repeat):
            store = work / f"store-{i}"
            summary = import_paths([work / "archive"], store, progress=False)
            assert summary.rows == rows, summary.rows
            best_import = min(best_import, summary.seconds)
            t = time.perf_counter()
            frame = KlineStore(store).read(SYMBOL, "1m")
            best_load = min(best_load, time.perf_counter() - t)
            assert len(frame) == rows and not frame.gaps

        url, _server = serve(work / "archive")
        lo, _ = month_bounds(YEAR, 1)
        _, hi = month_bounds(YEAR, 12)
        for i in range(args.repeat):
            store = work / f"dl-{i}"
            t = time.perf_counter()
            result = download(DownloadRequest((SYMBOL,), ("1m",), lo, hi, source="archive", funding=False),
                              DownloadOptions(root=store, archive_url=url, progress=False))
            best_download = min(best_download, time.perf_counter() - t)
            assert result.rows_added == rows

        print(f"import   {rows:,} rows in {best_import:.3f} s = {rows / best_import:,.0f} rows/s (target >= 500,000)")
        print(f"download {rows:,} rows in {best_download:.3f} s = {rows / best_download:,.0f} rows/s "
              "(archive over loopback, SHA-256 verified)")
        print(f"load     one symbol-year (KlineStore.read) in {best_load:.3f} s (target < 1 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
