"""A lean keep-alive HTTP/1.1 client for the latency-critical requests (order placement and cancels).

aiohttp spends about 300 µs of CPU per request on its general machinery (middlewares, cookie jar, URL
objects, response objects, tracing); an order's path needs none of it. This client writes the request in one
``transport.write`` on a kept-alive connection and parses the reply with ``httptools`` (llhttp), so an order costs a
fraction of that. What it must still do right against the real venue:

* HTTPS with certificate verification (``ssl.create_default_context()``, the server name checked), ``Host``;
* keep-alive: connections are reused; one the server closed (``Connection: close``, an EOF or stray bytes seen
  while idle, or idle longer than ``idle_s``) is never reused, a new one is opened;
* bodies framed by ``Content-Length``, ``chunked`` or the connection's end; ``gzip``/``deflate`` decoded (only
  those are offered in ``Accept-Encoding``);
* one deadline per request (connect, send and reply), kept on the injected clock.

It says what happened, not what it means: :class:`ConnectFailed` (nothing was sent), :class:`ExchangeFailed`
(sent, no usable reply: the venue may have acted), :class:`Unsupported` (nothing sent; use another client).
:mod:`.rest` maps these to its error classes exactly as it maps aiohttp's. No proxy support: the aiohttp session
it stands in for uses none either (``trust_env`` is off).
"""

from __future__ import annotations

import asyncio
import select
import ssl
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from ..core.clock import Clock
from .http_deadlines import Deadline, Deadlines

USER_AGENT = "kinetic-empire"
ACCEPT_ENCODING = "gzip, deflate"
# refused in a request target: CR, LF, space, tab; in a header: CR, LF (checked by ``in`` tests, no generator)


class HttpFailure(Exception):
    """A request without a usable reply."""

    sent = False


class ConnectFailed(HttpFailure):
    """No connection (refused, DNS, TLS handshake, certificate): the request never left."""


class Unsupported(HttpFailure):
    """This client does not do that (scheme, method, characters); nothing was sent."""


