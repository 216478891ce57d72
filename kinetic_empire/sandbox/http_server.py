"""A lean HTTP/1.1 front for the REST table: asyncio's Protocol plus ``httptools``, aiohttp for the rest.

Why: at one request at a time, aiohttp's request machinery (parser wrapper, request and response objects, a
task per connection, the writer) cost about twice the gateway and handler together. This protocol parses a
request head with ``httptools`` (llhttp, the C parser uvicorn uses), calls :meth:`.gateway.Gateway.answer`
directly, runs it without a task when it does not wait (no faults), and writes the answer in one
``write()``, formatted byte for byte as aiohttp formats it (same headers, order, Date, Server).

It serves only what it can serve exactly as aiohttp would: an HTTP/1.1 request for a (method, path) of the
REST table, without ``Expect``, ``Transfer-Encoding`` or ``Upgrade``, with a head under 8190 bytes and a body
of at most 1 MiB given by Content-Length. Anything else (WebSocket upgrades, admin routes, unknown paths and
methods, HEAD, HTTP/1.0, chunked bodies, a head the parser refuses) hands the connection over to aiohttp's own
protocol, with every byte of that request and after it: aiohttp then answers it exactly as before, on the
same port, and keeps the connection. So clients need no other URL and every odd case keeps aiohttp's answer.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
from collections.abc import Coroutine, Generator
from http import HTTPStatus
from typing import Any, Literal

import httptools
from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from ..core.clock import Clock, LiveClock
from .gateway import Gateway, Reply

log = logging.getLogger(__name__)

MAX_HEAD = 8190  # aiohttp's max_line_size and max_field_size: a longer head is aiohttp's to judge
MAX_BODY = 1 << 20  # the application's client_max_size: a larger body gets aiohttp's 413 path
KEEPALIVE_S = 75.0  # aiohttp's keepalive_timeout: an idle connection is closed after this long
_STATUS = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_REFUSED = (httptools.HttpParserError, httptools.HttpParserUpgrade)  # upgrades are not parser errors
# aiohttp's checks beyond llhttp's (aiohttp/_http_parser.pyx), and headers that change what the request means:
# a request with any of them is aiohttp's to answer
_SINGLETONS = frozenset({b"content-length", b"content-location", b"content-range", b"content-type", b"etag", b"host",
                         b"max-forwards", b"server", b"transfer-encoding", b"user-agent"})
_NOT_PLAIN = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"content-encoding", b"sec-websocket-key1"})
MAX_HEADERS = 100  # aiohttp allows 128
_TAIL = b"Content-Type: application/json\r\nContent-Length: "
# The usual head, parsed without llhttp's per-header callbacks: a request line of a REST method, an absolute path of
# URL-safe characters, HTTP/1.1, then header lines of a token name and printable ASCII (no obs-fold, no bytes
# >= 0x80). llhttp (strict) parses any such head the same way; anything else goes through httptools as before.
# The two halves are matched apart (the request line has no CR or LF, so it ends at the first CRLF): the header
# block repeats from request to request on a kept-alive connection, and its reading is cached per connection.
_REQUEST_LINE = re.compile(rb"(GET|POST|PUT|DELETE) (/[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*) HTTP/1\.1")
_HEADER_BLOCK = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e]*\r\n)*\r\n")
# headers llhttp itself interprets (beyond Content-Length and Connection) or that take the request off the fast
# path: a simple head with one of them goes through httptools
_NOT_SIMPLE = _NOT_PLAIN | {b"proxy-connection"}
_KEEP = {b"close": False, b"keep-alive": True}  # Connection values read here; any other goes through httptools
_METHODS = {b"GET": "GET", b"POST": "POST", b"PUT": "PUT", b"DELETE": "DELETE"}


HeaderBlock = tuple[str | None, int, bool] | Literal[False] | None
"""What :func:`read_header_block` says of a header block."""


def read_header_block(block: bytes) -> HeaderBlock:
    """A simple head's header lines and the blank line after them, read as llhttp and aiohttp read them:
    (X-MBX-APIKEY, Content-Length, keep-alive) when this protocol serves the request, False when aiohttp must
    refuse it, None when the block is not of the simple shape (then httptools parses the head). A function of
    the bytes alone, so a connection may reuse its answer for the same block."""
    if _HEADER_BLOCK.fullmatch(block) is None:
        return None
    api_key: str | None = None
    length, keep_alive, host = 0, True, False
    lines = block.split(b"\r\n")
    del lines[-2:]  # the block ends with the blank line
    if len(lines) > MAX_HEADERS:
        return None
    seen: set[bytes] = set()
    for line in lines:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name in _NOT_SIMPLE:
            return None
        if name in _SINGLETONS:
            if name in seen:
                return False  # aiohttp refuses a second one
            seen.add(name)
            if name == b"content-length":
                value = value.strip(b" \t")
                if not value.isdigit():
                    return None
                length = int(value)
            elif name == b"host":
                host = True
        elif name == b"x-mbx-apikey":
            if api_key is None:
                api_key = value.strip(b" \t").decode("ascii")
        elif name == b"connection":
            keep = _KEEP.get(value.strip(b" \t").lower())
            if keep is None:
                return None
            keep_alive = keep
    if not host or length > MAX_BODY:
        return False
    return api_key, length, keep_alive


class _Yield:
    """Awaiting it yields ``value`` to the running task, as the coroutine that produced it did."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self.value)


