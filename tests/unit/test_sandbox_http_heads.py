"""The lean front's two head parsers agree: the usual head read without llhttp, and llhttp's own reading.

:meth:`RestProtocol._parse_simple` serves the common shape of a request head and says None for anything else;
whatever it accepts must give exactly what the httptools path gives (serve it or not, method, URL, API key,
body length, keep-alive). The byte-for-byte comparison with aiohttp (tests/integration/test_sandbox_http.py)
then covers both paths.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from kinetic_empire.sandbox.http_server import MAX_HEADERS, RestProtocol

FAST = {(b"GET", b"/fapi/v1/order"), (b"POST", b"/fapi/v1/order"), (b"DELETE", b"/fapi/v1/order"),
        (b"PUT", b"/fapi/v1/order"), (b"GET", b"/fapi/v1/ping")}
KEY = "k" * 64
QUERY = "symbol=FILUSDT&side=BUY&type=LIMIT&quantity=10&price=4.000&timestamp=1690848000000&signature=" + "a" * 64


def protocol() -> RestProtocol:
    return RestProtocol(SimpleNamespace(fast=FAST))  # type: ignore[arg-type]  # the parsers read only .fast


def head(line: str, *headers: str) -> bytes:
    return (line + "\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode("latin-1")


LINES = [f"POST /fapi/v1/order?{QUERY} HTTP/1.1", f"GET /fapi/v1/order?{QUERY} HTTP/1.1",
         "DELETE /fapi/v1/order?symbol=FILUSDT&origClientOrderId=a%2Bb+c HTTP/1.1", "GET /fapi/v1/ping HTTP/1.1",
         "GET /fapi/v1/nothing HTTP/1.1", "PATCH /fapi/v1/order HTTP/1.1", "HEAD /fapi/v1/ping HTTP/1.1",
         "GET /fapi/v1/ping HTTP/1.0", "GET /fapi/v1/p%69ng HTTP/1.1", "GET /fapi/v1/ping?a=\"b\" HTTP/1.1",
         "GET /fapi/v1/ping#frag HTTP/1.1"]
EXTRAS = [(), ("Connection: close",), ("Connection: keep-alive",), ("connection:  Close \t",),
          ("Connection: keep-alive, close",), ("Connection: Upgrade", "Upgrade: websocket"),
          ("Content-Length: 5",), ("Content-Length: 0010",), ("Content-Length: 0",), ("Content-Length: x1",),
          ("Content-Length: 5", "Content-Length: 5"), ("Transfer-Encoding: chunked",), ("Expect: 100-continue",),
          ("Proxy-Connection: close",), ("Content-Encoding: gzip",), ("User-Agent: a", "User-Agent: b"),
          (f"X-MBX-APIKEY:  \t{KEY} \t",), (f"X-MBX-APIKEY: {KEY}", "x-mbx-apikey: second"), ("X-MBX-APIKEY:",),
          ("X-Tab: a\tb",), ("X-High: caf\xe9",), ("X-Empty:",), ("Bad Name: x",),
          tuple(f"X-H{i}: v" for i in range(MAX_HEADERS + 1))]
HOSTS = [("Host: 127.0.0.1:8080",), (), ("Host: a", "Host: b")]


def fields(p: RestProtocol) -> tuple[object, ...]:
    return p._method, p._url, p._api_key, p._length, p._keep_alive


@pytest.mark.parametrize("line", LINES)
def test_the_simple_parser_agrees_with_llhttp_wherever_it_answers(line: str) -> None:
    answered = 0
    for host, extra in itertools.product(HOSTS, EXTRAS):
        raw = head(line, *host, *extra, f"X-MBX-APIKEY: {KEY}", "Accept-Encoding: identity")  # a key in extra wins
        simple, llhttp = protocol(), protocol()
        got = simple._parse_simple(raw)
        if got is None:
            continue
        answered += 1
        want = llhttp._parse_llhttp(raw)
        assert got == want, f"{raw!r}: simple {got}, llhttp {want}"
        if got:
            assert fields(simple) == fields(llhttp), raw
    usual = line.split()[0] in ("GET", "POST", "PUT", "DELETE") and line.endswith("HTTP/1.1") and not (
        {"#", '"'} & set(line))
    assert bool(answered) == usual  # the usual shapes take the simple path, and only they


def test_the_usual_signed_request_is_read_without_llhttp() -> None:
    raw = head(f"POST /fapi/v1/order?{QUERY} HTTP/1.1", "Host: 127.0.0.1:8080", f"X-MBX-APIKEY: {KEY}",
               "Accept-Encoding: identity", "Content-Length: 0")
    p = protocol()
    assert p._parse_head(raw) is True and p._simple
    assert fields(p) == (b"POST", f"/fapi/v1/order?{QUERY}".encode(), KEY, 0, True)


@pytest.mark.parametrize("extra", ["Transfer-Encoding: chunked", "Connection: keep-alive, close", "X-High: caf\xe9",
                                   "Upgrade: websocket"])
def test_anything_unusual_goes_to_llhttp(extra: str) -> None:
    raw = head("GET /fapi/v1/ping HTTP/1.1", "Host: a", extra)
    assert protocol()._parse_simple(raw) is None
