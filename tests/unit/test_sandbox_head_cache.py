"""A connection reads a repeated header block once: the cached reading must be what a fresh reading gives.

:meth:`RestProtocol._parse_simple` keeps the previous simple head's header block and its reading
(:func:`read_header_block`); the next head with the same block reuses it. Here one protocol reads every head of
the head-parser tests one after another, each twice in a row and then again later, and must agree each time with a
protocol that reads that head alone.
"""

from __future__ import annotations

import itertools

from kinetic_empire.sandbox.http_server import read_header_block
from tests.unit.test_sandbox_http_heads import EXTRAS, HOSTS, KEY, LINES, fields, head, protocol

SIMPLE_LINES = {line.encode() for line in LINES if line.split()[0] in ("GET", "POST", "PUT", "DELETE")
                and line.endswith("HTTP/1.1") and not {"#", '"'} & set(line)}


def heads() -> list[bytes]:
    out = []
    for line, host, extra in itertools.product(LINES, HOSTS, EXTRAS):
        out.append(head(line, *host, *extra, f"X-MBX-APIKEY: {KEY}"))
        out.append(head(line, *host, *extra, "X-MBX-APIKEY: other"))  # same shape, another key
    return out


def test_one_connection_reading_heads_in_turn_agrees_with_fresh_readings() -> None:
    all_heads = heads()
    order = [*all_heads, *all_heads[::-1], *all_heads[::7]]
    conn = protocol()
    hits = simple_lines = 0
    for raw in order:
        for second in (False, True):  # the second time the block comes from the cache (when the line is simple)
            block = conn._block
            got = conn._parse_simple(raw)
            fresh = protocol()
            want = fresh._parse_simple(raw)
            assert got == want, raw
            if got:
                assert fields(conn) == fields(fresh), raw
            if second and raw.split(b"\r\n", 1)[0] in SIMPLE_LINES:
                simple_lines += 1
                hits += conn._block is block
    assert simple_lines and hits == simple_lines  # the cache served every repeat


def test_the_block_reading_depends_on_the_block_alone() -> None:
    block = f"Host: a\r\nX-MBX-APIKEY: {KEY}\r\nContent-Length: 12\r\nConnection: close\r\n\r\n".encode()
    assert read_header_block(block) == (KEY, 12, False)
    assert read_header_block(b"\r\n") is False  # no Host: aiohttp's to refuse
    assert read_header_block(b"Host: a\r\nTransfer-Encoding: chunked\r\n\r\n") is None
    assert read_header_block(b"Host: a\r\n") is None  # not a whole block
