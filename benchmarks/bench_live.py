"""Live tick-to-order latency: a closing kline message arriving on the socket -> the order request leaving.

    python benchmarks/bench_live.py [--klines 400] [--window 300] [--gateway] [--in-process] [--repeat N]
    python benchmarks/bench_live.py --gap-ms 100 --klines 200 [--close-poll]
    python benchmarks/bench_live.py --cold-probe
    python benchmarks/bench_live.py --strategy-cost [--klines 3000] [--window 500]
    python benchmarks/bench_live.py --client 500

``--strategy-cost`` times only the strategy runner's share of a live kline for the three example
strategies on the bundled real klines (FILUSDT 1m): the way live worked before incremental indicators
(append to a rolling window, recompute every indicator over it, infer the warm-up, call ``on_kline``)
and the way it works now (``live_indicators``: O(1) updates, ``init`` once), in one sitting.

The live engine (the production composition root) trades the local sandbox over loopback. A strategy that
acts on every closed kline (flat -> buy, long -> sell, which the risk manager turns into a reduce-only
close plus a short entry) runs on two symbols with its indicators recomputed over a rolling window, and
the risk manager sizes and checks every intent. For each kline that produced orders, the latency is

    t0: the kline's ``x=true`` message returned by the WebSocket client (frames parsed)
    t1: the first order's HTTP request written to the socket (the lean HTTP client's ``on_write`` hook; an aiohttp
        trace hook on the request headers when the order goes through aiohttp)

so it covers JSON decoding, gap checks, the bus, the strategy runner (window append, indicator
recompute, user code), the risk manager, the journal's committed write of the intent and request, the
execution port, signing and the HTTP client; the wire part is split into stages (journal gate, commit, REST
client), stamped by wrapping the engine's objects from outside. The sandbox runs in its own process (``python -m
kinetic_empire.sandbox --speed step --admin``), as a venue would, and is stepped one kline at a time
in two parts (the opening update, where the previous kline's orders fill, then the rest and the close)
with the engine settling after each; ``--in-process`` shares the engine's event loop with it
instead (slower: the exchange's work then sits on the engine's loop); ``--gateway`` attaches the operator
gateway's bus readers and request metrics as ``kinetic run`` does. Prints p50/p99/p99.9/max in ms, and the
engine thread's CPU time over the same window: on a loaded machine the wall-clock tail is mostly time spent
waiting for a core (compare the slowest samples' wall and CPU times, or run under ``chrt -f 10``, which takes
the scheduler's queue out of the figure).

``--repeat N`` runs N sittings one after the other (a fresh sandbox and engine each) and prints each one's p99 and
their median: one sitting's p99 is the 8th-slowest of 800 samples, and on a shared machine a few stalls decide it.

``--gap-ms MS`` idles that long before each closing step (by default the engine idles about 10 ms between klines;
live, it idles most of a minute, and comes back to a colder machine).

``--close-poll`` keeps the engine's loop polling (no sleeping) from the gap's start to 20 ms past its end, through
the closing step, as ``live.close_poll`` does from 150 ms before each minute boundary to 750 ms after it (the stepped
sandbox closes klines off the wall clock's boundaries, so the benchmark opens the window itself); in the window the
engine rehearses the kline path every ms, which ``--no-rehearsal`` turns off.

``--cold-probe`` measures the machine rather than the engine: a kline's journal work (the intent and its order
recorded, the order confirmed: encoding, SQLite insert, WAL commit) timed back to back and after idle waits of
0.1-20 ms. On a machine whose core is shared with other tenants, code and data not touched for a few ms are
evicted, and the same work costs several times more; a live kline comes after a minute of idling.

``--client N`` times N signed placements and cancels on the sandbox through the lean HTTP client and through
aiohttp, alternating: this process's CPU time and the round trip per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kinetic_empire import Strategy  # noqa: E402
from kinetic_empire.binance.rest import KEEP_WARM_S, BinanceRest  # noqa: E402
from kinetic_empire.binance.signing import Credentials  # noqa: E402
from kinetic_empire.binance.venues import Venue  # noqa: E402
from kinetic_empire.core.clock import LiveClock  # noqa: E402
from kinetic_empire.core.events import OrderRequest  # noqa: E402
from kinetic_empire.indicators import ema  # noqa: E402
from kinetic_empire.live.app import LiveEngine  # noqa: E402
from kinetic_empire.live.config import LiveConfig  # noqa: E402
from kinetic_empire.live.sandbox_venue import local_sandbox, sandbox_config  # noqa: E402
from kinetic_empire.sandbox import RateLimitConfig  # noqa: E402
from kinetic_empire.strategy.registry import build_registry  # noqa: E402


class Flip(Strategy):
    """Trades on every kline: the worst case for latency (an intent, sizing and orders each time)."""

    timeframe = "1m"

    def init(self) -> None:
        self.fast = self.I(ema, self.close, 20)
        self.slow = self.I(ema, self.close, 50)

    def on_kline(self, kline: Any) -> None:
        if self.position.is_long:
            self.sell()
        else:
            self.buy()


def steal_s() -> float | None:
    """CPU time the host took from this machine's virtual cores so far (Linux /proc/stat), None where unknown."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


