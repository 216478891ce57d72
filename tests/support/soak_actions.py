"""The soak's hands: the sandbox and engine processes, and what each scheduled event does to them.

Every event acts through a real interface: signals to processes, ``/sandbox-admin/*`` for the venue's
faults, the account's REST API for a stop cancelled while the engine is down, ``prlimit(RLIMIT_FSIZE)`` on
the engine process for a full disk (its writes past one byte fail with EFBIG, as on a full filesystem; the
limit is lifted afterwards). Nothing here knows the engine's insides.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from kinetic_empire.binance.signing import ENV_KEY, ENV_SECRET

from .soak_invariants import Invariants
from .soak_journal import JournalView
from .soak_proc import REPO, Proc
from .soak_report import SoakReport
from .soak_schedule import RESTARTS
from .soak_venue import VenueBusy, VenueClient, VenueView

DATA = REPO / "backtests" / "data"
SYMBOLS = ("FILUSDT", "NEARUSDT")
TRADE_START = "2023-08-03T00:00:00+00:00"  # two days of history in the bundled data before it
STOP_SYMBOLS = ("NEARUSDT",)  # rsi_reversion asks for a stop on every entry
REFUSED = "in use by"  # what the run lock's refusal says
JOURNAL_DOWN = "JOURNAL_UNAVAILABLE"

STRATEGIES: list[dict[str, Any]] = [
    {"name": "ema_cross", "symbols": ["FILUSDT"], "timeframe": "5m", "params": {"fast": 8, "slow": 21}},
    {"name": "rsi_reversion", "symbols": ["NEARUSDT"], "timeframe": "1m",
     "params": {"period": 14, "oversold": 30, "overbought": 70, "stop_pct": 1.0, "target_pct": 1.5}},
]
RISK: dict[str, Any] = {
    "default_leverage": 2,
    "sizing": {"method": "percent_equity", "percent": 20},
    "strategies": {"rsi_reversion": {"sizing": {"method": "risk_per_trade", "percent": 0.5}}},
    "guards": {"max_open_positions": 5, "daily_loss_limit_pct": 5},
}
# forced faults: the sandbox setting that makes the next request fail this way, and its fault counter
ARMS: dict[str, dict[str, Any]] = {
    "error-executed": {"error_executed_rate": 1.0},
    "error-rejected": {"error_rejected_rate": 1.0},
    "timeout-executed": {"timeout_rate": 1.0, "timeout_executed_share": 1.0},
    "timeout-rejected": {"timeout_rate": 1.0, "timeout_executed_share": 0.0},
    "burst-429": {"rate_limit_burst_rate": 1.0},
}
COUNTER = {"burst-429": "429-burst"}
WINDOWS = ("ws-stall", "slow-venue")  # fault windows: counted when they close


def fault_settings(rate: float, seed: int | None) -> dict[str, Any]:
    """Background faults at a steady rate scaled by ``rate`` (1.0: a few of each per simulated hour; 0: none,
    forced faults still fire). ``seed=None`` leaves the seed out, so restoring the settings does not reseed."""
    out: dict[str, Any] = {
        "enabled": True,
        "error_executed_rate": 0.03 * rate, "error_rejected_rate": 0.03 * rate,
        "timeout_rate": 0.03 * rate, "timeout_seconds": 1.5, "timeout_executed_share": 0.5,
        "rate_limit_burst_rate": 0.01 * rate, "latency_ms": [0, 0], "clock_skew_ms": 400 if rate else 0,
        "ws_drop_rate": 0.0007 * rate, "ws_stall_rate": 0.0007 * rate, "ws_stall_seconds": 1.5,
        "listen_key_early_expiry_rate": 0.0006 * rate,
    }
    if seed is not None:
        out["seed"] = seed
    return out


class Actions:
    """Starts, kills and restarts the processes and carries out each scheduled event."""

    def __init__(self, *, report: SoakReport, inv: Invariants, workdir: Path, env: dict[str, str],
                 sb_cmd: list[str], seed: int, start_ms: int, fault_rate: float, plant: str | None,
                 hold_start: bool, say: Callable[..., None]) -> None:
        self.report, self.inv, self.workdir, self.env, self.sb_cmd = report, inv, workdir, env, sb_cmd
        self.seed, self.start_ms, self.fault_rate = seed, start_ms, fault_rate
        self.plant, self.hold_start = plant, hold_start
        self.say = say
        self.stop_wait_klines = 120  # kill-cancel-stop: how long it waits for a protected position
        self.through_wait_klines = 60  # stop-through: how long it waits for a stop to be placed
        self.rng = random.Random(f"soak:{seed}")
        self.lock = threading.Lock()
        self.market_ms = 0
        self.end_ms = 0  # the data's end (set by the soak): no restart within an hour of it
        self.done = False
        self.sandbox: Proc | None = None
        self.engine: Proc | None = None
        self.client: VenueClient
        self.base: list[str] = []
        self.run_id = f"soak-{seed}"
        self.journal = workdir / "runs" / self.run_id / "journal.sqlite"
        self.elog = workdir / "engine.log"
        self.poller: Any = None  # the soak's Poller, for the latest venue view
        self._queue: list[str] = []  # forced order faults waiting for their turn
        self._windows: list[tuple[str, int, dict[str, Any], int]] = []  # (kind, until ms, changes, count before)

    # ------------------------------------------------------------------------------ processes
    def start_sandbox(self) -> None:
        self.sandbox = Proc(self.sb_cmd, self.workdir / "sandbox.log", self.env)
        since = len(self.sandbox.lines)
        if self.sandbox.wait_line('"rest"', 60, since) is None:
            raise RuntimeError(f"sandbox did not start; see {self.workdir / 'sandbox.log'}")
        info = json.loads(next(line for _, line in self.sandbox.lines[since:] if '"rest"' in line))
        if not self.base:  # first start: the engine's config and command
            self.client = VenueClient(info["rest"], info["api_key"], info["api_secret"])
            cfg = self.workdir / "soak.yaml"
            cfg.write_text(yaml.safe_dump({
                "live": {"venue": "custom", "rest_url": info["rest"], "ws_url": info["ws"],
                         "runs_dir": str(self.workdir / "runs"), "window": 100, "shutdown": "leave",
                         "margin_type": "CROSSED"},
                "strategies": STRATEGIES, "risk": RISK}))
            self.env = {**self.env, ENV_KEY: info["api_key"], ENV_SECRET: info["api_secret"]}
            main = (["-m", "tests.support.planted_run", "--plant", self.plant, "--"] if self.plant else
                    ["-c", "import sys; from kinetic_empire.cli import main; sys.exit(main())"])
            empty_env = self.workdir / "none.env"  # keys come from the environment, not from a .env file
            empty_env.write_text("")
            self.base = [sys.executable, *main, "run", "--config", str(cfg), "--env-file",
                         str(empty_env), "--no-status", "--reconcile-every", "20"]
        self.client.admin("faults", fault_settings(self.fault_rate, self.seed))

    def status(self) -> dict[str, Any]:
        st = self.client.admin("status")
        self.market_ms = int(st["marketTime"])
        self.done = bool(st["done"])
        return st

    def start_engine(self, *, resume: bool) -> None:
        cmd = [*self.base, "--resume" if resume else "--run-id", self.run_id]
        began = time.monotonic()
        hold = self.hold_start or not resume  # a first start always holds: no trading history to miss yet
        if hold:  # market time trickles while an engine starts (see _trickle)
            self.client.admin("pause")
            while self.status()["connections"] and time.monotonic() - began < 60:
                time.sleep(0.02)  # a killed engine's sockets: closed by the kernel, seen by the sandbox soon after
        elif self.status()["paused"]:  # held through a clean stop (_disk_full): the engine starts at speed
            self.client.admin("resume")
        if self.done:  # an engine started on a finished replay waits for market data that never comes
            raise RuntimeError(f"the replay reached the end of its data while the engine was down (market time "
                               f"{self.market_ms}); an engine {'resume' if resume else 'start'} needs data flowing")
        self.engine = engine = Proc(cmd, self.elog, self.env)
        up = self._trickle(engine) if hold else engine.wait_line("trading;", 180)
        if up is None:
            raise RuntimeError(f"engine {'resume' if resume else 'start'} did not reach trading; see {self.elog}")
        with self.lock:
            self.inv.engine_up(up)
        if resume:
            self.report.restarts += 1
            self.report.recovery_s.append(up - began)

    def _trickle(self, engine: Proc) -> float | None:
        """Hold the replay while ``engine`` starts, playing one price update a second once it has a stream
        open (its preflight waits for a kline message), and let it run at speed once the engine trades. So a
        start costs about the same market time however busy the machine is (15 s of market per second of
        start-up instead of ``speed`` seconds), and the schedule stays on its klines."""
        stepped = 0.0
        deadline = time.monotonic() + 180
        try:
            while time.monotonic() < deadline:
                up = engine.wait_line("trading;", 0.05)
                if up is not None:
                    return up
                if not engine.alive:
                    return None
                now = time.monotonic()
                if now - stepped >= 1.0 and self._service()["connections"]:
                    self.client.admin("step?updates=1")
                    stepped = now
            return None
        finally:
            self.client.admin("resume")

    def stop_engine(self, sig: int = signal.SIGKILL) -> int | None:
        assert self.engine is not None
        with self.lock:
            self.inv.engine_down(time.monotonic())
        rc = self.engine.stop(sig, 120)
        if sig == signal.SIGKILL:
            self.report.kills += 1
        return rc

    def _check_engine(self) -> None:
        """An engine that exited by itself is a violation; the soak resumes it and goes on."""
        if self.engine is not None and not self.engine.alive:
            tail = " | ".join(line for _, line in self.engine.lines[-3:])
            with self.lock:
                self.inv.engine_down(time.monotonic())
                self.inv.record("engine-exit", f"engine exited by itself (code {self.engine.p.returncode}): {tail}",
                                time.monotonic(), self.market_ms)
            self.engine.stop(signal.SIGKILL, 5)
            self.start_engine(resume=True)

    def wait_market(self, target_ms: int) -> bool:
        """Until the venue's market time reaches ``target_ms``; False if the replay ended first. Meanwhile
        armed faults are watched and fault windows closed when due. The sandbox pauses itself at the target
        (a breakpoint), so a driver slowed down by load still acts at the event's kline; the replay goes on
        at once, as before."""
        st = self._service()
        if st["marketTime"] < target_ms:
            self.client.admin(f"pause?at={target_ms}")
            while (st := self._service())["marketTime"] < target_ms:
                if self.done:
                    return False
                self._check_engine()
                time.sleep(0.05)
            if st.get("paused") and st.get("pauseAt") is None:
                self.client.admin("resume")
        return True

    def wait_klines(self, n: int) -> None:
        self.wait_market(self.market_ms + n * 60_000)

    # ------------------------------------------------------------------------------ events
    def do(self, kind: str, end_ms: int) -> None:
        """Carry out one event; one that restarts a process is skipped within an hour of the data's end (a
        restarting engine's preflight needs market data still flowing). Forced faults and fault windows do
        not block: they are armed here and counted when the sandbox has injected them (or skipped if nothing
        met them within 40 klines)."""
        self._check_engine()
        self.end_ms = end_ms
        if kind in RESTARTS and self.market_ms > end_ms - 60 * 60_000:
            self._count(kind, False)
            return
        if kind in RESTARTS:  # fault windows end before a restart: a start-up at 2 s a request proves nothing new
            self._service(close_windows=True)
        if kind in ARMS:
            self._queue.append(kind)
            self._service()
            return
        try:
            acted = getattr(self, "_" + kind.replace("-", "_"))()
        except VenueBusy as exc:  # the soak's own request met an injected fault: the event did not happen
            self.say(f"  {kind} not carried out: {exc}")
            acted = False
        if kind not in WINDOWS:
            self._count(kind, acted is not False)

    def _count(self, kind: str, acted: bool) -> None:
        bucket = self.report.forced if acted else self.report.skipped
        bucket[kind] = bucket.get(kind, 0) + 1

    def _base(self, keys: dict[str, Any]) -> dict[str, Any]:
        """The background value of each setting in ``keys`` (what a fault window or an arm restores)."""
        base = fault_settings(self.fault_rate, None)
        return {k: base[k] for k in keys}

    def _service(self, close_windows: bool = False) -> dict[str, Any]:
        """One status read; close what is due: an arm once its fault was injected (or 40 klines passed), a
        window at its end; then arm the next queued order fault (one at a time: their rates would mix)."""
        st = self.status()
        counts = st.get("faultCounts", {})
        for w in list(self._windows):
            kind, until, changes, before = w
            hit = kind in ARMS and int(counts.get(COUNTER.get(kind, kind), 0)) > before
            if hit or self.market_ms >= until or self.done or (close_windows and kind in WINDOWS):
                self._windows.remove(w)
                self.client.admin("faults", self._base(changes))
                if kind == "ws-stall":
                    self.client.admin("drop-streams")  # reconnect without the stalls
                self._count(kind, hit or kind not in ARMS)
        if self._queue and not any(w[0] in ARMS for w in self._windows):
            kind = self._queue.pop(0)
            changes = {"error_executed_rate": 0.0, "error_rejected_rate": 0.0, "timeout_rate": 0.0, **ARMS[kind]}
            before = int(counts.get(COUNTER.get(kind, kind), 0))
            self.client.admin("faults", changes)
            self._windows.append((kind, self.market_ms + 40 * 60_000, changes, before))
        return st

    def _window(self, kind: str, klines: int, changes: dict[str, Any]) -> None:
        self.client.admin("faults", changes)
        self._windows.append((kind, self.market_ms + klines * 60_000, changes, 0))

    def _ws_drop(self) -> None:
        self.client.admin("drop-streams")

    def _listen_key_expiry(self) -> None:
        self.client.admin("expire-listen-keys")

    def _ws_stall(self) -> None:
        """New connections stall often for 20 klines (rates apply to connections opened after the change)."""
        self._window("ws-stall", 20, {"ws_stall_rate": 0.2, "ws_stall_seconds": 2.0})
        self.client.admin("drop-streams")

    def _slow_venue(self) -> None:
        """Every request delayed 1.5-2.5 s for 15 klines."""
        self._window("slow-venue", 15, {"latency_ms": [1500, 2500]})

    def _stop_through(self) -> bool:
        """Hold the next conditional-order placement at the venue (``/sandbox-admin/hold``, a slow network on
        purpose), run the replay until the price is through its trigger, then let it go: the venue refuses it
        with -2021 and the engine must protect the position another way (close it) within the bound. Skipped
        when the sandbox has no ``hold`` (it came with the protection work, branch s3-protect) or no stop was
        placed within 60 klines."""
        try:
            self.client.admin("hold?method=POST&path=/fapi/v1/algoOrder&count=1")
        except RuntimeError:
            return False
        deadline = min(self.market_ms + self.through_wait_klines * 60_000, self.end_ms - 60 * 60_000)
        while not int(self._service().get("held", 0)):
            if self.done or self.market_ms > deadline:
                self.client.admin("release")
                return False
            self._check_engine()
            time.sleep(0.02)
        self.client.admin("pause")
        crossed = False
        try:
            journal = JournalView.read(self.journal)
            waiting = [r for cid, r in (journal.requests.items() if journal else [])
                       if r.order_type.value in ("STOP_MARKET", "TAKE_PROFIT_MARKET") and r.trigger_price is not None
                       and cid not in journal.accepted and cid not in journal.terminal]  # type: ignore[union-attr]
            if waiting:
                r = waiting[-1]
                below = (r.order_type.value == "STOP_MARKET") == (r.side.value == "SELL")  # fires at or below
                for _ in range(4 * min(100, self.through_wait_klines)):  # played at once; 100 klines at most
                    try:
                        price = Decimal(self.client.public("/fapi/v1/ticker/price", {"symbol": r.symbol})["price"])
                    except VenueBusy:  # a 429 of the background faults: step on and look again
                        self.client.admin("step?updates=1")
                        continue
                    if (price <= r.trigger_price) if below else (price >= r.trigger_price):
                        crossed = True
                        break
                    self.client.admin("step?updates=1")
        finally:
            self.client.admin("release")
            self.client.admin("resume")
        self.say(f"  held a protective order; price {'ran through' if crossed else 'did not reach'} its trigger")
        return crossed

    def _kill(self) -> None:
        time.sleep(self.rng.uniform(0.0, 0.5))  # not on a market-time boundary
        self.stop_engine()
        time.sleep(self.rng.uniform(0.0, 1.0))  # the venue moves on while the engine is down
        self.start_engine(resume=True)

    def _kill_cancel_stop(self) -> bool:
        """Kill while a position holds its stop, cancel the stop (and take-profit) on the venue, resume: the
        engine must put them back within the bound."""
        deadline = min(self.market_ms + self.stop_wait_klines * 60_000, self.end_ms - 60 * 60_000)
        stop: dict[str, Any] | None = None
        while stop is None:
            if self.done or self.market_ms > deadline:
                return False  # no protected position came along in time
            view: VenueView | None = self.poller.last_venue if self.poller is not None else None
            for sym in STOP_SYMBOLS:
                qty = view.positions.get(sym, 0) if view is not None else 0
                if view is not None and qty:
                    stops = view.stops(sym, "SELL" if qty > 0 else "BUY")
                    stop = stops[0] if stops else None
            self._check_engine()
            time.sleep(0.05)
            self.status()
        self.stop_engine()
        for algo in [stop, *self._take_profits(stop)]:
            for _ in range(20):
                try:
                    self.client.signed("DELETE", "/fapi/v1/algoOrder",
                                       {"symbol": algo["symbol"], "algoId": algo["algoId"]})
                    break
                except VenueBusy:
                    time.sleep(0.2)
                except RuntimeError:
                    break  # already final (it triggered, or an executed 503 cancelled it)
        self.say(f"  cancelled stop {stop['clientAlgoId']} (and its take-profit) while the engine was down")
        time.sleep(self.rng.uniform(0.0, 0.5))
        self.start_engine(resume=True)
        return True

    def _take_profits(self, stop: dict[str, Any]) -> list[dict[str, Any]]:
        """The live take-profits beside ``stop`` (cancelled with it, so the position stays open unprotected)."""
        view = self.poller.last_venue if self.poller is not None else None
        return [a for a in (view.algos if view is not None else []) if a["symbol"] == stop["symbol"]
                and a["algoStatus"] == "NEW" and a["orderType"] == "TAKE_PROFIT_MARKET" and a["side"] == stop["side"]]

    def _second_engine(self) -> None:
        """A second engine on the running run must be refused at once by the run lock."""
        second = Proc([*self.base, "--resume", self.run_id], self.workdir / "second-engine.log", self.env)
        try:
            rc: int | None = second.p.wait(timeout=90)
        except subprocess.TimeoutExpired:
            rc = None
        second.stop(signal.SIGKILL, 10)
        if rc is None or rc == 0 or REFUSED not in second.text():
            with self.lock:
                self.inv.record("second-engine", f"a second engine on run {self.run_id} was not refused "
                                f"(exit {rc}): {second.text()[-300:]}", time.monotonic(), self.market_ms)

    def _disk_full(self) -> None:
        """The journal's disk is full for 10 klines; then space is back and the engine is restarted cleanly."""
        assert self.engine is not None
        pid = self.engine.p.pid
        _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        since = len(self.engine.lines)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
        try:
            self.wait_klines(10)
        finally:
            if self.engine.alive:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
        self.report.journal_refusals += sum(JOURNAL_DOWN in line for _, line in self.engine.lines[since:])
        self._check_engine()
        # The replay waits while the engine stops: a clean stop can take long (an order of unknown outcome is
        # looked up until the port's drain times out, 30 s), and at 300x the data could run out meanwhile.
        self.client.admin("pause")
        rc = self.stop_engine(signal.SIGTERM)
        if rc != 0:
            with self.lock:
                self.inv.record("engine-exit", f"clean stop after a full disk exited {rc}", time.monotonic(),
                                self.market_ms)
        self.start_engine(resume=True)

    def _sandbox_kill(self) -> None:
        assert self.sandbox is not None
        self.sandbox.stop(signal.SIGKILL, 10)
        time.sleep(self.rng.uniform(0.0, 1.0))
        self.start_sandbox()

    # ------------------------------------------------------------------------------ the end
    def finish(self) -> None:
        """Faults off, a quiet spell, a clean stop, then the final check with every bound at zero."""
        self._service()
        for kind, _until, _changes, _before in self._windows:
            self._count(kind, kind not in ARMS)  # a window ran its course; an arm nothing met was skipped
        for kind in self._queue:
            self._count(kind, False)
        self._windows, self._queue = [], []
        self.client.admin("faults", {"enabled": False})
        time.sleep(4.0)  # streams and timers settle (stalls end, reconnect reconciliations run)
        rc = self.stop_engine(signal.SIGTERM)
        if rc != 0:
            self.report.problems.append(f"clean stop exited {rc}; see {self.elog}")
        status = self.status()
        self.report.faults = dict(status.get("faultCounts", {}))
        for _ in range(10):
            try:
                self.poller.poll_once(final=True)
                break
            except VenueBusy:
                time.sleep(0.5)
        else:
            self.report.problems.append("final check: the venue did not answer")
        self._figures()

    def _figures(self) -> None:
        view = self.poller.last_venue if self.poller is not None else None
        journal = JournalView.read(self.journal)
        if view is None or journal is None:
            return
        r = self.report
        r.orders, r.algo_orders, r.fills = len(view.orders), len(view.algos), len(view.trades)
        r.journal_fills = sum(journal.fills.values())
        per_order: dict[int, int] = {}
        for t in view.trades:
            per_order[t["orderId"]] = per_order.get(t["orderId"], 0) + 1
        r.partial_fill_orders = sum(1 for n in per_order.values() if n > 1)
        r.positions = {s: str(q.normalize()) for s, q in view.positions.items()}
        r.stop_rejections = sum(1 for _cid, code, _why in journal.rejections if code == -2021)
        r.reconcile_runs = len(journal.reconciles)
        actions: dict[str, int] = {}
        for _seq, plan in journal.reconciles:
            for a in plan.get("actions", []):
                actions[a["kind"]] = actions.get(a["kind"], 0) + 1
        r.reconcile_actions = actions

    def close(self) -> None:
        if self.engine is not None and self.engine.alive:
            self.engine.stop(signal.SIGKILL, 10)
        if self.sandbox is not None:
            self.sandbox.stop(signal.SIGTERM, 30)


__all__ = ["DATA", "REPO", "RISK", "STOP_SYMBOLS", "STRATEGIES", "SYMBOLS", "TRADE_START", "Actions", "Proc",
           "fault_settings"]
