"""A download killed mid-way (SIGKILL or Ctrl-C) leaves a readable store, and re-running completes it.

No step waits for a length of time. The loopback archive holds one request (September 11th) unanswered,
so the download is stopped at a known point whatever the machine's load: August and September 1st-10th
committed, nothing in flight. The test kills it only once it is there, then re-runs it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from kinetic_empire.cli import download as download_command
from kinetic_empire.data import KlineStore, read_kline_file
from kinetic_empire.download.series import Kind, SeriesKey
from kinetic_empire.download.stores import Coverage
from tests.support.download import ARCHIVE, AppServer, Background, archive_app, ms

REPO = Path(__file__).resolve().parents[2]
DERIVED_1H = REPO / "tests/data/FILUSDT-1h-2023-08_2023-09.DERIVED.csv.gz"
SCRIPT = (
    "import argparse, sys\n"
    "from kinetic_empire.cli import download as c\n"
    "p = argparse.ArgumentParser(); c.add_arguments(p); a = p.parse_args(sys.argv[1:])\n"
    "sys.exit(c.run(a))\n"
)
KEY = SeriesKey(Kind.KLINES, "FILUSDT", "1h")
DAILY = "/data/futures/um/daily/klines/FILUSDT/1h/FILUSDT-1h-2023-09-{:02d}.zip"
HELD_DAY = 11
"""The download is stopped at this September day: the days before it are fetched one after another."""
HANG = 120.0
"""Seconds after which a step that has not happened is taken to never happen (a hang, not slowness)."""

pytestmark = pytest.mark.integration  # a download subprocess against an archive server on loopback


def argv(url: str, store: Path) -> list[str]:
    return ["--symbols", "FILUSDT", "--timeframes", "1h", "--start", "2023-08-01", "--end", "2023-09-30",
            "--source", "archive", "--archive-url", url, "--data-dir", str(store), "--no-funding",
            "--concurrency", "1", "--no-progress"]


def start(url: str, store: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *argv(url, store)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class Hold:
    """A server hook that leaves the first request for `path` unanswered until :meth:`release`."""

    def __init__(self, bg: Background, path: str) -> None:
        self.bg = bg
        self.path = path
        self.reached = threading.Event()
        self._release = asyncio.Event()

    async def __call__(self, request: web.Request) -> None:
        if request.path == self.path and not self.reached.is_set():
            self.reached.set()
            await self._release.wait()

    def release(self) -> None:
        self.bg.loop.call_soon_threadsafe(self._release.set)


def wait_until(what: str, done: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    """Return once `done()`; fail if the download exits first, or if it never happens (HANG)."""
    deadline = time.monotonic() + HANG
    while not done():
        if proc.poll() is not None:
            pytest.fail(f"the download exited before it {what}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"the download never {what}"
        time.sleep(0.02)


def finish_in_process(store: Path, url: str) -> None:
    import argparse

    p = argparse.ArgumentParser()
    download_command.add_arguments(p)
    args = p.parse_args(argv(url, store))
    assert download_command.run(args) == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_download_leaves_a_readable_store_and_a_rerun_completes(tmp_path: Path, sig: signal.Signals) -> None:
    bg = Background()
    log: list[str] = []
    hold = Hold(bg, DAILY.format(HELD_DAY))
    server = AppServer(bg, archive_app(ARCHIVE, log=log, hook=hold))
    store = tmp_path / "store"
    committed = [(ms("2023-08-01"), ms(f"2023-09-{HELD_DAY:02d}"))]
    try:
        proc = start(server.url, store)
        try:
            # September's days are fetched and committed in order, so the held request means days 1-10
            # are in; August is committed by a task of its own, so wait for its coverage record too.
            wait_until(f"asked for September {HELD_DAY}th", hold.reached.is_set, proc)
            wait_until("committed August and the days before the held one",
                       lambda: Coverage.load(store, KEY).covered == committed, proc)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=HANG)
        finally:
            if proc.poll() is None:
                proc.kill()
            hold.release()
        if sig == signal.SIGINT:
            assert proc.returncode == 130
            assert b"store is consistent" in err and b"Traceback" not in err
        else:
            assert proc.returncode == -signal.SIGKILL

        # Readable as it stands: every partition whole, nothing half-written under a real name.
        partial = KlineStore(store).read("FILUSDT", "1h")
        assert len(partial) == 31 * 24 + (HELD_DAY - 1) * 24
        assert [e.rows for e in KlineStore(store).catalog()] == [len(partial)]
        assert all(p.suffix == ".parquet" for p in (store / "klines").rglob("*") if p.is_file() and p.name[0] != ".")

        log.clear()
        finish_in_process(store, server.url)
        # Only what was missing is fetched: neither August nor the committed September days again.
        days = [DAILY.format(d) for d in range(HELD_DAY, 31)]
        assert sorted(log) == sorted(days + [f"{d}.CHECKSUM" for d in days])
    finally:
        server.close()
        bg.close()
    full = KlineStore(store).read("FILUSDT", "1h")
    reference = read_kline_file(DERIVED_1H, "FILUSDT", "1h")
    np.testing.assert_array_equal(full.open_time, reference.open_time)
    np.testing.assert_array_equal(full.close, reference.close)
