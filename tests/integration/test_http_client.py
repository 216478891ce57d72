"""The lean HTTP/1.1 client (binance/http_client.py) against small scripted servers on loopback: keep-alive reuse,
a kept-alive socket the server closed, chunked, gzip and read-to-close bodies, a reply cut or stalled mid-way
(the request may have been executed: ExchangeFailed, never a silent retry), refused connections, and HTTPS with a
certificate made here (verified: a context that does not trust it, or a wrong host name, cannot connect)."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import ipaddress
import ssl
from collections.abc import Awaitable
from pathlib import Path

import pytest

from kinetic_empire.binance.http_client import (
    ConnectFailed,
    ExchangeFailed,
    HttpClient,
    Unsupported,
    decode_body,
)
from kinetic_empire.core.clock import LiveClock, ManualClock
from tests.support.http_script import Scripted, answer
from tests.support.waiting import until

pytestmark = pytest.mark.integration

def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_a_kept_alive_connection_carries_many_requests_with_host_and_the_callers_headers() -> None:
    async def body() -> None:
        async with Scripted(answer(headers="X-MBX-USED-WEIGHT-1M: 7\r\n")) as srv:
            client = HttpClient(srv.url(), clock=LiveClock())
            for i in range(3):
                r = await client.request("POST", f"/fapi/v1/order?a={i}", {"X-MBX-APIKEY": "key-1"})
                assert (r.status, r.body) == (200, b'{"ok":1}')
                assert r.headers.get("x-mbx-used-weight-1m") == "7" and r.headers["X-MBX-USED-WEIGHT-1M"] == "7"
            await client.close()
        assert client.opened == 1 and srv.connections == 1
        head = srv.requests[2].decode()
        assert head.startswith("POST /fapi/v1/order?a=2 HTTP/1.1\r\n")
        assert f"\r\nHost: 127.0.0.1:{srv.port}\r\n" in head
        assert "\r\nX-MBX-APIKEY: key-1\r\n" in head and "\r\nContent-Length: 0\r\n" in head
        assert "\r\nAccept-Encoding: gzip, deflate\r\n" in head
    run(body())


def test_a_connection_the_server_closed_after_its_reply_is_not_reused() -> None:
    """No ``Connection: close``: the server just closes once it answered. The next request must go out on a new
    connection and succeed, however soon it follows (before or after the loop has seen the EOF)."""
    async def body() -> None:
        async with Scripted(answer(keep=False)) as srv:
            client = HttpClient(srv.url(), clock=LiveClock())
            for i in range(4):
                r = await client.request("POST", f"/fapi/v1/order?i={i}")
                assert r.status == 200
                if i % 2:  # every other time, let the server's close land before the next request
                    await until(srv.closed_count(i + 1), "the server closing its socket")
            await client.close()
        assert srv.connections == 4 and client.opened == 4
    run(body())


def test_connection_close_in_the_reply_retires_the_connection() -> None:
    async def body() -> None:
        async with Scripted(answer(headers="Connection: close\r\n"), answer()) as srv:
            client = HttpClient(srv.url(), clock=LiveClock())
            await client.request("GET", "/a")
            await client.request("GET", "/b")
            await client.request("GET", "/c")
            await client.close()
        assert client.opened == 2 and srv.connections == 2
    run(body())


def test_chunked_gzip_and_read_to_close_bodies() -> None:
    payload = b'{"symbol":"FILUSDT","orderId":42}' * 40
    packed = gzip.compress(payload)

    async def chunked(_h: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n")
        for i in range(0, len(packed), 100):
            part = packed[i:i + 100]
            w.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await w.drain()
        w.write(b"0\r\n\r\n")
        return True

    async def to_close(_h: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + payload)
        return False

    async def body() -> None:
        async with Scripted(chunked, to_close, answer()) as srv:
            client = HttpClient(srv.url(), clock=LiveClock())
            assert (await client.request("GET", "/x")).body == payload
            assert (await client.request("GET", "/y")).body == payload
            assert (await client.request("GET", "/z")).body == b'{"ok":1}'
            await client.close()
        assert srv.connections == 2  # the chunked one was reused once, the read-to-close one ended its connection
    run(body())


def test_content_codings_decode_or_say_what_they_are() -> None:
    import zlib

    data = b"x" * 300
    assert decode_body(gzip.compress(data), "gzip") == data
    assert decode_body(zlib.compress(data), "deflate") == data
    raw = zlib.compressobj(wbits=-15)
    assert decode_body(raw.compress(data) + raw.flush(), "deflate") == data
    with pytest.raises(ValueError, match="not offered: 'br'"):
        decode_body(b"abc", "br")
    with pytest.raises(ValueError, match="gzip body does not decode"):
        decode_body(b"not gzip", "gzip")


def test_a_reply_cut_mid_body_is_an_unknown_outcome_and_the_connection_is_dropped() -> None:
    async def cut(_h: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"orderId\":")
        await w.drain()
        return False

    async def body() -> None:
        async with Scripted(cut, answer()) as srv:
            client = HttpClient(srv.url(), clock=LiveClock())
            with pytest.raises(ExchangeFailed, match="closed the connection before the reply was complete") as e:
                await client.request("POST", "/fapi/v1/order?x=1")
            assert e.value.sent and e.value.answered and not e.value.timed_out
            assert (await client.request("POST", "/fapi/v1/order?x=2")).status == 200
            await client.close()
        assert client.opened == 2
    run(body())


def test_a_reply_that_stalls_times_out_on_the_injected_clock() -> None:
    """Headers and half a body, then nothing: when the clock passes the timeout the request fails as timed out
    (the venue may have acted) and its connection is not reused."""
    clock = ManualClock()
    stalled = asyncio.Event

    async def body() -> None:
        gate = stalled()

        async def stall(_h: bytes, w: asyncio.StreamWriter) -> bool:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"a\":")
            await w.drain()
            await gate.wait()
            return False

        async with Scripted(stall, answer()) as srv:
            client = HttpClient(srv.url(), clock=clock, timeout_s=5.0)
            task = asyncio.create_task(client.request("POST", "/fapi/v1/order?x=1"))
            await until(lambda: len(srv.requests) == 1 and clock.sleepers == 1, "the request sent, its deadline set")
            await clock.advance(4.9)
            assert not task.done()
            await clock.advance(0.2)
            with pytest.raises(ExchangeFailed, match="no complete reply within 5 s") as e:
                await task
            assert e.value.timed_out and e.value.answered and e.value.sent
            assert clock.sleepers == 0  # nothing in flight: the deadline watcher stopped
            assert (await client.request("GET", "/next")).status == 200
            assert client.opened == 2
            gate.set()
            await client.close()
    run(body())


def test_a_caller_cancelling_is_not_a_timeout() -> None:
    clock = ManualClock()

    async def body() -> None:
        async def never(_h: bytes, w: asyncio.StreamWriter) -> bool:
            await asyncio.Event().wait()
            return False

        async with Scripted(never) as srv:
            client = HttpClient(srv.url(), clock=clock)
            task = asyncio.create_task(client.request("GET", "/x"))
            await until(lambda: len(srv.requests) == 1, "the request sent")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert clock.sleepers == 0
            await client.close()
    run(body())


def test_nothing_listening_is_a_connect_failure_and_odd_requests_are_declined() -> None:
    async def body() -> None:
        async with Scripted(answer()) as srv:
            port = srv.port
        client = HttpClient(f"http://127.0.0.1:{port}", clock=LiveClock())
        with pytest.raises(ConnectFailed, match=f"cannot connect to 127.0.0.1:{port}") as e:
            await client.request("POST", "/fapi/v1/order")
        assert not e.value.sent
        for method, target, headers in (("POST", "/a b", {}), ("GET", "/a\r\nX: y", {}), ("HEAD", "/", {}),
                                        ("GET", "/", {"X-MBX-APIKEY": "k\r\nX-Evil: 1"})):
            with pytest.raises(Unsupported):
                await client.request(method, target, headers)
        await client.close()
    with pytest.raises(Unsupported, match="not an http"):
        HttpClient("ws://127.0.0.1:1", clock=LiveClock())
    run(body())


# ------------------------------------------------------------------------------------------- TLS


def _certificate(tmp: Path, names: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for ``names`` (DNS names and IP addresses)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=365 * 30))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def test_https_verifies_the_certificate_and_keeps_the_connection_alive(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert, key = _certificate(tmp_path, ["localhost", "127.0.0.1"])
    trusting = ssl.create_default_context(cafile=str(cert))

    async def body() -> None:
        async with Scripted(answer(b'{"tls":true}'), ssl_context=_server_context(cert, key)) as srv:
            client = HttpClient(srv.url("localhost"), clock=LiveClock(), ssl_context=trusting)
            for _ in range(3):
                assert (await client.request("DELETE", "/fapi/v1/order?s=1")).body == b'{"tls":true}'
            await client.close()
            assert client.opened == 1 and srv.connections == 1
            assert f"\r\nHost: localhost:{srv.port}\r\n" in srv.requests[0].decode()
            # the system's trust store does not know this certificate: no connection, nothing sent
            strict = HttpClient(srv.url("localhost"), clock=LiveClock())
            with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
                await strict.request("GET", "/x")
            await strict.close()
            assert len(srv.requests) == 3
    run(body())


def test_https_refuses_a_certificate_for_another_host(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert, key = _certificate(tmp_path, ["venue.example"])
    trusting = ssl.create_default_context(cafile=str(cert))

    async def body() -> None:
        async with Scripted(answer(), ssl_context=_server_context(cert, key)) as srv:
            client = HttpClient(srv.url("127.0.0.1"), clock=LiveClock(), ssl_context=trusting)
            with pytest.raises(ConnectFailed, match=r"CERTIFICATE_VERIFY_FAILED|match"):
                await client.request("GET", "/x")
            await client.close()
            assert srv.requests == []
    run(body())


def test_warm_opens_connections_ahead_and_never_raises() -> None:
    async def body() -> None:
        async with Scripted(answer()) as srv:
            client = HttpClient(srv.url(), clock=LiveClock())
            assert await client.warm(2) == 2 and await client.warm(2) == 0
            await client.request("GET", "/a")
            assert client.opened == 2 and srv.connections == 2
            await client.close()
            port = srv.port
        down = HttpClient(f"http://127.0.0.1:{port}", clock=LiveClock())
        assert await down.warm(2) == 0
        await down.close()
    run(body())


def test_closing_the_client_under_a_request_is_an_unknown_outcome_not_a_hang() -> None:
    clock = ManualClock()

    async def body() -> None:
        async def never(_h: bytes, w: asyncio.StreamWriter) -> bool:
            await asyncio.Event().wait()
            return False

        async with Scripted(never) as srv:
            client = HttpClient(srv.url(), clock=clock)
            task = asyncio.create_task(client.request("POST", "/fapi/v1/order?x=1"))
            await until(lambda: len(srv.requests) == 1, "the request sent")
            await client.close()
            with pytest.raises(ExchangeFailed, match="closed the connection") as e:
                await task
            assert e.value.sent and not e.value.timed_out
            assert clock.sleepers == 0
    run(body())
