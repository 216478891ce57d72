"""A scripted HTTP/1.1 server on loopback, for clients' edge cases (a socket closed under a kept-alive
connection, chunked or cut bodies, stalls): each request gets the next scripted reply."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

Reply = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]
"""Answers one request (its head as received); returns False to close the connection afterwards."""


class Scripted:
    """An HTTP server on 127.0.0.1 answering each request with the next scripted reply (the last one repeats)."""

    def __init__(self, *replies: Reply, ssl_context: ssl.SSLContext | None = None) -> None:
        self.replies = list(replies)
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = 0
        self.ssl = ssl_context
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def closed_count(self, n: int) -> Callable[[], bool]:
        return lambda: self.closed == n

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.ssl else 'http'}://{host}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(head)
                reply = self.replies[min(len(self.requests) - 1, len(self.replies) - 1)]
                if not await reply(head, writer):
                    return
        finally:
            writer.close()
            self.closed += 1


def answer(body: bytes = b'{"ok":1}', status: str = "200 OK", headers: str = "", keep: bool = True) -> Reply:
    async def reply(_head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}"
                f"\r\n".encode() + body)
        await w.drain()
        return keep
    return reply