START = "2023-08-01T06:00:00"
K = 2  # sandbox price updates per kline


@contextlib.asynccontextmanager
async def venue_for(cfg: LiveConfig, registry: Any, in_process: bool) -> Any:
    """(step(), venue, credentials) of a stepped sandbox, in this process or its own."""
    if in_process:
        sb_cfg = sandbox_config(cfg, registry)
        sb_cfg.limits = RateLimitConfig(enforce=False)
        async with local_sandbox(cfg, registry, sb_cfg) as (sb, venue, creds):
            async def step_in(updates: int) -> None:
                await sb.step_updates(updates)

            yield step_in, venue, creds
        return
    from kinetic_empire.strategy.live_indicators import probe_history_needed

    # the history the engine's warm-up asks for (long enough for its EMA(50) to equal a backtest's)
    warmup = max(cfg.window, probe_history_needed(Flip("FILUSDT", timeframe="1m"), cfg.window)[0]) + 10
    start_ms = 1_690_869_600_000 - warmup * 60_000  # START minus the warm-up history
    proc = subprocess.Popen(
        [sys.executable, "-m", "kinetic_empire.sandbox", "--data", str(ROOT / "tests/data/sandbox"), "--speed", "step",
         "--admin", "--json", "--no-limits", "--updates-per-kline", str(K), "--start", str(start_ms),
         "--warmup", str(warmup), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        async with aiohttp.ClientSession() as admin:
            async def step_out(updates: int) -> None:
                async with admin.post(info["rest"] + f"/sandbox-admin/step?updates={updates}") as r:
                    await r.read()

            yield step_out, Venue("custom", info["rest"], info["ws"]), Credentials(info["api_key"],
                                                                                 info["api_secret"], "sandbox")
    finally:
        proc.terminate()
        proc.wait(10)


def order_write_probe(sent: dict[str, float], cpu: dict[str, float]) -> Any:
    """A hook for the lean client's ``on_write``: stamps (perf_counter, thread CPU) when an order placement's bytes
    are written to the socket, by client id. It fires at the write itself (the aiohttp trace hook below fires when the
    task that reads the reply runs, which for an order written inside its handler is a loop turn later)."""
    def on_write(data: bytes) -> None:
        t, c = time.perf_counter(), time.thread_time()
        if data.startswith(b"POST /fapi/v1/order?"):
            # the client id by a byte search, not parse_qs: the probe runs between a flip's two orders, so its own
            # cost would count in the second one's latency (client ids are URL-safe: no unquoting needed)
            at = data.find(b"newClientOrderId=", 0, data.find(b" HTTP/1.1")) + 17
            if at >= 17:
                cid = data[at: min(i for i in (data.find(b"&", at), data.find(b" ", at)) if i >= 0)].decode()
                sent.setdefault(cid, t)
                cpu.setdefault(cid, c)

    return on_write


def order_send_trace(cpu: dict[str, float] | None = None) -> tuple[aiohttp.TraceConfig, dict[str, float]]:
    """An aiohttp trace stamping (perf_counter) when each order's request headers leave, by client id; with
    ``cpu``, the thread's CPU time then too."""
    sent: dict[str, float] = {}

    async def on_headers(_s: Any, _ctx: Any, params: aiohttp.TraceRequestHeadersSentParams) -> None:
        t, c = time.perf_counter(), time.thread_time()  # first: parsing the client id is the probe's own cost
        if params.method == "POST" and params.url.path == "/fapi/v1/order":
            cid = parse_qs(urlsplit(str(params.url)).query).get("newClientOrderId", [""])[0]
            sent.setdefault(cid, t)
            if cpu is not None:
                cpu.setdefault(cid, c)

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_headers)
    return trace, sent


async def measure(klines: int, window: int, in_process: bool = False, gateway: bool = False,
                  gap_ms: float = 0.0, close_poll: bool = False, rehearse: bool = True,
                  drive: Any = None) -> dict[str, Any]:
    """One sitting. ``drive(step, engine, arm, samples)``, when given, steps the sandbox instead of the default loop
    (``bench_live_paced.py``): ``arm(name)`` labels the klines that follow, ``samples()`` gives every (label, wall ms,
    CPU ms) of a kline's first order so far."""
    registry = build_registry([])
    registry.add(Flip, "benchmarks/bench_live.py")
    cfg = LiveConfig.from_mapping({
        "live": {"window": window, "preflight": False},
        "sandbox": {"data": str(ROOT / "tests/data/sandbox"), "speed": 0, "start": START,
                    "updates_per_kline": K},
        "strategies": [{"name": "flip", "symbols": ["FILUSDT", "NEARUSDT"], "timeframe": "1m"}],
        "risk": {"default_leverage": 2, "sizing": {"method": "percent_equity", "percent": 10}},
    })
    sent_cpu: dict[str, float] = {}  # thread CPU time when the headers left
    recv_cpu: dict[str, float] = {}  # thread CPU time when the kline message that caused the order arrived
    trace, sent = order_send_trace(sent_cpu)
    received: dict[str, float] = {}
    confirmed: dict[str, tuple[float, float]] = {}  # journal.confirm's start and end, by client id
    calling: dict[str, float] = {}  # rest.signed called
    decided: dict[str, float] = {}
    first_of_kline: list[str] = []
    label = [""]

    def split(c: str) -> str:  # one sample's stages, ms (engine/decided->journal/commit/journal->rest/rest->headers)
        (a, b), d = confirmed[c], calling[c]
        return "/".join(f"{x * 1000:.2f}" for x in (decided[c] - received[c], a - decided[c], b - a, d - b,
                                                        sent[c] - d)) + f" (#{first_of_kline.index(c)})"

    labels: dict[str, str] = {}  # a kline's first order -> the label its kline was stepped under (drive's arm)
    with tempfile.TemporaryDirectory() as tmp:
        async with venue_for(cfg, registry, in_process) as (step, venue, creds):
            traces = [trace]
            if gateway:  # as `kinetic run` wires it: the metrics' request trace, bus readers, journal timing
                from kinetic_empire.api import ApiMetrics, Gateway

                metrics = ApiMetrics()
                traces.append(metrics.trace_config(LiveClock()))
            # as the engine makes its own (keep-warm on: no handshake on an order after a quiet spell)
            rest = BinanceRest(venue.rest_url, creds, trace_configs=traces, keep_warm_s=KEEP_WARM_S)
            engine = LiveEngine(cfg, registry, venue, creds, run_id="bench", run_dir=Path(tmp) / "bench",
                                check_streams=False, rest=rest)
            if gateway:
                api = Gateway(engine, token="bench-token-not-served", port=0, runs_dir=tmp, metrics=metrics)
                engine.readers.append(api.attach)
                engine.on_journal_commit = metrics.on_journal_commit
            await engine.start()
            if not rehearse:
                engine.close_poll.rehearse = None
            lean = rest.lean_client
            if lean is not None:
                lean.on_write = order_write_probe(sent, sent_cpu)
            seen_kline: set[float] = set()

            def on_request(r: OrderRequest) -> None:
                t0 = engine.feed.last_recv
                received[r.client_order_id] = t0
                decided[r.client_order_id] = time.perf_counter()
                if t0 not in seen_kline:
                    seen_kline.add(t0)
                    first_of_kline.append(r.client_order_id)
                    labels[r.client_order_id] = label[0]

            # stamped before the execution port's handler, which may send the order at once
            bus = engine.bus
            after = list(bus.handlers(OrderRequest))
            after = after[after.index(engine.execution.on_request):]
            for h in after:
                bus.unsubscribe(OrderRequest, h)
            for h in [on_request, *after]:
                bus.subscribe(OrderRequest, h)
            # CPU time at each market message, to tell work (CPU) from waiting for a core (wall minus CPU)
            socket, message_cpu = engine.feed.socket, [0.0]
            inner = socket._on_message

            async def on_message(raw: str | bytes) -> Any:
                message_cpu[0] = time.thread_time()
                return await inner(raw)

            socket._on_message = on_message

            def on_request_cpu(r: OrderRequest) -> None:
                recv_cpu[r.client_order_id] = message_cpu[0]

            engine.bus.subscribe(OrderRequest, on_request_cpu)
            # stages of the wire part, stamped from outside the engine (wrapping, not editing, its objects)
            journal, confirm = engine.journal, engine.journal.confirm

            def timed_confirm(command: Any) -> None:
                t = time.perf_counter()
                confirm(command)
                cid = getattr(command, "client_order_id", None)
                if isinstance(command, OrderRequest) and cid is not None:
                    confirmed[cid] = (t, time.perf_counter())

            journal.confirm = timed_confirm  # type: ignore[method-assign]
            signed = rest.signed

            async def timed_signed(method: str, path: str, params: Any = None, **kw: Any) -> Any:
                if method == "POST" and params and "newClientOrderId" in params:
                    calling.setdefault(params["newClientOrderId"], time.perf_counter())
                return await signed(method, path, params, **kw)

            rest.signed = timed_signed  # type: ignore[method-assign]
            send_now = rest.send_signed_now

            def timed_send_now(method: str, path: str, params: Any, **kw: Any) -> Any:
                if method == "POST" and params and "newClientOrderId" in params:
                    calling[params["newClientOrderId"]] = time.perf_counter()
                return send_now(method, path, params, **kw)

            rest.send_signed_now = timed_send_now  # type: ignore[method-assign]
            began, stolen = time.perf_counter(), steal_s()

            def arm(name: str) -> None:
                label[0] = name

            def samples() -> list[tuple[str, float, float, str]]:
                return [(labels[c], (sent[c] - received[c]) * 1000, (sent_cpu[c] - recv_cpu[c]) * 1000,
                         split(c) if c in confirmed and c in calling else "")
                        for c in first_of_kline if c in sent and c in sent_cpu and c in recv_cpu]

            if drive is not None:
                await drive(step, engine, arm, samples)
            for _ in range(klines if drive is None else 0):
                await step(1)  # the opening update: last kline's orders fill, their events are handled
                await engine.settle(0.005)
                if close_poll:  # what `live.close_poll` does around a minute boundary, here around each close
                    engine.close_poll.hold(gap_ms / 1000 + 0.02)
                if gap_ms:  # the engine idles before the close, as it does for most of a live kline's minute
                    await asyncio.sleep(gap_ms / 1000)
                await step(K)  # the rest of the kline and its close: what is measured
                await engine.settle(0.005)
            elapsed = time.perf_counter() - began
            after = steal_s()
            steal = None if stolen is None or after is None else (after - stolen) / elapsed
            await engine.shutdown()
    lat = [(sent[c] - received[c]) * 1000 for c in first_of_kline if c in sent]
    cpu = [(sent_cpu[c] - recv_cpu[c]) * 1000 for c in first_of_kline if c in sent_cpu and c in recv_cpu]
    slow = sorted(((sent[c] - received[c]) * 1000, (sent_cpu[c] - recv_cpu[c]) * 1000)
                  for c in first_of_kline if c in sent_cpu and c in recv_cpu)[-max(1, len(lat) // 100):]
    every = [(sent[c] - received[c]) * 1000 for c in received if c in sent]
    engine_ms = [(decided[c] - received[c]) * 1000 for c in first_of_kline if c in sent]
    wire_ms = [(sent[c] - decided[c]) * 1000 for c in first_of_kline if c in sent]
    stages = {"decided->journal": [], "journal commit": [], "journal->rest": [], "rest->headers": []}
    for c in first_of_kline:
        if c in sent and c in confirmed and c in calling:
            (a, b), d = confirmed[c], calling[c]
            stages["decided->journal"].append((a - decided[c]) * 1000)
            stages["journal commit"].append((b - a) * 1000)
            stages["journal->rest"].append((d - b) * 1000)
            stages["rest->headers"].append((sent[c] - d) * 1000)
    tail = sorted((c for c in first_of_kline if c in sent and c in confirmed and c in calling),
                  key=lambda c: sent[c] - received[c])[-max(1, len(lat) // 100):]
    return {"stages": {k: (statistics.median(v), percentile(v, 0.99)) for k, v in stages.items() if v},
            "tail_stages": [split(c) for c in tail],
            "engine_p50": statistics.median(engine_ms), "engine_p99": percentile(engine_ms, 0.99),
            "wire_p50": statistics.median(wire_ms), "wire_p99": percentile(wire_ms, 0.99),
            "klines": klines, "orders": len(sent), "samples": len(lat), "elapsed_s": elapsed,
            "p50": statistics.median(lat), "p99": percentile(lat, 0.99), "p999": percentile(lat, 0.999),
            "max": max(lat),
            "p99_all_orders": percentile(every, 0.99), "cpu_p50": statistics.median(cpu),
            "cpu_p99": percentile(cpu, 0.99), "slowest": slow, "steal": steal,
            "labeled": [(labels[c], (sent[c] - received[c]) * 1000,
                         (sent_cpu[c] - recv_cpu[c]) * 1000 if c in sent_cpu and c in recv_cpu else float("nan"))
                        for c in first_of_kline if c in sent]}


async def client_cost(requests: int) -> dict[str, Any]:
    """Per signed order request (a far LIMIT buy, then its cancel) on the sandbox in its own process: the engine
    thread's CPU time and the wall round trip, through the lean client and through aiohttp, alternating."""
    cfg = LiveConfig.from_mapping({
        "live": {"window": 300, "preflight": False},
        "sandbox": {"data": str(ROOT / "tests/data/sandbox"), "speed": 0, "start": START, "updates_per_kline": K},
        "strategies": [{"name": "flip", "symbols": ["FILUSDT"], "timeframe": "1m"}],
    })
    registry = build_registry([])
    registry.add(Flip, "benchmarks/bench_live.py")
    out: dict[str, dict[str, list[float]]] = {"lean": {"cpu": [], "wall": []}, "aiohttp": {"cpu": [], "wall": []}}
    async with venue_for(cfg, registry, False) as (step, venue, creds):
        await step(1)
        clients = {"lean": BinanceRest(venue.rest_url, creds), "aiohttp": BinanceRest(venue.rest_url, creds,
                                                                                        lean_orders=False)}
        for c in clients.values():
            await c.start()
        for i in range(requests + 40):
            for name, c in clients.items():
                cid = f"bench-{name}-{i}"
                t, cpu = time.perf_counter(), time.thread_time()
                await c.signed("POST", "/fapi/v1/order", {"symbol": "FILUSDT", "side": "BUY", "type": "LIMIT",
                                                          "quantity": "10", "price": "3.000", "timeInForce": "GTC",
                                                          "newClientOrderId": cid}, idempotent=False)
                await c.signed("DELETE", "/fapi/v1/order", {"symbol": "FILUSDT", "origClientOrderId": cid})
                if i >= 40:  # the first ones warm up (connections, caches)
                    out[name]["cpu"].append((time.thread_time() - cpu) / 2 * 1e6)
                    out[name]["wall"].append((time.perf_counter() - t) / 2 * 1e6)
        for c in clients.values():
            await c.close()
    return {name: {"cpu_mean": statistics.fmean(v["cpu"]), "cpu_p50": statistics.median(v["cpu"]),
                   "wall_p50": statistics.median(v["wall"]), "wall_p99": percentile(v["wall"], 0.99)}
            for name, v in out.items()}


def _recompute_window(strategy: Any, hist: dict[str, list[float]], kline: Any, window: int) -> None:
    """One kline the way live ran before incremental indicators (the runner's old ``_append`` + ``_recompute``)."""
    import numpy as np

    for field in ("open", "high", "low", "close", "volume"):
        values = hist.setdefault(field, [])
        values.append(getattr(kline, field))
        del values[:-window]
    h = {k: np.asarray(v, dtype=np.float64) for k, v in hist.items()}
    strategy._bind(h["open"], h["high"], h["low"], h["close"], h["volume"])
    strategy._cursor.i = len(hist["close"]) - 1
    strategy._inferred_warmup()
    strategy.on_kline(kline)


def strategy_cost(name: str, klines: int, window: int) -> dict[str, Any]:
    """µs per kline of the strategy runner, before (window recompute) and now (incremental)."""
    from kinetic_empire.core.bus import EventBus
    from kinetic_empire.core.clock import ManualClock
    from kinetic_empire.core.events import new_kline
    from kinetic_empire.data import load_klines, sample_data_dir
    from kinetic_empire.strategy.runner import StrategyRunner

    cls = build_registry([]).get(name)
    k = load_klines(sample_data_dir(), symbol="FILUSDT", timeframe="1m", end="2023-09-01")
    rows = [new_kline("FILUSDT", "1m", int(k.open_time[i]), float(k.open[i]), float(k.high[i]), float(k.low[i]),
                      float(k.close[i]), float(k.volume[i]), int(k.open_time[i]) + 59_999, 0)
            for i in range(len(k.close))]
    runner = StrategyRunner(cls("FILUSDT", timeframe="1m"), EventBus(), ManualClock(start_ms=0), strategy_id="b",
                            id_prefix="b", window=window)
    need = runner.live_history_needed()
    start = need
    runner.warm_up_live(rows[:start])
    now_ns = []
    cpu0 = time.thread_time_ns()
    for kline in rows[start : start + klines]:
        t0 = time.perf_counter_ns()
        runner.on_kline(kline)
        now_ns.append(time.perf_counter_ns() - t0)
    now_cpu = (time.thread_time_ns() - cpu0) / 1000 / len(now_ns)  # CPU time: what load cannot inflate
    old = cls("FILUSDT", timeframe="1m")
    old._emit = lambda *a: None
    hist: dict[str, list[float]] = {}
    for kline in rows[start - window : start]:
        for field in ("open", "high", "low", "close", "volume"):
            hist.setdefault(field, []).append(getattr(kline, field))
    before_ns = []
    cpu0 = time.thread_time_ns()
    for kline in rows[start : start + min(klines, 1000)]:
        t0 = time.perf_counter_ns()
        _recompute_window(old, hist, kline, window)
        before_ns.append(time.perf_counter_ns() - t0)
    before_cpu = (time.thread_time_ns() - cpu0) / 1000 / len(before_ns)
    us = [x / 1000 for x in now_ns]
    before = [x / 1000 for x in before_ns]
    return {"name": name, "warmup": need, "klines": len(us), "mean": statistics.fmean(us),
            "p50": statistics.median(us), "p99": percentile(us, 0.99), "before_mean": statistics.fmean(before),
            "before_p50": statistics.median(before), "before_p99": percentile(before, 0.99),
            "cpu": now_cpu, "before_cpu": before_cpu,
            "recomputed": list(runner._live.recomputed) if runner._live else []}


def print_strategy_cost(klines: int, window: int) -> None:
    load = os.getloadavg()
    print(f"strategy runner cost per live kline, FILUSDT 1m real klines, window {window} "
          f"(load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores)")
    for name in ("ema_cross", "rsi_reversion", "donchian_breakout"):
        r = strategy_cost(name, klines, window)
        print(f"  {name:18s} before (window recompute): cpu {r['before_cpu']:7.1f} µs  wall p50 {r['before_p50']:7.1f}"
              f"  p99 {r['before_p99']:7.1f}   now (incremental, warm-up {r['warmup']}): cpu {r['cpu']:5.1f} µs"
              f"  wall p50 {r['p50']:5.1f}  p99 {r['p99']:5.1f}  ({r['klines']} klines)"
              + (f"  recomputed on the window: {', '.join(r['recomputed'])}" if r["recomputed"] else ""))
    print("  cpu: thread CPU time per kline (load does not inflate it); wall: per-kline timings, which it does")
    print("  target: at most 50 µs per kline (issue 17, target 6)")


def cold_probe(samples: int = 400) -> None:
    """The journal's part of a kline's orders, hot and after idle waits (see the module docstring)."""
    from decimal import Decimal

    from kinetic_empire.core.enums import IntentAction, OrderType, Side
    from kinetic_empire.core.event_factories import new_market_request
    from kinetic_empire.core.events import OrderIntent
    from kinetic_empire.live.journal import Journal

    load = os.getloadavg()
    print(f"a kline's journal work (record an intent and its order, confirm the order: encode, insert, commit), "
          f"after an idle wait (load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {samples} samples each)")
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.sqlite")
        n = 0
        try:
            for idle_ms in (0.0, 0.1, 1.0, 5.0, 20.0):
                took = []
                for _ in range(samples + 20):
                    if idle_ms:
                        time.sleep(idle_ms / 1000)
                    n += 1
                    t = time.perf_counter()
                    intent = OrderIntent(intent_id=f"i{n}", strategy_id="flip", symbol="FILUSDT",
                                         action=IntentAction.OPEN_LONG, reference_price=3.951, ts_event=n, ts_init=n)
                    request = new_market_request(f"c{n}-E", f"i{n}", "flip", "FILUSDT", Side.BUY, OrderType.MARKET,
                                                 Decimal("25.3"), None, None, False, (), True, n, n)
                    journal.record(intent)
                    journal.record(request)
                    journal.confirm(request)
                    took.append((time.perf_counter() - t) * 1e6)
                took = took[20:]
                print(f"  idle {idle_ms:5.1f} ms before: p50 {statistics.median(took):6.1f} µs   "
                      f"p99 {percentile(took, 0.99):7.1f} µs")
        finally:
            journal.close()
    print("  the same work each time: what grows with the wait is the machine forgetting it (caches), not the engine")


def stop_on_sigterm() -> None:
    """A SIGTERM (``kill``, a timeout) unwinds like Ctrl-C, so the sandbox process is stopped with the benchmark."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main() -> None:
    stop_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--klines", type=int, default=400)
    ap.add_argument("--window", type=int, default=300)
    ap.add_argument("--in-process", action="store_true", help="run the sandbox on the engine's event loop")
    ap.add_argument("--gateway", action="store_true",
                    help="attach the operator gateway's bus readers and request metrics, as `kinetic run` does "
                         "(not serving HTTP)")
    ap.add_argument("--gap-ms", type=float, default=0.0, metavar="MS",
                    help="idle this long before each closing step (a live kline idles most of a minute first)")
    ap.add_argument("--close-poll", action="store_true",
                    help="poll without sleeping from the gap's start to 20 ms past its end (the close, its orders), "
                         "as live.close_poll does around each minute boundary")
    ap.add_argument("--no-rehearsal", action="store_true",
                    help="with --close-poll: poll without rehearsing the kline path in the window")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="N sittings one after another: each one's p99, and their median")
    ap.add_argument("--cold-probe", action="store_true",
                    help="the machine's cost of a kline's journal work hot and after idle waits (no sandbox)")
    ap.add_argument("--strategy-cost", action="store_true",
                    help="time the strategy runner per kline for the example strategies (no sandbox)")
    ap.add_argument("--client", type=int, metavar="N", default=0,
                    help="time N signed order requests (placement + cancel) through the lean HTTP client and "
                         "through aiohttp, alternating (engine-thread CPU and wall per request)")
    args = ap.parse_args()
    if args.client:
        r = asyncio.run(client_cost(args.client))
        print(f"signed order requests on the sandbox over loopback, concurrency 1, {args.client} placements + "
              f"{args.client} cancels each (load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        for name, v in r.items():
            print(f"  {name:8s} CPU per request: mean {v['cpu_mean']:6.1f} µs  p50 {v['cpu_p50']:6.1f} µs   "
                  f"round trip: p50 {v['wall_p50']:6.1f} µs  p99 {v['wall_p99']:6.1f} µs")
        print("  (CPU: this process's thread only, signing and error mapping included; the sandbox's is not)")
        return
    if args.strategy_cost:
        print_strategy_cost(args.klines if args.klines != 400 else 3000, args.window if args.window != 300 else 500)
        return
    if args.cold_probe:
        cold_probe()
        return
    if args.repeat > 1:
        repeat(args)
        return
    r = asyncio.run(measure(args.klines, args.window, args.in_process, args.gateway, args.gap_ms,
                                  args.close_poll, not args.no_rehearsal))
    print(f"tick-to-order latency, live engine on the sandbox over loopback, risk manager in the path "
          f"(window {args.window}, 2 symbols, sandbox {'in-process' if args.in_process else 'in its own process'}"
          f"{', operator gateway attached' if args.gateway else ''})")
    print(f"  {r['samples']} klines that traded, {r['orders']} orders, {r['klines']} klines in {r['elapsed_s']:.1f} s")
    print(f"  first order of a kline: p50 {r['p50']:.2f} ms   p99 {r['p99']:.2f} ms   p99.9 {r['p999']:.2f} ms"
          f"   max {r['max']:.2f} ms")
    print(f"  of which kline message -> order request on the bus (decode, strategy, risk): "
          f"p50 {r['engine_p50']:.2f} ms   p99 {r['engine_p99']:.2f} ms")
    print(f"  of which order request on the bus -> headers written (journal commit, port, signing, HTTP client): "
          f"p50 {r['wire_p50']:.2f} ms   p99 {r['wire_p99']:.2f} ms")
    print("  the wire part's stages, p50/p99 ms: " + ", ".join(f"{k} {a:.3f}/{b:.3f}" for k, (a, b) in
                                                               r["stages"].items()))
    print("  slowest 1% by stage (engine/decided->journal/commit/journal->rest/rest->headers ms, (#sample)): "
          + ", ".join(r["tail_stages"]))
    print(f"  every order (a flip sends a close then an entry): p99 {r['p99_all_orders']:.2f} ms")
    print(f"  the engine thread's CPU time in the same window: p50 {r['cpu_p50']:.2f} ms   p99 {r['cpu_p99']:.2f} ms"
          "   (wall minus CPU: time spent waiting for a core, or for the disk)")
    print("  slowest 1% (wall ms / CPU ms): " + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in r["slowest"]))
    if r["steal"] is not None:
        print(f"  the host's steal during the run: {r['steal'] * 100:.1f} % of a core (time this virtual machine's "
              "cores waited while the host ran something else: wall time no code here can cut)")
    print(f"  target p99 < 2 ms (issue 17, target 6): {'met' if r['p99'] < 2 else 'NOT met'}"
          f"   (load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


def repeat(args: argparse.Namespace) -> None:
    """``--repeat N``: one line per sitting, then the median of their p99s."""
    print(f"tick-to-order latency, {args.repeat} sittings of {args.klines} klines (window {args.window}, 2 symbols)")
    p99s, cpu_p99s = [], []
    for i in range(args.repeat):
        r = asyncio.run(measure(args.klines, args.window, args.in_process, args.gateway, args.gap_ms,
                                  args.close_poll, not args.no_rehearsal))
        p99s.append(r["p99"])
        cpu_p99s.append(r["cpu_p99"])
        print(f"  sitting {i + 1:2d}: first order p50 {r['p50']:.2f}  p99 {r['p99']:.2f}  p99.9 {r['p999']:.2f}  "
              f"max {r['max']:.2f} ms   CPU p99 {r['cpu_p99']:.2f} ms   "
              + (f"steal {r['steal'] * 100:.1f} %   " if r["steal"] is not None else "") + "(load "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})", flush=True)
    over = sum(1 for p in p99s if p >= 2)
    print(f"  p99 median {statistics.median(p99s):.2f} ms, range {min(p99s):.2f}-{max(p99s):.2f} ms; {over} of "
          f"{len(p99s)} sittings at or over the 2 ms target (issue 17, target 6); the engine thread's CPU time p99 "
          f"median {statistics.median(cpu_p99s):.2f} ms (where wall is far above it, the host or the scheduler kept "
          "the engine waiting)")


if __name__ == "__main__":
    main()
