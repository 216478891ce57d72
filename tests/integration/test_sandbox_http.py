"""The lean HTTP front (sandbox/http_server.py) over real sockets: byte for byte what aiohttp alone answers.

Two sandboxes on the same ManualClock time get the same raw bytes, one with the lean front and one with
aiohttp alone (``lean_http=False``): every answer must be identical except the Date line (aiohttp's shows
the wall clock). The cases cover what the lean protocol serves itself and what it must hand to aiohttp
(upgrades, HEAD, unknown methods, HTTP/1.0, chunked bodies, malformed or oversize heads), pipelining, keep-alive,
bodies split across packets; then the behaviours that have no aiohttp twin to compare with.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

import pytest

from kinetic_empire.core.clock import ManualClock
from kinetic_empire.sandbox import FaultConfig, SandboxServer
from tests.support.sandbox import SYM, WALL0, config, sleepers
from tests.support.waiting import until

pytestmark = pytest.mark.integration

Chunks = list[bytes]


def signed(sb: SandboxServer, method: str, path: str, params: dict[str, str], *, in_body: bool = False,
           extra: str = "") -> bytes:
    """A raw signed request as a Binance client sends it (query string, or a form body)."""
    q = urlencode({**params, "timestamp": sb.venue.clock.now_ms()})
    q += "&signature=" + hmac.new(sb.api_secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    head = f"X-MBX-APIKEY: {sb.api_key}\r\nHost: 127.0.0.1\r\n{extra}"
    if in_body:
        return (f"{method} {path} HTTP/1.1\r\n{head}Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(q)}\r\n\r\n{q}").encode()
    return f"{method} {path}?{q} HTTP/1.1\r\n{head}\r\n".encode()


def mixed(sb: SandboxServer, method: str, path: str, query: dict[str, str]) -> bytes:
    """Parameters in the query, the timestamp and signature in a form body: signed over query + body."""
    q = urlencode(query)
    b = urlencode({"timestamp": sb.venue.clock.now_ms()})
    b += "&signature=" + hmac.new(sb.api_secret.encode(), (q + b).encode(), hashlib.sha256).hexdigest()
    return (f"{method} {path}?{q} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-MBX-APIKEY: {sb.api_key}\r\n"
            f"Content-Length: {len(b)}\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n{b}").encode()


def plain(line: str, headers: str = "") -> bytes:
    return f"{line}\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode()


ORDER = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "10", "price": "4.000"}
WS_UPGRADE = plain("GET /market/ws/filusdt@kline_1m HTTP/1.1", "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


def cases(sb: SandboxServer) -> list[tuple[str, Chunks, int]]:
    """(name, what the client writes, one write after another, how many answers it reads)."""
    def order(cid: str) -> bytes:
        return signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": cid})

    form = signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "h2"}, in_body=True)
    form3 = signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "h3"}, in_body=True)
    form4 = signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "h4"}, in_body=True)
    form5 = signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "h5"}, in_body=True)
    form6 = signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "h9"}, in_body=True)
    form7 = signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "h10"}, in_body=True)
    chunked = form5.replace(b"Content-Length: ", b"Transfer-Encoding: chunked\r\nX-Old-Length: ")
    head, _, body = chunked.partition(b"\r\n\r\n")
    chunked = head + b"\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return [
        ("ping", [plain("GET /fapi/v1/ping HTTP/1.1")], 1),
        ("server time", [plain("GET /fapi/v1/time HTTP/1.1")], 1),
        ("exchangeInfo", [plain("GET /fapi/v1/exchangeInfo HTTP/1.1")], 1),
        ("signed order in the query", [order("h1")], 1),
        ("signed order in a form body", [form], 1),
        ("query and body mixed", [mixed(sb, "GET", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "h1"})], 1),
        ("cancel", [signed(sb, "DELETE", "/fapi/v1/order", {"symbol": SYM, "origClientOrderId": "h1"})], 1),
        ("bad signature", [order("hx").replace(b"signature=", b"signature=0")], 1),
        ("no API key", [order("hy").replace(b"X-MBX-APIKEY", b"X-Other")], 1),
        ("API key with blanks around it", [order("h6").replace(b"X-MBX-APIKEY: ", b"X-MBX-APIKEY:  \t ")
                                           .replace(b"\r\nHost", b" \t\r\nHost")], 1),
        ("two API keys: the first counts", [order("h7").replace(b"Host:", b"X-MBX-APIKEY: nope\r\nHost:")], 1),
        ("unknown parameter", [signed(sb, "GET", "/fapi/v2/balance", {"bogus": "1"})], 1),
        ("duplicate parameter", [plain("GET /fapi/v1/depth?symbol=FILUSDT&symbol=FILUSDT HTTP/1.1")], 1),
        ("Connection: close", [plain("GET /fapi/v1/ping HTTP/1.1", "Connection: close\r\n")], 1),
        ("Connection: keep-alive", [plain("GET /fapi/v1/ping HTTP/1.1", "Connection: keep-alive\r\n")] * 2, 2),
        ("HTTP/1.0", [b"GET /fapi/v1/ping HTTP/1.0\r\n\r\n"], 1),
        ("no Host header", [b"GET /fapi/v1/ping HTTP/1.1\r\n\r\n"], 1),
        ("two Host headers", [plain("GET /fapi/v1/ping HTTP/1.1", "Host: again\r\n")], 1),
        ("NUL in a header value", [plain("GET /fapi/v1/ping HTTP/1.1", "X-A: a\x00b\r\n")], 1),
        ("HEAD", [plain("HEAD /fapi/v1/ping HTTP/1.1")], 1),
        ("OPTIONS", [plain("OPTIONS /fapi/v1/ping HTTP/1.1")], 1),
        ("unknown method", [plain("PATCH /fapi/v1/order HTTP/1.1")], 1),
        ("unknown path", [plain("GET /fapi/v1/nothing HTTP/1.1")], 1),
        ("method not allowed", [plain("PUT /fapi/v1/ping HTTP/1.1")], 1),
        ("percent-encoded path", [plain("GET /fapi/v1/p%69ng HTTP/1.1")], 1),
        ("malformed request line", [b"GARBAGE\r\n\r\n"], 1),
        ("bad HTTP version", [b"GET /fapi/v1/ping HTTP/9.x\r\n\r\n"], 1),
        ("header without colon", [plain("GET /fapi/v1/ping HTTP/1.1", "NoColon\r\n")], 1),
        ("oversize header", [plain("GET /fapi/v1/ping HTTP/1.1", f"X-Big: {'a' * 9000}\r\n")], 1),
        ("bad Content-Length", [b"POST /fapi/v1/order HTTP/1.1\r\nContent-Length: x1\r\n\r\n"], 1),
        ("chunked body", [chunked], 1),
        ("Expect: 100-continue", [plain("GET /fapi/v1/ping HTTP/1.1", "Expect: 100-continue\r\n")], 1),
        ("three pipelined in one write", [plain("GET /fapi/v1/ping HTTP/1.1") * 2 + form3], 3),
        ("body split across packets", [form4[:40], form4[40:-7], form4[-7:]], 1),
        ("head split inside a line", [plain("GET /fapi/v1/time HTTP/1.1")[:9], plain("GET /fapi/v1/time HTTP/1.1")[9:]],
         1),
        ("REST then a WebSocket upgrade, same connection", [plain("GET /fapi/v1/ping HTTP/1.1") + WS_UPGRADE], 2),
        ("pipelined behind an unknown path", [plain("GET /x HTTP/1.1") + plain("GET /fapi/v1/ping HTTP/1.1")], 2),
        # a form body read without llhttp, then a head llhttp must read (a byte >= 0x80), then a simple one again
        ("simple, llhttp, simple on one connection",
         [form6 + order("h8").replace(b"Host:", b"X-Note: caf\xc3\xa9\r\nHost:") + plain("GET /fapi/v1/time HTTP/1.1")],
         3),
        ("Connection: close in capitals", [plain("GET /fapi/v1/ping HTTP/1.1", "connection:  Close \t\r\n")], 1),
        ("a Content-Length with leading zeros", [form7.replace(b"Content-Length: ", b"Content-Length: 000")], 1),
    ]


async def read_answer(reader: asyncio.StreamReader, head_only: bool = False) -> bytes:
    """One HTTP answer: its head, then as many body bytes as Content-Length says (none after a HEAD or a 101)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    if head_only or length is None:
        return head
    return head + await reader.readexactly(int(length.group(1)))


