"""A download killed mid-way (SIGKILL or Ctrl-C) leaves a readable store, and re-running completes it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_download_helpers import ARCHIVE, AppServer, Background, archive_app

from kinetic_empire.cli import download as download_command
from kinetic_empire.data import KlineStore, read_kline_file

pytestmark = pytest.mark.integration  # a download subprocess against an archive server on loopback

REPO = Path(__file__).resolve().parents[1]
DERIVED_1H = REPO / "tests/data/FILUSDT-1h-2023-08_2023-09.DERIVED.csv.gz"
SCRIPT = (
    "import argparse, sys\n"
    "from kinetic_empire.cli import download as c\n"
    "p = argparse.ArgumentParser(); c.add_arguments(p); a = p.parse_args(sys.argv[1:])\n"
    "sys.exit(c.run(a))\n"
)


def argv(url: str, store: Path) -> list[str]:
    return ["--symbols", "FILUSDT", "--timeframes", "1h", "--start", "2023-08-01", "--end", "2023-09-30",
            "--source", "archive", "--archive-url", url, "--data-dir", str(store), "--no-funding",
            "--concurrency", "1", "--no-progress"]


def start(url: str, store: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *argv(url, store)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(log: list[str], n: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(log) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the download did not get going"
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
    delay = [0.05]

    async def throttle(request: object) -> None:
        await asyncio.sleep(delay[0])

    slow = AppServer(bg, archive_app(ARCHIVE, log=log, hook=throttle))
    store = tmp_path / "store"
    try:
        proc = start(slow.url, store)
        wait_for(log, 24, proc)  # the August month and several September days are through
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        if sig == signal.SIGINT:
            assert proc.returncode == 130
            assert b"store is consistent" in err and b"Traceback" not in err
        else:
            assert proc.returncode == -signal.SIGKILL

        # Readable as it stands: every partition whole, nothing half-written under a real name.
        partial = KlineStore(store).read("FILUSDT", "1h")
        assert 0 < len(partial) < 1464
        assert [e.rows for e in KlineStore(store).catalog()] == [len(partial)]
        assert all(p.suffix == ".parquet" for p in (store / "klines").rglob("*") if p.is_file() and p.name[0] != ".")

        log.clear()
        delay[0] = 0.0
        finish_in_process(store, slow.url)
        assert "/data/futures/um/monthly/klines/FILUSDT/1h/FILUSDT-1h-2023-08.zip" not in log  # not fetched again
    finally:
        slow.close()
        bg.close()
    full = KlineStore(store).read("FILUSDT", "1h")
    reference = read_kline_file(DERIVED_1H, "FILUSDT", "1h")
    np.testing.assert_array_equal(full.open_time, reference.open_time)
    np.testing.assert_array_equal(full.close, reference.close)
