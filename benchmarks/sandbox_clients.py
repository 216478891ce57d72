"""The clients of ``bench_sandbox.py`` and the sandbox process they talk to.

* :func:`start_server`: the sandbox as its own process, from a given checkout; :func:`cpu_seconds` reads its CPU time.
* :class:`Signer`: HMAC-SHA256 query signing as a Binance client does it.
* Drivers for ``--versus`` (place, query and cancel cycles, returning each round trip's latency): a raw socket
  client, the engine's own order client (``binance.http_client`` with the engine's signer), and aiohttp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from yarl import URL

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "sandbox"


def start_server(state: Path | None, root: Path = ROOT, loop: str | None = None
                 ) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The sandbox process, from the checkout ``root`` (another one to compare with), on event loop ``loop``."""
    cmd = [sys.executable, "-m", "kinetic_empire.sandbox", "--data", str(DATA), "--port", "0", "--json",
           "--speed", "step", "--admin", "--no-limits", "--warmup", "30"]
    if state is not None:
        cmd += ["--state", str(state)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(root)}
    if loop is not None:
        env["KINETIC_SANDBOX_LOOP"] = loop
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=root, env=env)
    assert proc.stdout is not None
    return proc, {**json.loads(proc.stdout.readline()), "pid": str(proc.pid)}


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of process ``pid`` (Linux /proc; None elsewhere): the sandbox's own cost per
    request, which a busy machine inflates far less than it does wall-clock round trips."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Signer:
    def __init__(self, info: dict[str, str]) -> None:
        self.base = info["rest"]
        self.key = info["api_key"]
        self.secret = info["api_secret"].encode()

    def url(self, path: str, params: dict[str, object]) -> URL:
        params["timestamp"] = int(time.time() * 1000)
        q = urlencode(params)
        sig = hmac.new(self.secret, q.encode(), hashlib.sha256).hexdigest()
        return URL(f"{self.base}{path}?{q}&signature={sig}", encoded=True)


Driver = Callable[[int, int], Awaitable[list[float]]]
"""``await drive(first, cycles)``: that many place/query/cancel cycles (client ids from ``first``), latencies."""
ORDER_QUERY = "symbol=FILUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=10&price=4.000&newClientOrderId="


def raw_caller(info: dict[str, str]) -> tuple[Callable[[str, str], None], socket.socket]:
    """A raw keep-alive socket's ``call(method, query)`` on /fapi/v1/order: the query signed (HMAC-SHA256 over a
    fresh timestamp) and written in one ``sendall``, the answer read to its Content-Length, its status checked."""
    host, port = info["rest"].removeprefix("http://").split(":")
    secret = info["api_secret"].encode()
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tail = f" HTTP/1.1\r\nHost: {host}:{port}\r\nX-MBX-APIKEY: {info['api_key']}\r\n\r\n"
    buf = b""

    def call(method: str, query: str) -> None:
        nonlocal buf
        query = f"{query}&timestamp={int(time.time() * 1000)}"
        sig = hmac.digest(secret, query.encode(), "sha256").hex()
        sock.sendall(f"{method} /fapi/v1/order?{query}&signature={sig}{tail}".encode())
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += sock.recv(65536)
        head = buf[:end]
        at = head.find(b"\r\nContent-Length: ") + 18
        size = end + 4 + int(head[at:head.index(b"\r\n", at)])
        while len(buf) < size:
            buf += sock.recv(65536)
        if not head.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"{method}: {buf[:size]!r}")
        buf = buf[size:]

    return call, sock


def raw_cycle(cid: str) -> tuple[tuple[str, str], ...]:
    """One place/query/cancel cycle as (method, query) pairs for :func:`raw_caller`."""
    return (("POST", ORDER_QUERY + cid), ("GET", f"symbol=FILUSDT&origClientOrderId={cid}"),
            ("DELETE", f"symbol=FILUSDT&origClientOrderId={cid}"))


def param_cycle(cid: str) -> tuple[tuple[str, dict[str, object]], ...]:
    """The same cycle as (method, params) pairs, for clients that sign parameters themselves."""
    return (("POST", {"symbol": "FILUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "10",
                      "price": "4.000", "newClientOrderId": cid}),
            ("GET", {"symbol": "FILUSDT", "origClientOrderId": cid}),
            ("DELETE", {"symbol": "FILUSDT", "origClientOrderId": cid}))


async def raw_driver(info: dict[str, str], tag: str) -> tuple[Driver, Callable[[], Awaitable[None]]]:
    """:func:`raw_orders`'s client as a driver (blocking calls: nothing else runs meanwhile)."""
    call, sock = raw_caller(info)

    async def drive(first: int, cycles: int) -> list[float]:
        lat = []
        for n in range(first, first + cycles):
            for method, query in raw_cycle(f"{tag}{n}"):
                t = time.perf_counter()
                call(method, query)
                lat.append(time.perf_counter() - t)
        return lat

    async def close() -> None:
        sock.close()
    return drive, close


async def engine_driver(info: dict[str, str], tag: str) -> tuple[Driver, Callable[[], Awaitable[None]]]:
    """:func:`engine_orders`'s client (the engine's HttpClient and Signer) as a driver."""
    from kinetic_empire.binance.http_client import HttpClient
    from kinetic_empire.binance.signing import Signer as EngineSigner
    from kinetic_empire.core.clock import LiveClock

    clock = LiveClock()
    client = HttpClient(info["rest"], clock=clock, timeout_s=10.0)
    signer = EngineSigner(info["api_secret"])
    headers = {"X-MBX-APIKEY": info["api_key"]}

    async def drive(first: int, cycles: int) -> list[float]:
        lat = []
        for n in range(first, first + cycles):
            cid = f"{tag}{n}"
            for method, params in param_cycle(cid):
                t = time.perf_counter()
                reply = await client.request(method, f"/fapi/v1/order?{signer.query(params, clock.now_ms(), 5000)}",
                                             headers)
                json.loads(reply.body)
                if reply.status != 200:
                    raise RuntimeError(f"{method}: {reply.status} {reply.body!r}")
                lat.append(time.perf_counter() - t)
        return lat

    return drive, client.close


async def aiohttp_driver(info: dict[str, str], tag: str) -> tuple[Driver, Callable[[], Awaitable[None]]]:
    """:func:`bench_orders`'s client (aiohttp, one connection) as a driver."""
    signer = Signer(info)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
    headers = {"X-MBX-APIKEY": signer.key}

    async def drive(first: int, cycles: int) -> list[float]:
        lat = []
        for n in range(first, first + cycles):
            cid = f"{tag}{n}"
            for method, params in param_cycle(cid):
                t = time.perf_counter()
                async with session.request(method, signer.url("/fapi/v1/order", dict(params)),
                                           headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{method}: {r.status} {await r.text()}")
                lat.append(time.perf_counter() - t)
        return lat

    return drive, session.close
