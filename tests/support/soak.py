"""Fault-injection soak: the engine against a persistent sandbox, hard-killed and resumed, then audited.

Why a separate driver: crash safety can only be shown across real processes. The sandbox runs as its own
process (``--state``/``--keys``, so it outlives the engine), replays real klines fast with seeded faults;
``kinetic run`` is started as a subprocess, SIGKILLed at seeded moments and restarted with ``--resume``.
At the end the journal is compared with what the venue says (orders, fills, positions, balance, stops).
Used by ``tests/test_soak.py`` and ``benchmarks/bench_soak.py``; it lives with the tests, outside the
installed package, because it drives the repository (its data, ``python -m``) from the outside.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.signing import ENV_KEY, ENV_SECRET, Credentials
from kinetic_empire.live.journal import read_events

REPO = Path(__file__).resolve().parents[2]  # tests/support/soak.py -> the repository
DATA = REPO / "backtests" / "data"
SYMBOLS = ("FILUSDT", "NEARUSDT")
TRADE_START = "2023-08-03T00:00:00+00:00"  # two days of history in the bundled data before it
ALGO_ORDER_IDS = 8_000_000_001  # orders placed by a triggered conditional order are numbered from here

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
STOP_SYMBOLS = ("NEARUSDT",)  # rsi_reversion asks for a stop on every entry


def fault_settings(rate: float, seed: int) -> dict[str, Any]:
    """Every fault kind at a steady rate scaled by ``rate`` (1.0: a few of each per simulated hour)."""
    return {
        "enabled": True, "seed": seed,
        "error_executed_rate": 0.03 * rate, "error_rejected_rate": 0.03 * rate,
        "timeout_rate": 0.03 * rate, "timeout_seconds": 1.5, "timeout_executed_share": 0.5,
        "rate_limit_burst_rate": 0.01 * rate,
        "clock_skew_ms": 400,
        "ws_drop_rate": 0.0007 * rate, "ws_stall_rate": 0.0007 * rate, "ws_stall_seconds": 1.5,
        "listen_key_early_expiry_rate": 0.0006 * rate,
    }


@dataclass
class SoakReport:
    """What a soak did and what the audit found; ``problems`` empty means it passed."""

    seed: int
    klines: int
    kills: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    orders: int = 0
    algo_orders: int = 0
    fills: int = 0
    journal_fills: int = 0
    partial_fill_orders: int = 0
    reconcile_runs: int = 0
    reconcile_actions: dict[str, int] = field(default_factory=dict)
    recovery_s: list[float] = field(default_factory=list)
    positions: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @staticmethod
    def _pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        s = sorted(values)
        return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]

    @property
    def recovery_p50(self) -> float:
        return self._pct(self.recovery_s, 0.5)

    @property
    def recovery_p99(self) -> float:
        return self._pct(self.recovery_s, 0.99)

    def format(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        actions = ", ".join(f"{k} {v}" for k, v in sorted(self.reconcile_actions.items())) or "none"
        lines = [
            f"soak seed {self.seed}: {self.klines} 1m klines x {len(SYMBOLS)} symbols in {self.wall_s:.0f} s wall",
            f"  faults injected   {faults}",
            f"  kills survived    {self.kills}",
            f"  orders            {self.orders} (+{self.algo_orders} conditional), "
            f"{self.partial_fill_orders} filled in parts",
            f"  fills             venue {self.fills}, journal {self.journal_fills}",
            f"  reconciliations   {self.reconcile_runs} plans journaled (resumes, or with actions); actions: {actions}",
            f"  recovery (s)      p50 {self.recovery_p50:.2f}, p99 {self.recovery_p99:.2f}, "
            f"each {[round(x, 2) for x in self.recovery_s]}",
            f"  final positions   {self.positions}",
            "  audit             " + ("OK: no duplicate, no missing fill, journal = venue, stops in place"
                                      if not self.problems else "FAILED:\n    " + "\n    ".join(self.problems)),
        ]
        return "\n".join(lines)


class _Proc:
    """A child process whose stdout lines are kept (with arrival times) and copied to a log file."""

    def __init__(self, cmd: list[str], log: Path, env: dict[str, str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._log = log.open("a", encoding="utf-8")
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                                  env=env, start_new_session=True)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))
            self._log.write(line)
            self._log.flush()

    def wait_line(self, needle: str, timeout: float, since: int = 0) -> float | None:
        """Arrival time of the first line from index ``since`` containing ``needle``; None on timeout/exit."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, line in self.lines[since:]:
                if needle in line:
                    return t
            if self.p.poll() is not None and not self._t.is_alive():
                return None
            time.sleep(0.02)
        return None

    def stop(self, sig: int, timeout: float) -> int | None:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait(timeout=10)
        self._t.join(timeout=5)
        self._log.close()
        return rc


