"""The operator gateway's costs: bus event -> SSE client latency, and what it adds to kline-to-order latency.

    python benchmarks/bench_api.py [--events 500] [--klines 200] [--rounds 2]

1. **Bus event to SSE client**: a live engine (stepped local sandbox) serves its gateway on a loopback port;
   1 and then 10 clients read ``/api/stream`` over HTTP (httpx, in the same process and event loop, as the
   dashboard's EventSource would be in a browser). ``Alert`` events are published on the engine's bus every
   2 ms; the latency of each is from ``bus.publish`` to the moment a client has parsed its ``id:`` line.
   Target: p99 under 50 ms.
2. **Gateway's cost on kline-to-order**: ``benchmarks/bench_live.py``'s measurement (a strategy that trades on
   every kline, the sandbox in its own process, from the kline's WebSocket message to the order's HTTP
   headers on the socket), run alternately without and with the gateway (attached to the bus, serving, one
   SSE client connected and reading). Target: under 10 % added at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_live  # noqa: E402

from kinetic_empire.api import Gateway  # noqa: E402
from kinetic_empire.binance.rest import BinanceRest  # noqa: E402
from kinetic_empire.core.events import Alert, OrderRequest  # noqa: E402
from kinetic_empire.live.app import LiveEngine  # noqa: E402
from kinetic_empire.live.config import LiveConfig  # noqa: E402
from kinetic_empire.strategy.registry import build_registry  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def pct(values: list[float], q: float) -> float:
    return bench_live.percentile(values, q)


# ------------------------------------------------------------------------------------ SSE latency
async def sse_latency(clients: int, events: int) -> dict[str, float]:
    from tests.support.api import quiet_config
    from tests.support.live import stepped_engine

    published: dict[int, float] = {}
    received: list[dict[int, float]] = [{} for _ in range(clients)]
    with tempfile.TemporaryDirectory() as tmp:
        async with stepped_engine(Path(tmp) / "sse", config=quiet_config(), start=False) as (_sb, engine):
            gw = Gateway(engine, token=TOKEN, port=0, health_every_s=60)
            engine.readers.append(gw.attach)
            await engine.start()
            await gw.start()

            async def read(i: int, ready: asyncio.Event) -> None:
                got = received[i]
                async with httpx.AsyncClient(base_url=gw.url, headers=AUTH, timeout=60) as c, \
                        c.stream("GET", "/api/stream") as r:
                    ready.set()
                    async for line in r.aiter_lines():
                        if line.startswith("id: "):
                            got[int(line[4:])] = time.perf_counter()

            readies = [asyncio.Event() for _ in range(clients)]
            tasks = [asyncio.ensure_future(read(i, readies[i])) for i in range(clients)]
            for ready in readies:
                await ready.wait()
            await asyncio.sleep(0.2)
            for n in range(events):
                now = engine.clock.now_ms()
                engine.bus.publish(Alert(kind="bench", message=str(n), ts_event=now, ts_init=now))
                published[gw.stream.seq] = time.perf_counter()
                await asyncio.sleep(0.002)
            last = gw.stream.seq
            deadline = time.perf_counter() + 10
            while any(last not in got for got in received) and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            for t in tasks:
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.gather(*tasks)
            await gw.stop()
    lat = [(got[seq] - t0) * 1000 for got in received for seq, t0 in published.items() if seq in got]
    missing = clients * len(published) - len(lat)
    return {"p50": statistics.median(lat), "p99": pct(lat, 0.99), "max": max(lat), "n": len(lat), "missing": missing}


# ------------------------------------------------------------------------------------ handler cost
async def handler_cost(n: int) -> dict[str, float]:
    """What the gateway's bus handlers add to one kline's and one order request's delivery, in microseconds:
    the synchronous work it puts on the engine's path (the SSE text is built later, off the path)."""
    from kinetic_empire.core.enums import OrderType, Side
    from kinetic_empire.core.events import new_kline
    from tests.support.api import quiet_config
    from tests.support.live import stepped_engine

    with tempfile.TemporaryDirectory() as tmp:
        async with stepped_engine(Path(tmp) / "h", config=quiet_config(), start=False) as (_sb, engine):
            gw = Gateway(engine, token=TOKEN, port=0)
            engine.readers.append(gw.attach)
            await engine.start()
            t0 = engine.clock.now_ms()
            klines = [new_kline("FILUSDT", "1m", t0 + i * 60_000, 4.0, 4.1, 3.9, 4.0 + i * 1e-4, 100.0,
                                t0 + i * 60_000 + 59_999, t0) for i in range(n)]
            start = time.perf_counter()
            for k in klines:
                gw._on_kline(k)
            per_kline = (time.perf_counter() - start) / n * 1e6
            from decimal import Decimal

            reqs = [OrderRequest(client_order_id=f"b{i}", intent_id="b", strategy_id="flip", symbol="FILUSDT",
                                 side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal(1), ts_event=t0,
                                 ts_init=t0) for i in range(n)]
            start = time.perf_counter()
            for r in reqs:
                gw._on_order(r)
                gw.metrics._on_order_event(r)
            per_request = (time.perf_counter() - start) / n * 1e6
    return {"kline_us": per_kline, "request_us": per_request}


