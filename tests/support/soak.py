"""Fault-injection soak: the engine against a persistent sandbox, with a seeded schedule of forced faults,
hard kills and resumes, judged continuously while it runs and once more at the end.

Why a separate driver: crash safety can only be shown across real processes. The sandbox runs as its own
process (``--state``/``--keys``, so it outlives the engine) and replays real klines fast; ``kinetic run``
is a subprocess. A seeded schedule (:mod:`.soak_schedule`) forces every recovery path by market time; a
poller thread (:mod:`.soak_invariants`) compares the journal (read-only) with the venue (REST) about once a
second; a final check runs after a clean stop. ``python -m tests.support.planted_run`` can stand in for the
engine with a bug planted, to show that the soak fails and names it. Used by ``tests/integration/test_soak*``
and ``benchmarks/bench_soak.py``; it lives with the tests because it drives the repository from the outside.
"""

from __future__ import annotations

import copy
import os
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .soak_actions import DATA, STOP_SYMBOLS, SYMBOLS, TRADE_START, Actions, fault_settings
from .soak_invariants import Invariants
from .soak_journal import JournalView
from .soak_report import SoakReport
from .soak_schedule import KINDS, build_schedule, format_schedule
from .soak_venue import VenueBusy, VenueClient, VenueView

DEFAULT_KINDS = tuple(k for k in KINDS if k != "sandbox-kill")  # a SIGKILLed sandbox loses state until it is durable
POLL_SOURCES = tuple(f"127.0.0.{i}" for i in range(2, 10))  # the poller's own request-weight budgets


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).astimezone(UTC).timestamp() * 1000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Poller:
    """Checks the invariants every ``every_s`` in a thread: journal, then venue, then journal again."""

    def __init__(self, inv: Invariants, client: VenueClient, journal: Path, market: Any, every_s: float,
                 lock: threading.Lock) -> None:
        self.inv, self.journal, self.market = inv, journal, market
        self.client = copy.copy(client)  # its own source address, changed per poll
        self.every_s = every_s
        self.lock = lock
        self.polls = self.skipped = 0
        self.last_venue: VenueView | None = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True, name="soak-poller")

    def start(self) -> None:
        self._t.start()

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=30)

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.every_s):
            n += 1
            self.client.source = POLL_SOURCES[n % len(POLL_SOURCES)]
            try:
                self.poll_once()
            except VenueBusy:
                self.skipped += 1

    def poll_once(self, final: bool = False) -> None:
        before = JournalView.read(self.journal)
        if before is None:
            return
        venue = VenueView.take(self.client, SYMBOLS)
        after = JournalView.read(self.journal)
        if after is None:
            return
        self.last_venue = venue
        with self.lock:
            self.inv.check(before, venue, after, time.monotonic(), self.market(), final=final)
        self.polls += 1


def run_soak(seed: int, hours_of_1m: float, workdir: Path, *, fault_rate: float = 1.0, per_day: float = 4.0,
             kinds: tuple[str, ...] = DEFAULT_KINDS, speed: float = 600.0, partial_fill: dict[str, str] | None = None,
             stop_bound_s: float = 30.0, grace_s: float = 40.0, poll_s: float = 1.0, plant: str | None = None,
             hold_start: bool = True, verbose: bool = False, event_wait_klines: int | None = None) -> SoakReport:
    """Run one soak in ``workdir`` and judge it. Never raises on a failed check: see the report.
    ``event_wait_klines``: how long the events that wait for a position (kill-cancel-stop, stop-through) wait
    at most (default 120 and 60): the schedule runs late meanwhile, so a short soak keeps it short."""
    t0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    klines = int(hours_of_1m * 60)
    start = _ms(TRADE_START)
    end = start + klines * 60_000
    schedule = build_schedule(seed, klines, per_day, kinds)
    report = SoakReport(seed=seed, klines=klines, schedule=format_schedule(schedule))
    say = print if verbose else (lambda *_: None)
    say(f"schedule: {report.schedule}")
    partial = partial_fill if partial_fill is not None else {"FILUSDT": "150", "NEARUSDT": "900"}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    port = _free_port()
    sb_cmd = [sys.executable, "-m", "kinetic_empire.sandbox", "--data", str(DATA), "--symbols", *SYMBOLS,
              "--port", str(port), "--json", "--admin", "--keys", str(workdir / "keys.json"),
              "--state", str(workdir / "sandbox-state.json"), "--speed", str(speed), "--warmup", str(2 * 1440),
              "--end", str(end), "--fault-seed", str(seed)]
    for sym, qty in partial.items():
        sb_cmd += ["--partial-fill", f"{sym}={qty}"]
    inv = Invariants(STOP_SYMBOLS, t0, stop_bound_s=stop_bound_s, grace_s=grace_s)
    acts = Actions(report=report, inv=inv, workdir=workdir, env=env, sb_cmd=sb_cmd, seed=seed, start_ms=start,
                   fault_rate=fault_rate, plant=plant, hold_start=hold_start, say=say)
    if event_wait_klines is not None:
        acts.stop_wait_klines = acts.through_wait_klines = event_wait_klines
    poller: Poller | None = None
    try:
        acts.start_sandbox()
        acts.start_engine(resume=False)
        poller = Poller(inv, acts.client, acts.journal, lambda: acts.market_ms, poll_s, acts.lock)
        acts.poller = poller
        poller.start()
        for ev in schedule:
            if not acts.wait_market(start + ev.kline * 60_000):
                break
            if acts.market_ms > start + (ev.kline + 10) * 60_000:
                report.late += 1
            say(f"event {ev.seq} at kline {ev.kline} (market kline {(acts.market_ms - start) // 60_000}): {ev.kind}")
            acts.do(ev.kind, end)
        acts.wait_market(end + 60_000)
        poller.stop()
        acts.finish()
        report.polls, report.polls_skipped = poller.polls, poller.skipped
    except RuntimeError as exc:
        report.problems.append(str(exc))
    finally:
        if poller is not None:
            poller.stop()
            report.polls, report.polls_skipped = poller.polls, poller.skipped
        acts.close()
        report.violations = list(inv.violations)
        report.wall_s = time.monotonic() - t0
    return report


__all__ = ["DEFAULT_KINDS", "Poller", "SoakReport", "fault_settings", "run_soak"]
