"""Sandbox benchmark: signed order round trips over loopback, and kline-to-client WebSocket latency.

The sandbox runs in its own process (``python -m kinetic_empire.sandbox``, one core, stepped replay,
limits not enforced) and this process is the client, so the figures are what a bot on the same machine
sees: real HMAC signatures, real HTTP keep-alive connections, real WebSocket frames.

* Orders: each cycle places a LIMIT order (POST /fapi/v1/order), queries it (GET) and cancels it
  (DELETE): three signed round trips. Reported: round trips/s, order cycles/s, p50/p99 per round trip,
  from aiohttp at each concurrency, then at concurrency 1 from the engine's own order client
  (``binance.http_client.HttpClient`` with the engine's signer: what the engine itself places orders with), from a
  lean blocking ``http.client`` client and from a raw socket client (the server's share), each with the sandbox's
  CPU per request (and the client's own): at concurrency 1 a round trip costs at least the sandbox's CPU plus the
  client's.
* Streams: N connections subscribe to ``/market/ws/filusdt@kline_1m`` (klines are routed to /market); each
  replay update is triggered through the admin endpoint and the time from the trigger to each subscriber's
  receipt is recorded.

* Durability (``--state``): the CPU time the write-through log adds, in process and without HTTP, per
  order cycle (place, an unchanged query, cancel: three commits) and per replay phase, against the same
  work with no state file. Measured in CPU time, so other processes on the machine matter less.

Run: ``python benchmarks/bench_sandbox.py [--seconds 5] [--concurrency 1 4] [--state]`` (``--state``: the
sandbox process persists every change to a temporary state file, as ``kinetic sandbox --state`` does).
Before/after in one sitting: alternate ``--sandbox-root /path/to/other/checkout`` with this one (the client
side stays the same), e.g. ``--subscribers --no-durability --seconds 4`` for the order figures alone; or
``--sandbox-root OLD --versus NEW``: both sandboxes run at once and each client (aiohttp, the engine's, raw socket)
alternates between them every ``--block`` cycles, so both meet the same load (on a shared machine it changes
within seconds), and the ratios are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sandbox_clients import (
    DATA,
    ROOT,
    Signer,
    aiohttp_driver,
    cpu_seconds,
    engine_driver,
    param_cycle,
    raw_caller,
    raw_cycle,
    raw_driver,
    start_server,
)


def server_cpu(before: float | None, pid: int, requests: int) -> str:
    after = cpu_seconds(pid)
    if before is None or after is None or not requests:
        return ""
    return f", sandbox CPU {(after - before) / requests * 1e6:.0f} us/request"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def order_worker(s: aiohttp.ClientSession, signer: Signer, stop_at: float, lat: list[float], wid: int) -> int:
    headers = {"X-MBX-APIKEY": signer.key}
    cycles = 0
    while time.perf_counter() < stop_at:
        cid = f"b{wid}-{cycles}"
        steps = (
            ("POST", "/fapi/v1/order", {"symbol": "FILUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                        "quantity": "10", "price": "4.000", "newClientOrderId": cid}),
            ("GET", "/fapi/v1/order", {"symbol": "FILUSDT", "origClientOrderId": cid}),
            ("DELETE", "/fapi/v1/order", {"symbol": "FILUSDT", "origClientOrderId": cid}),
        )
        for method, path, params in steps:
            t = time.perf_counter()
            async with s.request(method, signer.url(path, dict(params)), headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{method} {path}: {r.status} {await r.text()}")
            lat.append(time.perf_counter() - t)
        cycles += 1
    return cycles


async def bench_orders(info: dict[str, str], seconds: float, concurrency: int) -> None:
    signer = Signer(info)
    lat: list[float] = []
    pid = int(info["pid"])
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:
        await order_worker(s, signer, time.perf_counter() + 0.3, [], -1)  # warm up connections and caches
        cpu0, t0, own0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
        stop_at = t0 + seconds
        cycles = sum(await asyncio.gather(*(order_worker(s, signer, stop_at, lat, w) for w in range(concurrency))))
        elapsed, own = time.perf_counter() - t0, time.process_time() - own0
        cpu = server_cpu(cpu0, pid, len(lat))
    ms = [x * 1000 for x in lat]
    print(f"  concurrency {concurrency:>3}: {len(lat) / elapsed:8.0f} signed round trips/s, "
          f"{cycles / elapsed:7.0f} place+query+cancel cycles/s, p50 {statistics.median(ms):.2f} ms, "
          f"p99 {pct(ms, 0.99):.2f} ms, max {max(ms):.1f} ms ({len(lat)} requests){cpu}, "
          f"client CPU {own / len(lat) * 1e6:.0f} us/request")


def lean_orders(info: dict[str, str], seconds: float) -> None:
    """The same cycles from a blocking ``http.client`` keep-alive connection: a client that costs little, so
    the figure is mostly the sandbox's own time per request (aiohttp's client costs about as much as the
    server does at concurrency 1)."""
    signer = Signer(info)
    host, port = signer.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    headers = {"X-MBX-APIKEY": signer.key}
    lat: list[float] = []

    def cycle(cid: str, record: bool) -> None:
        for method, path, params in (
            ("POST", "/fapi/v1/order", {"symbol": "FILUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                        "quantity": "10", "price": "4.000", "newClientOrderId": cid}),
            ("GET", "/fapi/v1/order", {"symbol": "FILUSDT", "origClientOrderId": cid}),
            ("DELETE", "/fapi/v1/order", {"symbol": "FILUSDT", "origClientOrderId": cid}),
        ):
            t = time.perf_counter()
            url = signer.url(path, dict(params))
            conn.request(method, f"{url.raw_path}?{url.raw_query_string}", headers=headers)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"{method} {path}: {r.status} {body!r}")
            if record:
                lat.append(time.perf_counter() - t)

    warm_until = time.perf_counter() + 0.3
    n = 0
    while time.perf_counter() < warm_until:
        cycle(f"w{n}", False)
        n += 1
    pid = int(info["pid"])
    cpu0, t0, own0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
    while time.perf_counter() < t0 + seconds:
        cycle(f"l{n}", True)
        n += 1
    elapsed, own = time.perf_counter() - t0, time.process_time() - own0
    cpu = server_cpu(cpu0, pid, len(lat))
    conn.close()
    ms = [x * 1000 for x in lat]
    print(f"  lean client, concurrency 1: {len(lat) / elapsed:8.0f} signed round trips/s, p50 "
          f"{statistics.median(ms):.2f} ms, p99 {pct(ms, 0.99):.2f} ms ({len(lat)} requests){cpu}, "
          f"client CPU {own / len(lat) * 1e6:.0f} us/request")


def raw_orders(info: dict[str, str], seconds: float) -> None:
    """The same cycles from a raw keep-alive socket: each request signed (HMAC-SHA256 over a fresh timestamp)
    and written in one ``sendall``, each answer read to its Content-Length and its status checked. The client
    costs a few tens of microseconds, so the figure shows what the sandbox itself allows at concurrency 1
    (``http.client`` above spends about as much CPU per request as the sandbox)."""
    call, sock = raw_caller(info)
    lat: list[float] = []

    def cycle(cid: str, record: bool) -> None:
        for method, query in raw_cycle(cid):
            t = time.perf_counter()
            call(method, query)
            if record:
                lat.append(time.perf_counter() - t)

    warm_until = time.perf_counter() + 0.3
    n = 0
    while time.perf_counter() < warm_until:
        cycle(f"rw{n}", False)
        n += 1
    pid = int(info["pid"])
    cpu0, t0, own0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
    while time.perf_counter() < t0 + seconds:
        cycle(f"r{n}", True)
        n += 1
    elapsed, own = time.perf_counter() - t0, time.process_time() - own0
    cpu = server_cpu(cpu0, pid, len(lat))
    sock.close()
    ms = [x * 1000 for x in lat]
    print(f"  raw socket client, concurrency 1: {len(lat) / elapsed:8.0f} signed round trips/s, p50 "
          f"{statistics.median(ms):.2f} ms, p99 {pct(ms, 0.99):.2f} ms ({len(lat)} requests){cpu}, "
          f"client CPU {own / len(lat) * 1e6:.0f} us/request")


async def engine_orders(info: dict[str, str], seconds: float) -> None:
    """The same cycles from the engine's own order client: :class:`kinetic_empire.binance.http_client.HttpClient`
    (the keep-alive HTTP/1.1 client :class:`.rest.BinanceRest` sends placements, look-ups and cancels through),
    each query signed by the engine's :class:`kinetic_empire.binance.signing.Signer` (recvWindow, timestamp,
    signature last) and each JSON answer decoded, as the engine does with it. This is what the engine itself
    meets when it trades against the sandbox."""
    from kinetic_empire.binance.http_client import HttpClient
    from kinetic_empire.binance.signing import Signer as EngineSigner
    from kinetic_empire.core.clock import LiveClock

    clock = LiveClock()
    client = HttpClient(info["rest"], clock=clock, timeout_s=10.0)
    signer = EngineSigner(info["api_secret"])
    headers = {"X-MBX-APIKEY": info["api_key"]}
    lat: list[float] = []

    async def cycle(cid: str, record: bool) -> None:
        for method, params in param_cycle(cid):
            t = time.perf_counter()
            query = signer.query(params, clock.now_ms(), 5000)
            reply = await client.request(method, f"/fapi/v1/order?{query}", headers)
            json.loads(reply.body)
            if reply.status != 200:
                raise RuntimeError(f"{method} /fapi/v1/order: {reply.status} {reply.body!r}")
            if record:
                lat.append(time.perf_counter() - t)

    try:
        warm_until = time.perf_counter() + 0.3
        n = 0
        while time.perf_counter() < warm_until:
            await cycle(f"ew{n}", False)
            n += 1
        pid = int(info["pid"])
        cpu0, t0, own0 = cpu_seconds(pid), time.perf_counter(), time.process_time()
        while time.perf_counter() < t0 + seconds:
            await cycle(f"e{n}", True)
            n += 1
        elapsed, own = time.perf_counter() - t0, time.process_time() - own0
        cpu = server_cpu(cpu0, pid, len(lat))
    finally:
        await client.close()
    ms = [x * 1000 for x in lat]
    print(f"  engine order client (binance.http_client), concurrency 1: {len(lat) / elapsed:8.0f} signed round "
          f"trips/s, p50 {statistics.median(ms):.2f} ms, p99 {pct(ms, 0.99):.2f} ms ({len(lat)} requests){cpu}, "
          f"client CPU {own / len(lat) * 1e6:.0f} us/request")


async def versus(args: argparse.Namespace) -> None:
    """Both checkouts' sandboxes at once; each client's cycles alternate between them in short blocks, so the
    two meet the same machine (load comes and goes within seconds on a shared box)."""
    roots = (args.sandbox_root.resolve(), args.versus.resolve())
    servers = [start_server(None, root, args.loop) for root in roots]
    try:
        print(f"A: {roots[0]}\nB: {roots[1]}\nclients alternate between A and B every {args.block} cycles "
              f"for {args.seconds:g} s each; load average {os.getloadavg()[0]:.2f}")
        for name, make in (("aiohttp", aiohttp_driver), ("engine order client", engine_driver),
                           ("raw socket", raw_driver)):
            pairs = [await make(info, f"{name[0]}{i}-") for i, (_, info) in enumerate(servers)]
            lat: list[list[float]] = [[], []]
            wall, cpu = [0.0, 0.0], [0.0, 0.0]
            n = 0
            for (drive, _), _ in zip(pairs, servers, strict=True):  # warm-up
                await drive(n, 50)
            n = 50
            stop_at = time.perf_counter() + 2 * args.seconds
            while time.perf_counter() < stop_at:
                for side in (0, 1) if n % (2 * args.block) else (1, 0):  # who goes first alternates too
                    pid = int(servers[side][1]["pid"])
                    c0, t0 = cpu_seconds(pid), time.perf_counter()
                    lat[side] += await pairs[side][0](n, args.block)
                    wall[side] += time.perf_counter() - t0
                    c1 = cpu_seconds(pid)
                    cpu[side] += (c1 or 0.0) - (c0 or 0.0)
                n += args.block
            for drive_close in pairs:
                await drive_close[1]()
            rts = [len(lat[i]) / wall[i] for i in (0, 1)]
            us = [cpu[i] / len(lat[i]) * 1e6 for i in (0, 1)]
            p50 = [statistics.median(lat[i]) * 1000 for i in (0, 1)]
            print(f"  {name:>19}: A {rts[0]:6.0f} rt/s (p50 {p50[0]:.2f} ms, sandbox CPU {us[0]:.0f} us/request), "
                  f"B {rts[1]:6.0f} rt/s (p50 {p50[1]:.2f} ms, {us[1]:.0f} us/request); B/A {rts[1] / rts[0]:.2f}x "
                  f"rt/s, {us[1] / us[0]:.2f}x CPU")
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=10)


async def bench_streams(info: dict[str, str], subscribers: int, updates: int) -> None:
    base = info["rest"]
    # one session for the subscribers (no connection cap), another for the admin trigger
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as subs, \
            aiohttp.ClientSession() as s:
        conns = [await subs.ws_connect(f"{info['ws']}/market/ws/filusdt@kline_1m") for _ in range(subscribers)]
        await asyncio.sleep(0.2)
        lat: list[float] = []
        worst: list[float] = []

        async def receive(ws: aiohttp.ClientWebSocketResponse, t0: float, out: list[float]) -> None:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT
            json.loads(msg.data)
            out.append(time.perf_counter() - t0)

        for _ in range(updates):
            got: list[float] = []
            t0 = time.perf_counter()
            waiters = [asyncio.ensure_future(receive(ws, t0, got)) for ws in conns]
            async with s.post(f"{base}/sandbox-admin/step?updates=1") as r:
                await r.read()
            await asyncio.gather(*waiters)
            lat += got
            worst.append(max(got))
        for ws in conns:
            await ws.close()
    ms = [x * 1000 for x in lat]
    print(f"  {subscribers:>3} subscribers: p50 {statistics.median(ms):.2f} ms, p99 {pct(ms, 0.99):.2f} ms, "
          f"last subscriber p50 {statistics.median(worst) * 1000:.2f} ms ({updates} updates)")


def durability_cost(cycles: int, phases: int, repeats: int = 5) -> None:
    """CPU microseconds per order cycle and per replay phase, without and with the write-through log.

    The two variants alternate ``repeats`` times and the fastest run of each is reported, so a busy
    machine skews the comparison less."""
    best: dict[bool, tuple[float, float]] = {}
    for _ in range(repeats):
        for durable in (False, True):
            cycle, phase = _durability_run(durable, cycles, phases)
            old = best.get(durable, (cycle, phase))
            best[durable] = (min(old[0], cycle), min(old[1], phase))
    (c0, p0), (c1, p1) = best[False], best[True]
    print(f"  order cycle (place, query, cancel; {cycles}x, best of {repeats}): {c0:.1f} us without, {c1:.1f} us "
          f"with --state (+{c1 - c0:.1f} us: two records written, one query with nothing to write)")
    print(f"  replay phase ({phases}x, best of {repeats}): {p0:.1f} us without, {p1:.1f} us with --state "
          f"(+{p1 - p0:.1f} us)")


def _durability_run(durable: bool, cycles: int, phases: int) -> tuple[float, float]:
    from decimal import Decimal

    from kinetic_empire.core.enums import OrderType, Side, TimeInForce
    from kinetic_empire.sandbox import SandboxConfig, SandboxVenue
    from kinetic_empire.sandbox.durable import resume
    from kinetic_empire.sandbox.statefile import StateFile

    with tempfile.TemporaryDirectory() as tmp:
        venue = SandboxVenue(SandboxConfig(data=[DATA], symbols=["FILUSDT"]))
        venue.play_klines(30)
        sf = None
        if durable:
            sf = StateFile(Path(tmp) / "state")
            resume(venue, sf, sf.open(), print)
        ex = venue.account().exchange
        t0 = time.process_time()
        for i in range(cycles):
            sim = ex.submit(symbol="FILUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=Decimal(10),
                            price=Decimal("4.000"), time_in_force=TimeInForce.GTC, client_order_id=f"b{i}")
            venue.commit()
            venue.commit()  # a query: nothing changed, nothing written
            ex.cancel("FILUSDT", order_id=sim.order_id)
            venue.commit()
        t1 = time.process_time()
        for _ in range(phases):
            venue.play_update()
        t2 = time.process_time()
        if sf is not None:
            sf.close()
    return (t1 - t0) / cycles * 1e6, (t2 - t1) / phases * 1e6


async def main(args: argparse.Namespace) -> None:
    if args.versus is not None:
        await versus(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state" if args.state else None
        await run_all(args, state)
    if not args.no_durability:
        print("durability, in process (CPU time):")
        durability_cost(2000, 2000)


async def run_all(args: argparse.Namespace, state: Path | None) -> None:
    proc, info = start_server(state, args.sandbox_root.resolve(), args.loop)
    try:
        print(f"sandbox at {info['rest']} (separate process, from {args.sandbox_root.resolve()}, loop "
              f"{args.loop or 'default'}), client: aiohttp, HMAC-SHA256 signed, "
              f"state: {'--state (durable)' if state else 'none (in memory)'}")
        print("order round trips (LIMIT place, query, cancel):")
        print(f"  load average {os.getloadavg()[0]:.2f}")
        for c in args.concurrency:
            await bench_orders(info, args.seconds, c)
        await engine_orders(info, args.seconds)
        await asyncio.to_thread(lean_orders, info, args.seconds)
        await asyncio.to_thread(raw_orders, info, args.seconds)
        if args.subscribers:
            print("kline update -> client WebSocket delivery (trigger to receipt):")
        for n in args.subscribers:
            await bench_streams(info, n, args.updates)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--subscribers", type=int, nargs="*", default=[1, 10, 100],
                        help="stream subscriber counts to measure (none: skip the stream figures)")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--state", action="store_true", help="run the sandbox with a --state file (durable)")
    parser.add_argument("--sandbox-root", type=Path, default=ROOT,
                        help="checkout whose sandbox to run (default: this one), to compare two side by side")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], help="the sandbox process's event loop "
                        "(default: the sandbox's own default, uvloop when installed since session 7; needs a "
                        "checkout that reads $KINETIC_SANDBOX_LOOP)")
    parser.add_argument("--versus", type=Path, help="another checkout: run both sandboxes at once and alternate "
                        "every client's cycles between them (A: --sandbox-root, B: --versus), order figures only")
    parser.add_argument("--block", type=int, default=20, help="with --versus: cycles per turn")
    parser.add_argument("--no-durability", action="store_true", help="skip the in-process durability figures")
    asyncio.run(main(parser.parse_args()))
