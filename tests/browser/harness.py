"""Set-up for the browser tests (fixtures in conftest.py): a real ``kinetic run`` on the local sandbox in a
child process, and Debian's chromium driven by playwright.

Nothing is mocked: the run is the command a user types (its API port ephemeral), the browser loads the
dashboard over loopback HTTP with the login link the run printed. Waits are on output lines, events and
DOM conditions; the bounds only turn a hang into a failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kinetic_empire.backtest import save_results
from tests.support.live import DATA, backtest_of

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BACKTEST_ID = "bt-dash"
HANG_S = 90.0  # a bound that turns a hang into a failure, never a wait for something to happen

# FILUSDT: an EMA cross that trades often, so the candles carry the strategy's fills. NEARUSDT: the
# operator's symbol; its strategy can never signal (RSI is never below 0 or above 100), so every NEAR
# order and position in the test is the manual one.
STRATEGIES: list[dict[str, Any]] = [
    {"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "1m", "params": {"fast": 3, "slow": 8}},
    {"name": "rsi_reversion", "symbols": ["NEARUSDT"], "timeframe": "1m",
     "params": {"period": 50, "oversold": 0, "overbought": 100, "exit_level": 100}},
]


def artifacts_dir() -> Path:
    path = Path(os.environ.get("KINETIC_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class LiveRun:
    """A ``kinetic run`` child process; its stdout is kept line by line (and never printed: it holds the token)."""

    proc: subprocess.Popen[str]
    run_id: str
    lines: list[str] = field(default_factory=list)
    _found: threading.Event = field(default_factory=threading.Event)
    login_url: str = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/login\?token=\S+)", line)
            if m and not self.login_url:
                self.login_url = m.group(1)
                self._found.set()
        self._found.set()  # the process ended: stop waiting

    @property
    def base(self) -> str:
        return self.login_url.split("/login", 1)[0]

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    @property
    def token(self) -> str:
        return self.login_url.split("token=", 1)[1]

    def output(self) -> str:
        """What the run printed, with the token masked (for failure messages)."""
        text = "\n".join(self.lines)
        return text.replace(self.token, "<token>") if self.login_url else text


@contextlib.contextmanager
def live_run(tmp_path: Path) -> Iterator[LiveRun]:
    """``kinetic run`` on the local sandbox (real klines at 300x), API on an ephemeral port, a saved backtest
    beside it for the runs page; stopped with Ctrl-C."""
    config = tmp_path / "live.yaml"
    config.write_text(yaml.safe_dump({
        "live": {"window": 60, "runs_dir": str(tmp_path / "runs"), "stream_check_timeout_s": 20},
        "sandbox": {"data": str(DATA), "start": "2023-08-01T05:00:00", "speed": 300},
        "strategies": STRATEGIES,
        "risk": {"default_leverage": 2, "sizing": {"method": "percent_equity", "percent": 20},
                 "guards": {"max_open_positions": 5}},
    }))
    # a saved backtest where the run looks for results (backtests/results under its working directory)
    save_results(backtest_of(120), tmp_path / "backtests" / "results", BACKTEST_ID)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1"}
    env.pop("KINETIC_API_TOKEN", None)
    cmd = [sys.executable, "-m", "kinetic_empire", "run", "--config", str(config), "--run-id", "dash",
           "--no-status", "--api-port", "0", "--shutdown", "flatten"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    run = LiveRun(proc, "dash")
    reader = threading.Thread(target=run._read, daemon=True)
    reader.start()
    try:
        run._found.wait(HANG_S)
        if not run.login_url:
            pytest.fail(f"kinetic run printed no dashboard link:\n{run.output()}")
        yield run
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(HANG_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(HANG_S)
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass
class Browser:
    page: Any
    errors: list[str]


@contextlib.contextmanager
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A fresh headless chromium (new profile); console errors and uncaught page errors are collected."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 1000})
        try:
            errors: list[str] = []  # of every page of the context (a report opened in a new tab too)

            def console(m: Any) -> None:
                if m.type != "error":
                    return
                if m.page is not None and "/reports/" in m.page.url and m.location.get("url", "").endswith(
                        "/favicon.ico"):
                    return  # a report is a static file from the report writer; its browser asks for an icon
                errors.append(f"console.{m.type}: {m.text} at {m.location.get('url', '')}")

            context.on("console", console)
            context.on("weberror", lambda e: errors.append(f"uncaught: {e.error}"))
            page = context.new_page()
            yield Browser(page, errors)
        finally:
            context.close()