async def _finish(coro: Coroutine[Any, Any, Reply], yielded: Any) -> Reply:
    """Go on driving ``coro``, whose first step ran outside any task and yielded ``yielded`` (a future it
    waits for): the task running this relays every wake-up, value and exception, as if it had run ``coro``."""
    while True:
        try:
            sent = await _Yield(yielded)
        except BaseException as exc:  # cancellation included: the coroutine sees it where it waits
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class RestProtocol(asyncio.Protocol):
    """One client connection: REST table requests answered here, in order; anything else handed to aiohttp."""

    def __init__(self, site: RestSite) -> None:
        self.site = site
        self.transport: asyncio.Transport | None = None
        self._ip = "?"
        self._buf = bytearray()  # unanswered bytes, starting at the first byte of the next request
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._method = b""
        self._simple = False  # the current request's head was parsed without httptools
        self._block = b"\x00"  # the previous simple head's header block (never a real one at first)
        self._block_read: HeaderBlock = None  # and read_header_block's answer for it
        self._api_key: str | None = None
        self._length = 0
        self._plain = True  # no header that takes the request off the fast path
        self._headers = 0
        self._seen: set[bytes] = set()  # singleton headers seen
        self._head = 0  # length of the current request's head once parsed, 0 before
        self._task: asyncio.Task[Reply] | None = None  # the answer being awaited (faults, async handlers)
        self._keep_alive = True
        self._write_paused = False
        self._read_paused = False
        self._running = False
        self.requests = 0  # answered requests, read by the idle sweep
        self.idle_sweeps = 0

    # ------------------------------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._ip = peer[0] if isinstance(peer, tuple) and peer else "?"
        self.site.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.site.conns.discard(self)
        self.transport = None  # an answer still being computed (an order under a latency fault) is not sent

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._serve()
        if self._task is not None and len(self._buf) > MAX_HEAD + MAX_BODY and self.transport is not None:
            self.transport.pause_reading()  # a client that pipelines without end waits for the answers first
            self._read_paused = True

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._serve()

    # ------------------------------------------------------------------------------------ httptools
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp strips the blanks before a value, aiohttp those after it
        self._headers += 1
        if name == b"x-mbx-apikey":
            if self._api_key is None:  # aiohttp's headers.get(): the first one
                self._api_key = value.decode("utf-8", "surrogateescape")
        elif name == b"content-length":
            self._length = int(value)  # llhttp has checked the digits
        elif name in _NOT_PLAIN:
            self._plain = False
        if name in _SINGLETONS:
            if name in self._seen:
                self._plain = False  # aiohttp refuses a second one
            self._seen.add(name)
        if b"\x00" in value:
            self._plain = False

    def on_headers_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()  # read here: llhttp resets it at message end

    # ------------------------------------------------------------------------------------ requests
    def _serve(self) -> None:
        """Answer every complete request in the buffer, in order, until one must wait."""
        if self._running:
            return
        self._running = True
        try:
            while self._buf and self.transport is not None and self._task is None and not self._write_paused:
                if not self._step():
                    return
        finally:
            self._running = False

    def _step(self) -> bool:
        """Take the next request as far as it goes; False when more bytes are needed or it left this protocol."""
        buf = self._buf
        if not self._head:
            end = buf.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
            if end < 0:
                if len(buf) > MAX_HEAD or buf.find(b"\n\n") >= 0:
                    self._hand_over()  # an oversize head or bare-LF line ends: aiohttp judges it
                return False
            if buf.find(b"\n\n", 0, end) >= 0 or not self._parse_head(bytes(buf[:end + 4])):
                self._hand_over()
                return False
            self._head = end + 4
        size = self._head + self._length
        if len(buf) < size:
            return False
        body = bytes(buf[self._head:size])
        if body and not self._simple:
            try:
                self._parser.feed_data(body)
            except _REFUSED:
                self._hand_over()
                return False
        del buf[:size]
        self._head = 0
        self._answer(body)
        return True

    def _parse_head(self, head: bytes) -> bool:
        """Parse one request head; True if this protocol serves the request (else aiohttp must)."""
        simple = self._parse_simple(head)
        self._simple = simple is not None
        return simple if simple is not None else self._parse_llhttp(head)

    def _parse_llhttp(self, head: bytes) -> bool:
        """:meth:`_parse_head` through httptools (llhttp and this protocol's callbacks), for any head."""
        self._url, self._api_key, self._length, self._plain, self._headers = b"", None, 0, True, 0
        self._seen.clear()
        try:
            self._parser.feed_data(head)
        except _REFUSED:  # malformed, or an upgrade: aiohttp gives its own answer
            return False
        parser = self._parser
        if (not self._plain or self._length > MAX_BODY or self._headers > MAX_HEADERS or b"host" not in self._seen
                or parser.get_http_version() != "1.1"):
            return False
        self._method = parser.get_method()
        return (self._method, self._url.partition(b"?")[0]) in self.site.fast

    def _parse_simple(self, head: bytes) -> bool | None:
        """The usual head without llhttp: True or False as :meth:`_parse_head` answers, None when the head is
        not of the simple shape (then httptools parses it)."""
        eol = head.find(b"\r\n")
        line = _REQUEST_LINE.fullmatch(head, 0, eol) if eol > 0 else None
        if line is None:
            return None
        block = head[eol + 2:]
        if block == self._block:  # the same headers as the connection's previous request
            headers = self._block_read
        else:
            headers = read_header_block(block)
            self._block, self._block_read = block, headers
        if headers is None or headers is False:
            return headers
        method, url = line.groups()
        self._url, self._method = url, method
        self._api_key, self._length, self._keep_alive = headers
        return (method, url.partition(b"?")[0]) in self.site.fast

    def _answer(self, body: bytes) -> None:
        method = _METHODS.get(self._method) or self._method.decode()
        path, _, query = self._url.decode("utf-8", "surrogateescape").partition("?")
        reply = self.site.gateway.respond(method, path, query, body, self._api_key, self._ip)
        if reply.__class__ is tuple:  # answered without waiting: the usual case
            self._send(reply)
            return
        coro: Coroutine[Any, Any, Reply] = reply  # type: ignore[assignment]
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            self._send(stop.value)
            return
        except BaseException:
            log.exception("sandbox: REST request failed outside the gateway")
            self._close()
            return
        # it waits (a fault's delay, an async handler): finish it in a task, answer when it is done
        self._task = asyncio.get_running_loop().create_task(_finish(coro, yielded))
        self._task.add_done_callback(self._answered)

    def _answered(self, task: asyncio.Task[Reply]) -> None:
        self._task = None
        if self._read_paused and self.transport is not None:
            self.transport.resume_reading()
        self._read_paused = False
        if task.cancelled():
            self._close()
            return
        exc = task.exception()
        if exc is not None:
            log.error("sandbox: REST request failed outside the gateway: %r", exc)
            self._close()
            return
        self._send(task.result())
        self._serve()

    def _send(self, reply: Reply) -> None:
        self.requests += 1
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        status, headers, body = reply
        head = "".join([f"{name}: {value}\r\n" for name, value in headers.items()]).encode()
        transport.write(b"".join((
            _STATUS.get(status) or f"HTTP/1.1 {status} \r\n".encode(), head, _TAIL, b"%d\r\n" % len(body),
            self.site.date_server(), b"\r\n" if self._keep_alive else b"Connection: close\r\n\r\n", body)))
        if not self._keep_alive:
            transport.close()
            self.transport = None

    def _hand_over(self) -> None:
        """From this request on, the connection is aiohttp's: its protocol gets the transport and the bytes."""
        transport = self.transport
        if transport is None:
            return
        self.site.conns.discard(self)
        self.transport = None
        proto = self.site.aiohttp_protocol()
        transport.set_protocol(proto)
        proto.connection_made(transport)
        if self._write_paused:
            proto.pause_writing()
        if self._read_paused:
            transport.resume_reading()
        data, self._buf = bytes(self._buf), bytearray()
        if data:
            proto.data_received(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def sweep(self) -> None:
        """Called every :data:`KEEPALIVE_S` / 5 seconds: close the connection after a whole idle timeout."""
        if self._task is not None or self._buf or self.requests:
            self.requests, self.idle_sweeps = 0, 0
            return
        self.idle_sweeps += 1
        if self.idle_sweeps >= 5:
            self._close()

    def abort(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.transport is not None:
            self.transport.abort()
            self.transport = None


class RestSite(web.BaseSite):
    """A TCP listener whose connections start on :class:`RestProtocol` (the runner must be set up)."""

    __slots__ = ("_clock", "_date", "_host", "_idle", "_port", "_second", "_sweeper", "conns", "fast", "gateway")

    def __init__(self, runner: web.BaseRunner, gateway: Gateway, clock: Clock, host: str, port: int) -> None:
        super().__init__(runner)
        self.gateway = gateway
        self.fast = {(method.encode(), path.encode()) for method, path in gateway.table}
        self.conns: set[RestProtocol] = set()
        self._host, self._port = host, port
        self._clock = clock  # the Date header shows server time
        self._idle = LiveClock()  # idle connections time out in real time, as aiohttp's do
        self._second = -1
        self._date = b""
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        server = self._server
        return server.sockets[0].getsockname()[1] if server is not None else self._port  # type: ignore[attr-defined]

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: RestProtocol(self), self._host, self._port)
        self._sweeper = loop.create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.conns):
            conn.abort()
        self.conns.clear()
        await super().stop()

    async def _sweep(self) -> None:
        while True:
            await self._idle.sleep(KEEPALIVE_S / 5)
            for conn in list(self.conns):
                conn.sweep()

    def aiohttp_protocol(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None
        return server()

    def date_server(self) -> bytes:
        """The ``Date`` and ``Server`` header lines, as aiohttp writes them (Date from the server clock)."""
        second = self._clock.now_ms() // 1000
        if second != self._second:
            self._second = second
            date = email.utils.formatdate(second, usegmt=True)
            self._date = f"Date: {date}\r\nServer: {SERVER_SOFTWARE}\r\n".encode()
        return self._date
