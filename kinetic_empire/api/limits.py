"""Oversized request bodies end at the door: 413 with a JSON error, before any route parses them.

Write bodies are JSON whatever ``Content-Type`` a client sent (``curl -d`` says form-encoded): the header
is set to ``application/json`` on the way in, so a malformed body is reported as malformed JSON, naming it.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: the body is read first (at most ``max_bytes``); a longer one gets 413, unparsed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _reject(send, self.max_bytes)
            return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _reject(send, self.max_bytes)
                return
            if not message.get("more_body", False):
                break

        if scope["method"] == "POST" and scope["path"].startswith("/api/"):
            scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
                     + [(b"content-type", b"application/json")]}

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


async def _reject(send: Send, limit: int) -> None:
    data = json.dumps({"error": f"request body over {limit} bytes", "field": "body"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