async def talk(port: int, chunks: Chunks, answers: int, head_only: bool = False) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)  # let the server take this packet alone
        return [re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", await asyncio.wait_for(read_answer(reader, head_only), 10))
                for _ in range(answers)]
    finally:
        writer.close()


async def twins(body: Callable[[SandboxServer, SandboxServer], object], **cfg: object) -> None:
    async with SandboxServer(config(**cfg), clock=ManualClock(WALL0)) as lean, \
            SandboxServer(config(**cfg), clock=ManualClock(WALL0), lean_http=False) as plain_aiohttp:
        await lean.step(3)
        await plain_aiohttp.step(3)
        await body(lean, plain_aiohttp)  # type: ignore[misc]


def run_on(loop: str, coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on asyncio's loop or on uvloop's (the standalone sandbox's default when installed)."""
    if loop == "asyncio":
        asyncio.run(coro)
        return
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_lean_front_answers_byte_for_byte_as_aiohttp(loop: str) -> None:
    async def body(lean: SandboxServer, ref: SandboxServer) -> None:
        from kinetic_empire.sandbox.http_server import RestSite

        assert isinstance(lean._runner._sites[0], RestSite)  # type: ignore[union-attr]
        served_here = 0
        for (name, chunks, n), (_, ref_chunks, _) in zip(cases(lean), cases(ref), strict=True):
            got = await talk(lean.port, chunks, n, head_only=name == "HEAD")  # type: ignore[arg-type]
            want = await talk(ref.port, ref_chunks, n, head_only=name == "HEAD")  # type: ignore[arg-type]
            assert got == want, f"{name}: lean {got!r}\n aiohttp {want!r}"
            served_here += 1
        assert served_here == len(cases(lean))
        # what was placed is the same on both
        placed = ["h10", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"]
        assert sorted(o.client_order_id for o in lean.account().exchange.open_orders()) == placed
        assert sorted(o.client_order_id for o in ref.account().exchange.open_orders()) == placed

    run_on(loop, asyncio.wait_for(twins(body), 60))


def test_statuses_of_the_edge_cases() -> None:
    """What the comparison above cannot say by itself: the answers are the right ones, not just equal."""
    async def body(lean: SandboxServer, _: SandboxServer) -> None:
        status = {}
        for name, chunks, n in cases(lean):
            answers = await talk(lean.port, chunks, n, head_only=name == "HEAD")  # type: ignore[arg-type]
            status[name] = [int(a.split(b" ", 2)[1]) for a in answers]
        assert status["malformed request line"] == status["no Host header"] == status["two Host headers"] == [400]
        assert status["oversize header"][0] in (400, 431)
        assert status["three pipelined in one write"] == [200, 200, 200]
        assert status["body split across packets"] == [200]
        assert status["REST then a WebSocket upgrade, same connection"] == [200, 101]
        assert status["pipelined behind an unknown path"] == [404, 200]
        assert status["HEAD"] == status["OPTIONS"] == status["unknown method"] == [405]
        assert status["bad signature"] == [400] and status["no API key"] == [401]
        assert status["API key with blanks around it"] == status["two API keys: the first counts"] == [200]
        assert status["signed order in the query"] == status["signed order in a form body"] == [200]
        assert status["query and body mixed"] == status["cancel"] == status["chunked body"] == [200]
        assert status["simple, llhttp, simple on one connection"] == [200, 200, 200]
        assert status["Connection: close in capitals"] == status["a Content-Length with leading zeros"] == [200]

    asyncio.run(asyncio.wait_for(twins(body), 60))


def test_order_headers_and_connection_close() -> None:
    async def body(sb: SandboxServer, _: SandboxServer) -> None:
        answer, = await talk(sb.port, [signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "o1"},
                                              extra="Connection: close\r\n")], 1)
        head = answer.partition(b"\r\n\r\n")[0].split(b"\r\n")
        assert head[0] == b"HTTP/1.1 200 OK"
        assert [h.split(b":")[0] for h in head[1:5]] == [b"X-MBX-USED-WEIGHT-1M", b"X-MBX-ORDER-COUNT-10S",
                                                         b"X-MBX-ORDER-COUNT-1M", b"Content-Type"]
        assert head[2:4] == [b"X-MBX-ORDER-COUNT-10S: 1", b"X-MBX-ORDER-COUNT-1M: 1"]
        assert head[-1] == b"Connection: close"
        reader, writer = await asyncio.open_connection("127.0.0.1", sb.port)
        writer.write(plain("GET /fapi/v1/ping HTTP/1.1", "Connection: close\r\n") + plain("GET /fapi/v1/ping HTTP/1.1"))
        await read_answer(reader)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed: the pipelined second one is not served
        writer.close()

    asyncio.run(asyncio.wait_for(twins(body), 60))


def test_body_split_then_connection_closed_mid_body(caplog: pytest.LogCaptureFixture) -> None:
    """A body that arrives in parts is answered once whole; one cut short places nothing and breaks nothing."""
    async def body(sb: SandboxServer, _: SandboxServer) -> None:
        site = sb._runner._sites[0]  # type: ignore[union-attr]
        whole = signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "split"}, in_body=True)
        reader, writer = await asyncio.open_connection("127.0.0.1", sb.port)
        writer.write(whole[:-10])
        await until(lambda: any(c._head for c in site.conns), "the head is parsed, the body incomplete")
        writer.write(whole[-10:])
        assert (await asyncio.wait_for(read_answer(reader), 10)).startswith(b"HTTP/1.1 200 OK")
        form = signed(sb, "POST", "/fapi/v1/order", {**ORDER, "newClientOrderId": "cut"}, in_body=True)
        writer.write(form[:-10])
        await until(lambda: any(c._head for c in site.conns), "the head is parsed")
        writer.close()
        await until(lambda: not site.conns, "the server saw the close")
        assert [o.client_order_id for o in sb.account().exchange.open_orders()] == ["split"]
        answer, = await talk(sb.port, [plain("GET /fapi/v1/ping HTTP/1.1")], 1)
        assert answer.startswith(b"HTTP/1.1 200 OK")

    with caplog.at_level(logging.ERROR):
        asyncio.run(asyncio.wait_for(twins(body), 60))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_delayed_answer_keeps_pipelined_answers_in_order() -> None:
    """Under a latency fault the answer waits on the clock (in a task); the request behind it waits its turn."""
    clock = ManualClock(WALL0)

    async def main() -> None:
        cfg = config(faults=FaultConfig(enabled=True, latency_ms=(500.0, 500.0)))
        async with SandboxServer(cfg, clock=clock) as sb:
            reader, writer = await asyncio.open_connection("127.0.0.1", sb.port)
            writer.write(plain("GET /fapi/v1/time HTTP/1.1") + plain("GET /fapi/v1/ping HTTP/1.1"))
            await sleepers(clock, 1)
            first = asyncio.ensure_future(read_answer(reader))
            await asyncio.sleep(0.01)
            assert not first.done()
            await clock.advance(0.5)
            assert b'"serverTime":' in await asyncio.wait_for(first, 10)
            await sleepers(clock, 1)  # the second one now waits out its own delay
            await clock.advance(0.5)
            assert (await asyncio.wait_for(read_answer(reader), 10)).endswith(b"\r\n\r\n{}")
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_idle_connections_close_after_the_keepalive_timeout() -> None:
    async def body(sb: SandboxServer, _: SandboxServer) -> None:
        from kinetic_empire.sandbox.http_server import RestSite

        site = sb._runner._sites[0]  # type: ignore[union-attr]
        assert isinstance(site, RestSite)
        reader, writer = await asyncio.open_connection("127.0.0.1", sb.port)
        writer.write(plain("GET /fapi/v1/ping HTTP/1.1"))
        await read_answer(reader)
        conn, = site.conns
        conn.sweep()  # the sweep that sees the request: not idle yet
        for _ in range(4):
            conn.sweep()
        assert not reader.at_eof() and conn.transport is not None
        conn.sweep()  # five idle sweeps: one keep-alive timeout
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()

    asyncio.run(asyncio.wait_for(twins(body), 60))


def test_a_client_pipelining_behind_a_delayed_answer_is_paused() -> None:
    """While an answer waits, at most about one request's worth of bytes is buffered; then reading pauses."""
    clock = ManualClock(WALL0)

    async def main() -> None:
        cfg = config(faults=FaultConfig(enabled=True, latency_ms=(500.0, 500.0)))
        async with SandboxServer(cfg, clock=clock) as sb:
            site = sb._runner._sites[0]  # type: ignore[union-attr]
            reader, writer = await asyncio.open_connection("127.0.0.1", sb.port)
            writer.write(plain("GET /fapi/v1/time HTTP/1.1"))
            await sleepers(clock, 1)
            conn, = site.conns
            writer.write(plain("GET /fapi/v1/ping HTTP/1.1") * 40_000)  # about 1.5 MB
            await until(lambda: conn._read_paused, "reading paused")
            assert len(conn._buf) < 2 * (1 << 20)
            await clock.advance(0.5)
            assert b'"serverTime":' in await asyncio.wait_for(read_answer(reader), 10)
            await sleepers(clock, 1)  # the next one waits out its delay; reading resumed, then paused again
            await until(lambda: conn._read_paused, "reading paused again")
            assert len(conn._buf) < 2 * (1 << 20)
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 60))