# ------------------------------------------------------------------------------------ kline to order
async def kline_to_order(klines: int, window: int, with_gateway: bool) -> dict[str, float]:
    """bench_live's measurement, optionally with the gateway attached, serving and streaming to a client."""
    registry = build_registry([])
    registry.add(bench_live.Flip, "benchmarks/bench_live.py")
    cfg = LiveConfig.from_mapping({
        "live": {"window": window, "preflight": False},
        "sandbox": {"data": str(ROOT / "tests/data/sandbox"), "speed": 0, "start": bench_live.START,
                    "updates_per_kline": bench_live.K},
        "strategies": [{"name": "flip", "symbols": ["FILUSDT", "NEARUSDT"], "timeframe": "1m"}],
        "risk": {"default_leverage": 2, "sizing": {"method": "percent_equity", "percent": 10}},
    })
    trace, sent = bench_live.order_send_trace()
    received: dict[str, float] = {}
    first_of_kline: list[str] = []
    sse_messages = 0
    with tempfile.TemporaryDirectory() as tmp:
        async with bench_live.venue_for(cfg, registry, False) as (step, venue, creds):
            rest = BinanceRest(venue.rest_url, creds, trace_configs=[trace])
            engine = LiveEngine(cfg, registry, venue, creds, run_id="bench", run_dir=Path(tmp) / "bench",
                                check_streams=False, rest=rest)
            gw = Gateway(engine, token=TOKEN, port=0) if with_gateway else None
            if gw is not None:
                engine.readers.append(gw.attach)
            await engine.start()
            reader = None
            if gw is not None:
                await gw.start()

                async def read() -> None:
                    nonlocal sse_messages
                    async with httpx.AsyncClient(base_url=gw.url, headers=AUTH, timeout=60) as c, \
                            c.stream("GET", "/api/stream") as r:
                        async for line in r.aiter_lines():
                            if line.startswith("id: "):
                                sse_messages += 1

                reader = asyncio.ensure_future(read())
            seen: set[float] = set()

            def on_request(r: OrderRequest) -> None:
                t0 = engine.feed.last_recv
                received[r.client_order_id] = t0
                if t0 not in seen:
                    seen.add(t0)
                    first_of_kline.append(r.client_order_id)

            engine.bus.subscribe(OrderRequest, on_request)
            for _ in range(klines):
                await step(1)
                await engine.settle(0.005)
                await step(bench_live.K)
                await engine.settle(0.005)
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
            if gw is not None:
                await gw.stop()
            await engine.shutdown()
    lat = [(sent[c] - received[c]) * 1000 for c in first_of_kline if c in sent]
    return {"p50": statistics.median(lat), "p99": pct(lat, 0.99), "n": len(lat), "sse": sse_messages}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--klines", type=int, default=200)
    ap.add_argument("--window", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs without/with the gateway")
    args = ap.parse_args()
    print("bus event -> SSE client (Alert published on the live engine's bus, parsed by httpx clients)")
    for clients in (1, 10):
        r = asyncio.run(sse_latency(clients, args.events))
        print(f"  {clients:>2} client(s): p50 {r['p50']:.2f} ms   p99 {r['p99']:.2f} ms   max {r['max']:.2f} ms   "
              f"({r['n']} deliveries, {r['missing']} missing)   target p99 < 50 ms: "
              f"{'met' if r['p99'] < 50 and not r['missing'] else 'NOT met'}")
    h = asyncio.run(handler_cost(20_000))
    print(f"gateway handlers on the engine's path: {h['kline_us']:.1f} us per kline (order table, equity point, "
          f"SSE ring), {h['request_us']:.1f} us per order request (order table, metrics)")
    print(f"kline -> order headers on the socket (bench_live's path, {args.klines} klines per run, sandbox in "
          "its own process), without and with the gateway serving one SSE client")
    without: list[dict[str, float]] = []
    with_gw: list[dict[str, float]] = []
    for _ in range(args.rounds):
        without.append(asyncio.run(kline_to_order(args.klines, args.window, False)))
        with_gw.append(asyncio.run(kline_to_order(args.klines, args.window, True)))
    for name, runs in (("without gateway", without), ("with gateway   ", with_gw)):
        print(f"  {name}: p50 " + ", ".join(f"{r['p50']:.2f}" for r in runs) + " ms   p99 "
              + ", ".join(f"{r['p99']:.2f}" for r in runs) + " ms   ("
              + ", ".join(str(int(r['n'])) for r in runs) + " klines that traded"
              + (f"; {', '.join(str(int(r['sse'])) for r in runs)} SSE messages read)" if runs is with_gw else ")"))
    base = statistics.median(r["p50"] for r in without)
    added = statistics.median(r["p50"] for r in with_gw) / base - 1
    base99 = statistics.median(r["p99"] for r in without)
    added99 = statistics.median(r["p99"] for r in with_gw) / base99 - 1
    print(f"  added by the gateway: p50 {added:+.1%}   p99 {added99:+.1%}   target < 10 %: "
          f"{'met' if added < 0.10 else 'NOT met'}")


if __name__ == "__main__":
    main()