class ExchangeFailed(HttpFailure):
    """The request left (or may have); the reply was cut, malformed or late. ``timed_out`` says which;
    ``answered`` says whether the reply's headers had arrived."""

    sent = True

    def __init__(self, message: str, *, timed_out: bool = False, answered: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.answered = answered


class Headers(dict[str, str]):
    """Reply headers by lower-case name; ``get`` takes any case (repeated names are joined with ``, ``)."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key.lower()) if isinstance(key, str) else False


@dataclass(slots=True)
class Reply:
    status: int
    headers: Headers
    body: bytes


class _Connection(asyncio.Protocol):
    """One socket: writes a request, parses its reply; ``reusable`` once a reply completed on it cleanly."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reusable = False
        self.waiter: asyncio.Future[Reply] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers = Headers()
        self._body: list[bytes] = []
        self._answered = False  # the reply's headers are in
        self._framed = False  # the body has a length or is chunked (else it ends with the connection)
        self._complete = False

    # -------------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done() or self._complete:
            self.abort()  # bytes nobody asked for: this connection cannot be trusted with another request
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("the server switched protocols")
        except httptools.HttpParserError as exc:
            self._fail(f"malformed HTTP reply: {exc}")

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self._answered and not self._framed and not self._complete:
            self._finish()  # a body delimited by the connection's end is complete now
            return
        why = f": {exc}" if exc else ""
        self._fail(f"the server closed the connection before the reply was complete{why}")

    # -------------------------------------------------------------------- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = dict.get(self._headers, key)
        dict.__setitem__(self._headers, key, text if old is None else f"{old}, {text}")

    def on_headers_complete(self) -> None:
        self._answered = True
        h = self._headers
        self._framed = "content-length" in h or "chunked" in (dict.get(h, "transfer-encoding") or "").lower()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim reply (100 Continue, 103 Early Hints): the real one follows
            self._headers, self._body, self._answered = Headers(), [], False
            return
        self._finish()
        self.reusable = not self.closed and self._parser.should_keep_alive()

    # -------------------------------------------------------------------- ours
    def send(self, data: bytes, waiter: asyncio.Future[Reply]) -> None:
        assert self.transport is not None
        self.waiter = waiter
        self.reusable = False
        self._headers, self._body, self._answered, self._framed, self._complete = Headers(), [], False, False, False
        self.transport.write(data)

    def _finish(self) -> None:
        self._complete = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            body = decode_body(b"".join(self._body), self._headers.get("content-encoding"))
        except ValueError as exc:
            self.abort()
            waiter.set_exception(ExchangeFailed(str(exc), answered=True))
            return
        waiter.set_result(Reply(self._parser.get_status_code(), self._headers, body))

    def _fail(self, message: str) -> None:
        waiter = self.waiter
        answered = self._answered
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(ExchangeFailed(message, answered=answered))

    def stale(self) -> bool:
        """Closed, or readable while idle (an EOF, a TLS close_notify or stray bytes the loop has not seen yet)."""
        if self.closed or self.transport is None or self.transport.is_closing():
            return True
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def abort(self) -> None:
        self.reusable = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def decode_body(body: bytes, encoding: str | None) -> bytes:
    """The body without its content coding; ValueError for a coding we did not offer."""
    if not encoding or not body:
        return body
    coding = encoding.strip().lower()
    if coding == "identity":
        return body
    if coding in ("gzip", "x-gzip"):
        try:
            d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            return d.decompress(body) + d.flush()
        except zlib.error as exc:
            raise ValueError(f"gzip body does not decode: {exc}") from None
    if coding == "deflate":  # zlib-wrapped as the RFC says; some servers send it raw
        for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
            try:
                d = zlib.decompressobj(wbits=wbits)
                return d.decompress(body) + d.flush()
            except zlib.error:
                continue
        raise ValueError("deflate body does not decode")
    raise ValueError(f"reply in a content coding not offered: {encoding!r}")


@dataclass(slots=True)
class InFlight:
    """A request :meth:`HttpClient.begin` wrote; :meth:`HttpClient.finish` waits for its reply."""

    conn: _Connection
    waiter: asyncio.Future[Reply]
    deadline: Deadline
    settled: bool = False


class HttpClient:
    """Keep-alive HTTP/1.1 to one origin (``base_url``'s scheme, host and port)."""

    def __init__(self, base_url: str, *, clock: Clock, timeout_s: float = 10.0, idle_s: float = 15.0,
                 max_idle: int = 8, ssl_context: ssl.SSLContext | None = None) -> None:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise Unsupported(f"not an http(s) URL: {base_url!r}")
        self.tls = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.prefix = u.path.rstrip("/")
        self.ssl = (ssl_context or ssl.create_default_context()) if self.tls else None
        self.clock = clock
        self.timeout_s = timeout_s
        self.idle_s = idle_s
        self.max_idle = max_idle
        self._head = (f"Host: {host if default_port else f'{host}:{self.port}'}\r\nUser-Agent: {USER_AGENT}\r\n"
                      f"Accept: */*\r\nAccept-Encoding: {ACCEPT_ENCODING}\r\n")
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()  # carrying a request now: close() cuts them (unknown outcomes)
        self._deadlines = Deadlines(clock)
        self.opened = 0
        """Connections opened so far (a reused connection does not count)."""
        self.on_write: Callable[[bytes], None] | None = None
        """Called with a request's bytes right after they are written to the socket (latency probes)."""
        self.pings = 0
        """Keep-warm requests answered (:meth:`keep_warm`)."""

    async def warm(self, connections: int = 2) -> int:
        """Open up to ``connections`` idle connections ahead of the first request (TCP and TLS handshakes off the
        first order's path); failures are left for that request to meet. Returns how many were opened."""
        missing = connections - len(self._idle)
        if missing <= 0:
            return 0
        opened = await asyncio.gather(*(self._open() for _ in range(missing)), return_exceptions=True)
        fresh = [c for c in opened if isinstance(c, _Connection)]
        for conn in fresh:
            self._release(conn)
        return len(fresh)

    async def keep_warm(self, request: bytes, every_s: float, *, connections: int = 2,
                        on_reply: Callable[[Reply], None] | None = None) -> None:
        """Until cancelled: every ``every_s`` (on the injected clock) send ``request`` (made by :meth:`request_bytes`;
        a cheap one such as a ping) on each idle connection that has rested ``every_s / 2`` or more, and open
        connections up to ``connections``. So no connection rests longer than ``1.5 * every_s`` (keep it under
        ``idle_s`` and the venue's idle limit), and an order after a quiet minute finds one ready instead of paying
        a TCP and TLS handshake. Failures are not raised: the connection is dropped and a fresh one opened."""
        if not 0 < every_s * 1.5 < self.idle_s:
            raise ValueError(f"keep_warm every_s={every_s:g}: a connection would rest past idle_s={self.idle_s:g}")
        while True:
            await self.clock.sleep(every_s)
            await self.ping_idle(request, every_s / 2, on_reply)
            await self.warm(connections)

    async def ping_idle(self, request: bytes, rested_s: float, on_reply: Callable[[Reply], None] | None = None) -> int:
        """Send ``request`` on every idle connection that has rested ``rested_s`` or more, one at a time (the others
        stay free for orders); returns how many answered. One that fails is dropped."""
        now = self.clock.monotonic()
        due = [c for c in self._idle if now - c.idle_since >= rested_s]
        answered = 0
        for conn in due:
            if conn not in self._idle:  # an order took it meanwhile
                continue
            self._idle.remove(conn)
            if conn.stale() or self.clock.monotonic() - conn.idle_since >= self.idle_s:
                conn.abort()
                continue
            try:
                reply = await self.finish(self._send(conn, request, self._deadlines.add(self.timeout_s)))
            except HttpFailure:
                continue
            answered += 1
            self.pings += 1
            if on_reply is not None:
                on_reply(reply)
        return answered

    async def close(self) -> None:
        """Close every connection; a request still waiting for its reply fails as :class:`ExchangeFailed` (sent,
        outcome unknown), as with aiohttp's session closing under it."""
        for c in [*self._idle, *self._busy]:
            c.abort()
        self._idle.clear()
        self._busy.clear()
        await asyncio.sleep(0)  # the aborted transports report connection_lost: their waiters fail now
        self._deadlines.close()

    def request_bytes(self, method: str, target: str, headers: dict[str, str] | None, body: bytes) -> bytes:
        if method not in ("GET", "POST", "PUT", "DELETE"):
            raise Unsupported(f"method {method!r}")
        if "\r" in target or "\n" in target or " " in target or "\t" in target or not target.startswith("/"):
            raise Unsupported(f"request target with characters HTTP cannot carry: {target[:60]!r}")
        lines = [f"{method} {self.prefix}{target} HTTP/1.1\r\n", self._head]
        for k, v in (headers or {}).items():
            if "\r" in k or "\n" in k or "\r" in v or "\n" in v:
                raise Unsupported(f"header {k!r} has a line break")
            lines.append(f"{k}: {v}\r\n")
        if body or method != "GET":
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1") + body

    async def request(self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"",
                      on_sent: Callable[[], Awaitable[None]] | None = None) -> Reply:
        """Send ``method target`` (path and query, already encoded) and return the whole reply.

        ``on_sent`` (if given) is awaited the moment the request is written to the socket (tracing)."""
        return await self.exchange(self.request_bytes(method, target, headers, body), on_sent)

    async def exchange(self, data: bytes, on_sent: Callable[[], Awaitable[None]] | None = None) -> Reply:
        """Send a request made by :meth:`request_bytes` and return the whole reply."""
        started = self.begin(data)
        if started is not None:
            return await self.finish(started, on_sent)
        deadlines = self._deadlines
        deadline = deadlines.add(self.timeout_s)
        conn: _Connection | None = None
        try:
            deadlines.arm()
            conn = await self._open()
        except asyncio.CancelledError:
            deadlines.settle(deadline)
            if not deadline.expired:
                raise
            self._uncancel()
            raise ExchangeFailed(f"no complete reply within {self.timeout_s:g} s", timed_out=True) from None
        except BaseException:
            deadlines.settle(deadline)
            raise
        return await self.finish(self._send(conn, data, deadline), on_sent)

    def begin(self, data: bytes) -> InFlight | None:
        """Write ``data`` now on a kept-alive connection, without yielding to the loop; None (nothing sent) if
        none is idle. :meth:`finish` (in the task that waits for the reply) returns the reply; until it runs, the
        request's deadline has no task to cancel and only marks it late."""
        conn = self._kept_alive()
        if conn is None:
            return None
        deadline = self._deadlines.add(self.timeout_s, task=None)
        return self._send(conn, data, deadline)

    def _send(self, conn: _Connection, data: bytes, deadline: Deadline) -> InFlight:
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._busy.add(conn)
        try:
            conn.send(data, waiter)
        except BaseException:
            self._busy.discard(conn)
            conn.abort()
            self._deadlines.settle(deadline)
            raise
        if self.on_write is not None:
            self.on_write(data)
        self._deadlines.arm()  # the watcher's task is made after the write: nothing waited for before it
        return InFlight(conn, waiter, deadline)

    async def finish(self, sent: InFlight, on_sent: Callable[[], Awaitable[None]] | None = None) -> Reply:
        """The reply to a request :meth:`begin` wrote (cut by the deadline or by :meth:`close` as
        :class:`ExchangeFailed`); ``on_sent`` (if given) is awaited first (tracing)."""
        conn, deadline = sent.conn, sent.deadline
        if sent.settled:
            raise RuntimeError("finish() called twice for one request")
        deadline.task = asyncio.current_task()
        try:
            if deadline.expired:  # late before this task ran
                raise asyncio.CancelledError
            if on_sent is not None:
                await on_sent()
            reply = await sent.waiter
        except asyncio.CancelledError:
            conn.abort()
            if not deadline.expired:
                raise
            self._uncancel()
            raise ExchangeFailed(f"no complete reply within {self.timeout_s:g} s", timed_out=True,
                                 answered=conn._answered) from None
        except BaseException:
            conn.abort()
            raise
        finally:
            self._settle(sent)
        if conn.reusable:
            self._release(conn)
        else:
            conn.abort()
        return reply

    def abandon(self, sent: InFlight) -> None:
        """Give up on a request :meth:`begin` wrote whose :meth:`finish` will not run (its task was cancelled
        before it started): the connection is dropped, the deadline settled. A no-op once settled."""
        if not sent.settled:
            sent.waiter.cancel()  # nobody reads it: the connection's end must not fail it unread
            sent.conn.abort()
            self._settle(sent)

    def _settle(self, sent: InFlight) -> None:
        if not sent.settled:
            sent.settled = True
            self._deadlines.settle(sent.deadline)
            self._busy.discard(sent.conn)

    @staticmethod
    def _uncancel() -> None:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()

    def _kept_alive(self) -> _Connection | None:
        """An idle connection that is still good (the latest first), or None."""
        now = self.clock.monotonic()
        idle = self._idle
        while idle:
            conn = idle.pop()
            if now - conn.idle_since < self.idle_s and not conn.stale():
                return conn
            conn.abort()
        return None

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                _Connection, self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.tls else None)
        except (OSError, ssl.SSLError) as exc:  # ssl.CertificateError is a ValueError and an SSLError
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        self.opened += 1
        return conn

    def _release(self, conn: _Connection) -> None:
        if len(self._idle) >= self.max_idle:
            conn.abort()
            return
        conn.idle_since = self.clock.monotonic()
        self._idle.append(conn)