def _admin(rest: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(rest + "/sandbox-admin/" + path, data=data,
                                 method="GET" if body is None and path == "status" else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).astimezone(UTC).timestamp() * 1000)


def run_soak(seed: int, hours_of_1m: float, kills: int, workdir: Path, fault_rate: float = 1.0, *,
             speed: float = 600.0, partial_fill: dict[str, str] | None = None, verbose: bool = False) -> SoakReport:
    """Run one soak in ``workdir`` and audit it. Never raises on a failed check: see ``report.problems``."""
    t0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"soak:{seed}")
    klines = int(hours_of_1m * 60)
    start = _ms(TRADE_START)
    end = start + klines * 60_000
    warmup = 2 * 1440  # the bundled data start 2023-08-01: two days before TRADE_START
    report = SoakReport(seed=seed, klines=klines)
    say = print if verbose else (lambda *_: None)
    partial = partial_fill if partial_fill is not None else {"FILUSDT": "150", "NEARUSDT": "900"}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    sb_cmd = [sys.executable, "-m", "kinetic_empire.sandbox", "--data", str(DATA), "--symbols", *SYMBOLS,
              "--port", "0", "--json", "--admin", "--keys", str(workdir / "keys.json"),
              "--state", str(workdir / "sandbox-state.json"), "--speed", str(speed), "--warmup", str(warmup),
              "--end", str(end), "--fault-seed", str(seed)]
    for sym, qty in partial.items():
        sb_cmd += ["--partial-fill", f"{sym}={qty}"]
    sandbox = _Proc(sb_cmd, workdir / "sandbox.log", env)
    engine: _Proc | None = None
    try:
        if sandbox.wait_line('"rest"', 60) is None:
            raise RuntimeError(f"sandbox did not start; see {workdir / 'sandbox.log'}")
        info = json.loads(next(line for _, line in sandbox.lines if '"rest"' in line))
        rest, ws = info["rest"], info["ws"]
        _admin(rest, "faults", fault_settings(fault_rate, seed))
        run_id = f"soak-{seed}"
        cfg = workdir / "soak.yaml"
        cfg.write_text(yaml.safe_dump({
            "live": {"venue": "custom", "rest_url": rest, "ws_url": ws, "runs_dir": str(workdir / "runs"),
                     "window": 100, "shutdown": "leave", "margin_type": "CROSSED"},
            "strategies": STRATEGIES, "risk": RISK}))
        eng_env = {**env, ENV_KEY: info["api_key"], ENV_SECRET: info["api_secret"]}
        base = [sys.executable, "-c", "import sys; from kinetic_empire.cli import main; sys.exit(main())", "run",
                "--config", str(cfg), "--env-file", str(workdir / "none.env"), "--no-status",
                "--reconcile-every", "20"]
        # kill moments: seeded market times spread over the run, one per equal slice, away from its edges
        slices = [(start + (end - start) * i // (kills + 1), start + (end - start) * (i + 1) // (kills + 1))
                  for i in range(kills)]
        targets = [int(lo + (hi - lo) * rng.uniform(0.3, 0.9)) for lo, hi in slices]
        elog = workdir / "engine.log"
        engine = _Proc([*base, "--run-id", run_id], elog, eng_env)
        if engine.wait_line("trading;", 120) is None:
            raise RuntimeError(f"engine did not start trading; see {elog}")
        for target in targets:
            while _admin(rest, "status")["marketTime"] < target and engine.p.poll() is None:
                time.sleep(0.05)
            if engine.p.poll() is not None:
                report.problems.append(f"engine exited by itself (code {engine.p.returncode}); see {elog}")
                return report
            time.sleep(rng.uniform(0.0, 0.5))  # not on a market-time boundary
            engine.stop(signal.SIGKILL, 10)
            report.kills += 1
            say(f"kill {report.kills} at market {target}")
            time.sleep(rng.uniform(0.0, 1.0))  # the venue moves on while the engine is down
            engine = _Proc([*base, "--resume", run_id], elog, eng_env)
            began = time.monotonic()
            up = engine.wait_line("trading;", 120)
            if up is None:
                report.problems.append(f"resume {report.kills} did not reach trading; see {elog}")
                return report
            report.recovery_s.append(up - began)
        while not _admin(rest, "status")["done"]:
            if engine.p.poll() is not None:
                report.problems.append(f"engine exited by itself (code {engine.p.returncode}); see {elog}")
                return report
            time.sleep(0.2)
        status = _admin(rest, "faults", {"enabled": False})
        time.sleep(4.0)  # streams and timers settle without faults (stalls end, reconnect reconciliations run)
        rc = engine.stop(signal.SIGTERM, 120)
        engine = None
        if rc != 0:
            report.problems.append(f"clean stop exited {rc}; see {elog}")
        status = _admin(rest, "status")
        report.faults = dict(status.get("faultCounts", {}))
        report.faults["clock-skew-ms"] = int(status["faults"]["clock_skew_ms"]) or 0
        asyncio.run(_audit(report, rest, Credentials(info["api_key"], info["api_secret"], "soak"),
                           workdir / "runs" / run_id / "journal.sqlite"))
        report.faults["partial-fill"] = report.partial_fill_orders
        return report
    finally:
        if engine is not None:
            engine.stop(signal.SIGKILL, 10)
        sandbox.stop(signal.SIGTERM, 30)
        report.wall_s = time.monotonic() - t0


async def _paged(rest: BinanceRest, path: str, symbol: str, cursor: str, key: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {"symbol": symbol, "limit": 1000, cursor: 0}
    while True:
        page = await rest.signed("GET", path, params)
        page = page.get("orders", page) if isinstance(page, dict) else page
        new = [x for x in page if not out or x[key] > out[-1][key]]
        out += new
        if len(page) < 1000 or not new:
            return out
        params[cursor] = out[-1][key] + 1


async def _audit(report: SoakReport, rest_url: str, creds: Credentials, journal: Path) -> None:
    """Compare the journal with the venue: duplicates, missing fills, positions, balance, stops."""
    p = report.problems
    requests: dict[str, Any] = {}
    fills: Counter[tuple[int, int]] = Counter()
    positions: dict[str, Decimal] = {}
    wallet: Decimal | None = None
    actions: Counter[str] = Counter()
    for ev in read_events(journal, ("OrderRequest", "OrderFilled", "PositionChanged", "BalanceChanged", "Note")):
        kind = type(ev).__name__
        if kind == "OrderRequest":
            if ev.client_order_id in requests:
                p.append(f"journal: client id {ev.client_order_id} requested twice")
            requests[ev.client_order_id] = ev
        elif kind == "OrderFilled":
            fills[(ev.order_id, ev.trade_id)] += 1
        elif kind == "PositionChanged":
            positions[ev.symbol] = ev.quantity
        elif kind == "BalanceChanged" and ev.asset == "USDT":
            wallet = ev.wallet_balance
        elif kind == "Note" and ev.topic == "reconcile":
            report.reconcile_runs += 1
            actions.update(a["kind"] for a in ev.data.get("actions", []))
    report.reconcile_actions = dict(actions)
    report.journal_fills = sum(fills.values())
    p += [f"journal: fill {k} recorded {n} times" for k, n in fills.items() if n > 1]
    async with BinanceRest(rest_url, creds) as rest:
        for sym in SYMBOLS:
            orders = await _paged(rest, "/fapi/v1/allOrders", sym, "orderId", "orderId")
            algos = await _paged(rest, "/fapi/v1/allAlgoOrders", sym, "algoId", "algoId")
            trades = await _paged(rest, "/fapi/v1/userTrades", sym, "fromId", "id")
            own = [o for o in orders if o["orderId"] < ALGO_ORDER_IDS]
            report.orders += len(own)
            report.algo_orders += len(algos)
            report.fills += len(trades)
            for cid, n in Counter(o["clientOrderId"] for o in own).items():
                if n > 1:
                    p.append(f"{sym}: client id {cid} placed {n} times")
            for cid, n in Counter(a["clientAlgoId"] for a in algos).items():
                if n > 1:
                    p.append(f"{sym}: conditional client id {cid} placed {n} times")
            # by effect: one intent never gets two executed orders of one kind, nor two live stops
            # (a reversal is one intent with a reduce-only exit and an entry of the same side: two effects)
            executed: dict[tuple[str, str, str, bool], list[str]] = defaultdict(list)
            for o in own:
                req = requests.get(o["clientOrderId"])
                if req is None:
                    p.append(f"{sym}: venue order {o['clientOrderId']} is not in the journal")
                    continue
                if Decimal(o["executedQty"]) > 0:
                    key = (req.intent_id, req.order_type.value, req.side.value, req.reduce_only)
                    executed[key].append(o["clientOrderId"])
            live: dict[tuple[str, str], list[str]] = defaultdict(list)
            for a in algos:
                req = requests.get(a["clientAlgoId"])
                if req is None:
                    p.append(f"{sym}: venue conditional order {a['clientAlgoId']} is not in the journal")
                    continue
                if a["algoStatus"] == "NEW":
                    live[(req.intent_id, a["orderType"])].append(a["clientAlgoId"])
            p += [f"{sym}: intent {k[0]} executed {k[1]} {k[2]} twice: {v}" for k, v in executed.items() if len(v) > 1]
            p += [f"{sym}: intent {k[0]} has {len(v)} live {k[1]}: {v}" for k, v in live.items() if len(v) > 1]
            by_order = Counter(t["orderId"] for t in trades)
            report.partial_fill_orders += sum(1 for n in by_order.values() if n > 1)
            missing = [t for t in trades if (t["orderId"], t["id"]) not in fills]
            if missing:
                p.append(f"{sym}: {len(missing)} venue fills missing from the journal, e.g. {missing[0]}")
            risk = await rest.signed("GET", "/fapi/v2/positionRisk", {"symbol": sym})
            amt = sum((Decimal(r["positionAmt"]) for r in risk), Decimal(0))
            report.positions[sym] = str(amt.normalize())
            if positions.get(sym, Decimal(0)) != amt:
                p.append(f"{sym}: journal position {positions.get(sym, Decimal(0))} != venue {amt}")
            if amt != 0 and sym in STOP_SYMBOLS:
                stop_side = "SELL" if amt > 0 else "BUY"
                stops = [a for a in algos if a["algoStatus"] == "NEW" and a["orderType"] == "STOP_MARKET"
                         and a["side"] == stop_side]
                if not stops:
                    p.append(f"{sym}: position {amt} has no stop on the venue")
        acct = await rest.signed("GET", "/fapi/v2/account")
        venue_wallet = Decimal(next(a["walletBalance"] for a in acct["assets"] if a["asset"] == "USDT"))
        if wallet is None or wallet != venue_wallet:
            p.append(f"journal wallet {wallet} != venue {venue_wallet}")


__all__ = ["SoakReport", "fault_settings", "run_soak"]
